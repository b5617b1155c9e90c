//! State shared with the HTTP server, and the `/status` document.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::json;

use crate::alert::rfc3339;
use crate::check::Compliance;
use crate::engine::{AlertState, Millis};
use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct RuleStatus {
    pub rule: String,
    pub path: String,
    pub compliance: Compliance,
    pub message: String,
    pub alert_state: AlertState,
    pub since: Millis,
    pub last_value: serde_json::Value,
    pub checked_at: Option<Millis>,
    pub incident: Option<String>,
    pub flapping: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ZkStatus {
    pub connected: bool,
    pub session_id: Option<String>,
    pub last_error: Option<String>,
    /// Since when disconnected (ms), while disconnected.
    pub down_since: Option<Millis>,
    pub watch_mode: Option<&'static str>,
}

#[derive(Debug, Clone, Default)]
pub struct ClusterStatus {
    pub leader: Option<String>,
    pub agents: Vec<String>,
}

#[derive(Debug, Default)]
struct Inner {
    rules: BTreeMap<(String, String), RuleStatus>,
    alerting: bool,
    zk: ZkStatus,
    cluster: ClusterStatus,
}

/// Static facts plus the live view.
pub struct Shared {
    pub agent: String,
    pub cluster_name: String,
    pub cluster_path: String,
    pub connect: String,
    pub alerters: Vec<&'static str>,
    /// Configured non-glob rules (shown as Unknown before their first check).
    pub configured: Vec<String>,
    pub metrics: Arc<Metrics>,
    inner: RwLock<Inner>,
}

impl Shared {
    pub fn new(
        agent: String,
        cluster_name: String,
        cluster_path: String,
        connect: String,
        alerters: Vec<&'static str>,
        configured: Vec<String>,
        metrics: Arc<Metrics>,
    ) -> Shared {
        Shared {
            agent,
            cluster_name,
            cluster_path,
            connect,
            alerters,
            configured,
            metrics,
            inner: RwLock::new(Inner::default()),
        }
    }

    pub fn set_rules(&self, rules: BTreeMap<(String, String), RuleStatus>, alerting: bool) {
        if let Ok(mut g) = self.inner.write() {
            g.rules = rules;
            g.alerting = alerting;
        }
    }

    pub fn update_zk(&self, f: impl FnOnce(&mut ZkStatus)) {
        if let Ok(mut g) = self.inner.write() {
            f(&mut g.zk);
            self.metrics.zk_connected.set(i64::from(g.zk.connected));
        }
    }

    pub fn set_cluster(&self, c: ClusterStatus) {
        if let Ok(mut g) = self.inner.write() {
            self.metrics.agents.set(c.agents.len() as i64);
            g.cluster = c;
        }
    }

    pub fn zk(&self) -> ZkStatus {
        self.inner.read().map(|g| g.zk.clone()).unwrap_or_default()
    }

    /// zk_monitor's `/status` shape (`dispatcher`, `monitor.compliance`, `version`,
    /// `zookeeper.connected`) plus each rule's alert state and the cluster.
    pub fn status_json(&self) -> serde_json::Value {
        let Ok(g) = self.inner.read() else {
            return json!({"error": "status unavailable"});
        };
        let mut compliance = serde_json::Map::new();
        let mut seen_paths: BTreeMap<&str, usize> = BTreeMap::new();
        for (path, _) in g.rules.keys() {
            *seen_paths.entry(path.as_str()).or_default() += 1;
        }
        for ((path, rule), r) in &g.rules {
            let key = if seen_paths.get(path.as_str()).copied().unwrap_or(0) > 1 {
                format!("{path} [{rule}]")
            } else {
                path.clone()
            };
            compliance.insert(
                key,
                json!({
                    "state": r.compliance.as_str(),
                    "message": r.message,
                    "rule": r.rule,
                    "path": r.path,
                    "alert_state": r.alert_state.as_str(),
                    "since": rfc3339(r.since),
                    "last_value": r.last_value,
                    "checked_at": r.checked_at.map(rfc3339),
                    "incident": r.incident,
                    "flapping": r.flapping,
                }),
            );
        }
        for p in &self.configured {
            if !g.rules.keys().any(|(_, rule)| rule == p) {
                compliance.insert(
                    p.clone(),
                    json!({
                        "state": "Unknown",
                        "message": "not checked yet",
                        "rule": p,
                        "path": p,
                        "alert_state": "OK",
                    }),
                );
            }
        }
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "dispatcher": {
                "alerters": self.alerters,
                "alerting": g.alerting && g.zk.connected,
                "name": self.agent,
            },
            "monitor": {"compliance": compliance},
            "zookeeper": {
                "connected": g.zk.connected,
                "servers": self.connect,
                "session_id": g.zk.session_id,
                "last_error": g.zk.last_error,
                "disconnected_since": g.zk.down_since.map(rfc3339),
                "watch_mode": g.zk.watch_mode,
            },
            "cluster": {
                "name": self.cluster_name,
                "path": self.cluster_path,
                "leader": g.cluster.leader,
                "is_leader": g.alerting,
                "agents": g.cluster.agents,
            },
        })
    }

    /// `/health`: healthy while the ZooKeeper session is connected.
    pub fn health(&self) -> (bool, serde_json::Value) {
        let zk = self.zk();
        let ok = zk.connected;
        (
            ok,
            json!({
                "status": if ok { "ok" } else { "unhealthy" },
                "zookeeper": if ok { "connected" } else { "disconnected" },
                "reason": if ok { None } else {
                    Some(zk.last_error.clone().unwrap_or_else(|| "not connected to ZooKeeper".into()))
                },
                "disconnected_since": zk.down_since.map(rfc3339),
                "agent": self.agent,
            }),
        )
    }
}
