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
///
/// The client library retries every endpoint until the session timeout and then only says
/// "timeout"; a plain TCP probe alongside it names the real cause (refused, unresolvable) as
/// soon as every endpoint has failed that way.
pub async fn connect(o: &ZkOptions) -> Result<zkc::Client, String> {
    let session = connect_session(o);
    tokio::pin!(session);
    let probe = async {
        // a healthy server answers before this; the probe then costs no extra connection
        tokio::time::sleep(Duration::from_millis(200)).await;
        probe(&o.connect).await
    };
    tokio::select! {
        r = &mut session => r,
        Some(cause) = probe => Err(cause),
    }
}

/// The `(host, port)` endpoints of a connect string (`host:port,[v6]:port/chroot`, optional
/// `tcp://`/`tcp+tls://` schemes, port 2181 by default), as the client library parses them.
pub fn endpoints(connect: &str) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for part in connect.split(',') {
        let part = part
            .strip_prefix("tcp://")
            .or_else(|| part.strip_prefix("tcp+tls://"))
            .unwrap_or(part);
        let hostport = part.split('/').next().unwrap_or("");
        let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
            match rest.split_once(']') {
                Some((h, p)) => (h, p.strip_prefix(':').unwrap_or("")),
                None => continue,
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, p),
                None => (hostport, ""),
            }
        };
        if host.is_empty() {
            continue;
        }
        let port = if port.is_empty() {
            2181
        } else {
            match port.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => continue,
            }
        };
        out.push((host.to_string(), port));
    }
    out
}

/// Resolves and TCP-connects to every endpoint: the failures (one per endpoint) when all of
/// them fail for a definite reason; `None` when one is reachable or slow, and the session
/// attempt says the rest.
pub async fn probe(connect: &str) -> Option<String> {
    let eps = endpoints(connect);
    if eps.is_empty() {
        return None;
    }
    let mut causes = Vec::new();
    for (host, port) in eps {
        let addrs: Vec<std::net::SocketAddr> =
            match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(a) => a.collect(),
                Err(e) => {
                    causes.push(format!("cannot resolve {host}: {e}"));
                    continue;
                }
            };
        if addrs.is_empty() {
            causes.push(format!("cannot resolve {host}: no address"));
            continue;
        }
        for a in addrs {
            match tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(a))
                .await
            {
                Ok(Ok(_)) | Err(_) => return None,
                Ok(Err(e)) => causes.push(format!("cannot connect to {a}: {e}")),
            }
        }
    }
    Some(causes.join("; "))
}

async fn connect_session(o: &ZkOptions) -> Result<zkc::Client, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_string_endpoints() {
        assert_eq!(
            endpoints("zk1:2181,zk2,[::1]:2182,tcp+tls://zk3:2281/chroot/x"),
            vec![
                ("zk1".to_string(), 2181),
                ("zk2".to_string(), 2181),
                ("::1".to_string(), 2182),
                ("zk3".to_string(), 2281),
            ]
        );
        assert!(endpoints(":2181,zk:0,zk:x").is_empty());
    }

    #[tokio::test]
    async fn probe_names_the_cause() {
        // a port nobody listens on: bind, note it, close
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let cause = probe(&format!("127.0.0.1:{port}")).await.unwrap();
        assert!(cause.contains("refused"), "{cause}");
        let cause = probe("nosuch.invalid:2181").await.unwrap();
        assert!(
            cause.starts_with("cannot resolve nosuch.invalid"),
            "{cause}"
        );
        // one reachable endpoint is enough
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ok = l.local_addr().unwrap();
        assert_eq!(probe(&format!("127.0.0.1:{port},{ok}")).await, None);
    }

    #[tokio::test]
    async fn connect_reports_refused_not_timeout() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let o = ZkOptions {
            connect: format!("127.0.0.1:{port}"),
            session_timeout: Duration::from_secs(600),
            digest: None,
            tls: None,
        };
        // the library alone would retry for the whole session timeout, then say "timeout"
        let e = tokio::time::timeout(Duration::from_secs(120), connect(&o))
            .await
            .expect("the cause, before the session timeout")
            .err()
            .unwrap();
        assert!(e.contains("refused"), "{e}");
    }
}
