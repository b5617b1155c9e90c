//! Agents and leader election during one ZooKeeper session.
//!
//! Each agent registers `<prefix>/<cluster>/agents/<name>` (ephemeral; data = JSON about the
//! agent) and elects a leader with ZooKeeper's standard recipe: an ephemeral sequential node
//! under `<prefix>/<cluster>/election/`, the lowest sequence number leads, every other agent
//! watches only its predecessor. The node name carries a random id (Curator's "protected"
//! mode) so that a create whose reply was lost to a connection loss is found again instead of
//! leaving a ghost candidate. Leadership lasts as long as the session.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use zookeeper_client as zkc;

use crate::core::CoreMsg;
use crate::status::{ClusterStatus, Shared};
use crate::watcher::SessionOver;
use crate::zk;

pub struct Cluster {
    pub client: zkc::Client,
    pub base: String,
    pub agent: String,
    pub agent_data: Vec<u8>,
    pub acl_creator: bool,
    pub core: mpsc::UnboundedSender<CoreMsg>,
    pub shared: Arc<Shared>,
    /// Leadership epochs, increasing across sessions.
    pub epochs: Arc<AtomicU64>,
}

/// Sequence number of an election node (`…-0000000042` → 42).
pub fn sequence(name: &str) -> Option<u64> {
    name.rsplit_once('-')?.1.parse().ok()
}

impl Cluster {
    fn acls(&self) -> zkc::Acls<'static> {
        if self.acl_creator {
            zkc::Acls::creator_all()
        } else {
            zkc::Acls::anyone_all()
        }
    }

    async fn retry<T, F, Fut>(&self, what: &str, mut f: F) -> Result<T, SessionOver>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, zkc::Error>>,
    {
        let mut delay = Duration::from_millis(100);
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if zk::is_fatal(&e) => return Err(SessionOver),
                Err(e) => {
                    tracing::warn!(error = %e, "{what} failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    pub async fn run(self) -> SessionOver {
        match self.run_inner().await {
            Ok(never) => match never {},
            Err(over) => over,
        }
    }

    async fn run_inner(&self) -> Result<std::convert::Infallible, SessionOver> {
        let agents = format!("{}/agents", self.base);
        let election = format!("{}/election", self.base);
        let incidents = format!("{}/incidents", self.base);
        let acls = self.acls();
        let dir = zkc::CreateMode::Persistent.with_acls(acls);
        for d in [&agents, &election, &incidents] {
            self.retry("creating the cluster nodes", || {
                zk::mkdir_under(&self.client, &self.base, d, &dir)
            })
            .await?;
        }
        self.register(&agents).await?;
        let me = self.candidate(&election).await?;
        tracing::info!(node = %me, "joined the leader election");
        let mut leader = false;
        loop {
            let mut children = self
                .retry("listing candidates", || {
                    self.client.list_children(&election)
                })
                .await?;
            children.sort_by_key(|c| sequence(c).unwrap_or(u64::MAX));
            let Some(pos) = children.iter().position(|c| *c == me) else {
                // our candidate is gone (deleted by hand?): the session is suspect
                tracing::error!("our election node vanished; starting a new session");
                return Err(SessionOver);
            };
            let leader_name = self
                .node_owner(&format!("{election}/{}", children[0]))
                .await;
            let (agent_list, agents_w) = self
                .retry("listing agents", || {
                    self.client.list_and_watch_children(&agents)
                })
                .await?;
            let mut agent_list = agent_list;
            agent_list.sort();
            self.shared.set_cluster(ClusterStatus {
                leader: leader_name,
                agents: agent_list,
            });
            if pos == 0 {
                if !leader {
                    leader = true;
                    let epoch = self.epochs.fetch_add(1, Ordering::SeqCst) + 1;
                    let _ = self.core.send(CoreMsg::Leadership {
                        leader: true,
                        epoch,
                    });
                }
                // a leader watches its own node (deleted by hand → step down) and the agents
                let own = format!("{election}/{me}");
                let (stat, own_w) = self
                    .retry("watching our candidate", || {
                        self.client.check_and_watch_stat(&own)
                    })
                    .await?;
                if stat.is_none() {
                    continue;
                }
                tokio::select! {
                    ev = own_w.changed() => if ev.event_type == zkc::EventType::Session { return Err(SessionOver) },
                    ev = agents_w.changed() => if ev.event_type == zkc::EventType::Session { return Err(SessionOver) },
                }
            } else {
                // standard recipe: watch only the predecessor
                let pred = format!("{election}/{}", children[pos - 1]);
                let (stat, pred_w) = self
                    .retry("watching the predecessor", || {
                        self.client.check_and_watch_stat(&pred)
                    })
                    .await?;
                if stat.is_none() {
                    continue;
                }
                tokio::select! {
                    ev = pred_w.changed() => if ev.event_type == zkc::EventType::Session { return Err(SessionOver) },
                    // agents come and go: refresh the view (the leader may have changed)
                    ev = agents_w.changed() => if ev.event_type == zkc::EventType::Session { return Err(SessionOver) },
                }
            }
        }
    }

    async fn node_owner(&self, path: &str) -> Option<String> {
        match self.client.get_data(path).await {
            Ok((d, _)) => String::from_utf8(d).ok(),
            Err(_) => None,
        }
    }

    /// The ephemeral agent node; a leftover of an earlier session of ours is replaced.
    async fn register(&self, agents: &str) -> Result<(), SessionOver> {
        let path = format!("{agents}/{}", self.agent);
        let acls = self.acls();
        let mode = zkc::CreateMode::Ephemeral.with_acls(acls);
        let me = self.client.session_id().0;
        let mut delay = Duration::from_millis(100);
        loop {
            match self.client.create(&path, &self.agent_data, &mode).await {
                Ok(_) => return Ok(()),
                Err(zkc::Error::NodeExists) => match self.client.check_stat(&path).await {
                    Ok(Some(st)) if st.ephemeral_owner == me => return Ok(()),
                    Ok(Some(_)) => {
                        tracing::warn!(node = %path, "agent node left by an earlier session (or another agent with the same name): replacing it");
                        let _ = self.client.delete(&path, None).await;
                    }
                    Ok(None) => {}
                    Err(e) if zk::is_fatal(&e) => return Err(SessionOver),
                    Err(_) => {}
                },
                Err(e) if zk::is_fatal(&e) => return Err(SessionOver),
                Err(e) => tracing::warn!(error = %e, "registering the agent failed; retrying"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Creates our candidate node, finding it again after a lost reply.
    async fn candidate(&self, election: &str) -> Result<String, SessionOver> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("n_{id}-");
        let mode = zkc::CreateMode::EphemeralSequential.with_acls(self.acls());
        let mut delay = Duration::from_millis(100);
        loop {
            match self
                .client
                .create(
                    &format!("{election}/{prefix}"),
                    self.agent.as_bytes(),
                    &mode,
                )
                .await
            {
                Ok((_, seq)) => return Ok(format!("{prefix}{seq}")),
                Err(e) if zk::is_fatal(&e) => return Err(SessionOver),
                Err(e) => {
                    tracing::warn!(error = %e, "joining the election failed; looking for our node");
                    if let Ok(children) = self.client.list_children(election).await {
                        if let Some(c) = children.into_iter().find(|c| c.starts_with(&prefix)) {
                            return Ok(c);
                        }
                    }
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sequences() {
        assert_eq!(super::sequence("n_abc-0000000042"), Some(42));
        assert_eq!(super::sequence("x"), None);
    }
}
