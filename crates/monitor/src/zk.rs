//! ZooKeeper connection options and small helpers over `zookeeper-client`.

use std::path::PathBuf;
use std::time::Duration;

use zookeeper_client as zkc;

use crate::check::{NodeSnapshot, StatLite};

/// How to reach ZooKeeper.
#[derive(Debug, Clone)]
pub struct ZkOptions {
    /// `host:port,host:port/chroot`
    pub connect: String,
    pub session_timeout: Duration,
    /// Digest auth `user:password`.
    pub digest: Option<(String, String)>,
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// PEM CA bundle to verify the servers (system roots when absent).
    pub ca: Option<PathBuf>,
    /// PEM client certificate and key (mutual TLS).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Opens a session (one attempt; the caller retries).
pub async fn connect(o: &ZkOptions) -> Result<zkc::Client, String> {
    let mut c = zkc::Client::connector()
        .with_session_timeout(o.session_timeout)
        .with_connection_timeout(Duration::from_secs(3).min(o.session_timeout));
    if let Some((u, p)) = &o.digest {
        c = c.with_auth("digest", format!("{u}:{p}").as_bytes());
    }
    match &o.tls {
        None => c
            .connect(&o.connect)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", o.connect)),
        Some(t) => {
            let mut opts = zkc::TlsOptions::default();
            if let Some(ca) = &t.ca {
                let pem = std::fs::read_to_string(ca)
                    .map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
                opts = opts
                    .with_pem_ca(&pem)
                    .map_err(|e| format!("bad CA file {}: {e}", ca.display()))?;
            }
            if let (Some(cert), Some(key)) = (&t.cert, &t.key) {
                let c_pem = std::fs::read_to_string(cert)
                    .map_err(|e| format!("cannot read {}: {e}", cert.display()))?;
                let k_pem = std::fs::read_to_string(key)
                    .map_err(|e| format!("cannot read {}: {e}", key.display()))?;
                opts = opts
                    .with_pem_identity(&c_pem, &k_pem)
                    .map_err(|e| format!("bad client certificate/key: {e}"))?;
            }
            c.with_tls(opts)
                .secure_connect(&o.connect)
                .await
                .map_err(|e| format!("cannot connect (TLS) to {}: {e}", o.connect))
        }
    }
}

pub fn stat_lite(s: &zkc::Stat) -> StatLite {
    StatLite {
        ephemeral_owner: s.ephemeral_owner,
        mtime: s.mtime,
        data_length: i64::from(s.data_length),
        num_children: i64::from(s.num_children),
        version: s.version,
    }
}

/// Reads what the checks need; a missing node is `stat: None`.
pub async fn read_node(
    client: &zkc::Client,
    path: &str,
    need_data: bool,
) -> Result<NodeSnapshot, zkc::Error> {
    if need_data {
        match client.get_data(path).await {
            Ok((data, stat)) => Ok(NodeSnapshot {
                stat: Some(stat_lite(&stat)),
                data: Some(data),
            }),
            Err(zkc::Error::NoNode) => Ok(NodeSnapshot::default()),
            Err(e) => Err(e),
        }
    } else {
        Ok(NodeSnapshot {
            stat: client.check_stat(path).await?.as_ref().map(stat_lite),
            data: None,
        })
    }
}

/// Errors after which the session is useless.
pub fn is_fatal(e: &zkc::Error) -> bool {
    matches!(
        e,
        zkc::Error::SessionExpired | zkc::Error::ClientClosed | zkc::Error::AuthFailed
    )
}

/// `0x…` session id.
pub fn session_hex(c: &zkc::Client) -> String {
    format!("0x{:x}", c.session_id().0)
}

/// Creates `dir` and any missing parents. Parents above `base` (a prefix such as `/zk_monitor`,
/// shared by every cluster and by agents with other credentials) are created open to all;
/// `base` and what lies under it get `opts`' ACL. Creating the shared prefix with a creator-only
/// ACL would lock every agent without the same credentials out of its own cluster.
pub async fn mkdir_under(
    client: &zkc::Client,
    base: &str,
    dir: &str,
    opts: &zkc::CreateOptions<'_>,
) -> Result<(), zkc::Error> {
    if let Some((parent, _)) = base.rsplit_once('/') {
        if !parent.is_empty() {
            let open = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
            client.mkdir(parent, &open).await?;
        }
    }
    client.mkdir(dir, opts).await
}
