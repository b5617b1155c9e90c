//! Prometheus metrics (`/metrics`, OpenMetrics text).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    /// 1 in spec, 0 out of spec, -1 unknown (no check configured).
    pub rule_compliant: Family<Labels, Gauge>,
    /// 1 while the rule's incident is FIRING.
    pub rule_firing: Family<Labels, Gauge>,
    /// 1 while PENDING.
    pub rule_pending: Family<Labels, Gauge>,
    /// Notifications delivered, by alerter, target and kind.
    pub alerts_sent: Family<Labels, Counter>,
    /// Notifications given up after every retry.
    pub alerts_failed: Family<Labels, Counter>,
    /// Failed attempts (each retry counts).
    pub send_errors: Family<Labels, Counter>,
    pub leader: Gauge,
    pub zk_connected: Gauge,
    pub zk_sessions: Counter,
    pub checks: Counter,
    pub agents: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("zkscope_monitor");
        let m = Metrics {
            rule_compliant: Family::default(),
            rule_firing: Family::default(),
            rule_pending: Family::default(),
            alerts_sent: Family::default(),
            alerts_failed: Family::default(),
            send_errors: Family::default(),
            leader: Gauge::default(),
            zk_connected: Gauge::default(),
            zk_sessions: Counter::default(),
            checks: Counter::default(),
            agents: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "rule_compliant",
            "1 when the node is in spec, 0 when out of spec, -1 when unknown",
            m.rule_compliant.clone(),
        );
        registry.register(
            "rule_firing",
            "1 while the rule's incident is FIRING",
            m.rule_firing.clone(),
        );
        registry.register(
            "rule_pending",
            "1 while the rule's incident is PENDING (waiting for cancel_timeout)",
            m.rule_pending.clone(),
        );
        registry.register(
            "alerts_sent",
            "Notifications delivered, by alerter, target and kind",
            m.alerts_sent.clone(),
        );
        registry.register(
            "alerts_failed",
            "Notifications given up after all retries",
            m.alerts_failed.clone(),
        );
        registry.register(
            "send_errors",
            "Failed delivery attempts (each retry counts)",
            m.send_errors.clone(),
        );
        registry.register(
            "leader",
            "1 when this agent is the cluster's leader (the one that alerts)",
            m.leader.clone(),
        );
        registry.register(
            "zookeeper_connected",
            "1 when the ZooKeeper session is connected",
            m.zk_connected.clone(),
        );
        registry.register(
            "zookeeper_sessions",
            "ZooKeeper sessions established",
            m.zk_sessions.clone(),
        );
        registry.register("checks", "Node evaluations", m.checks.clone());
        registry.register(
            "agents",
            "Agents registered in the cluster",
            m.agents.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn rule_labels(rule: &str, path: &str) -> Labels {
        vec![
            ("rule".to_string(), rule.to_string()),
            ("path".to_string(), path.to_string()),
        ]
    }

    pub fn alerter_labels(alerter: &str, target: &str) -> Labels {
        vec![
            ("alerter".to_string(), alerter.to_string()),
            ("target".to_string(), target.to_string()),
        ]
    }

    pub fn encode(&self) -> String {
        let mut s = String::new();
        if encode(&mut s, &self.registry).is_err() {
            s.clear();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes() {
        let m = Metrics::new();
        m.rule_compliant
            .get_or_create(&Metrics::rule_labels("/a", "/a"))
            .set(1);
        let mut l = Metrics::alerter_labels("email", "rule:/a:email");
        l.push(("kind".into(), "firing".into()));
        m.alerts_sent.get_or_create(&l).inc();
        m.leader.set(1);
        let text = m.encode();
        assert!(
            text.contains("zkscope_monitor_rule_compliant{rule=\"/a\",path=\"/a\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "zkscope_monitor_alerts_sent_total{alerter=\"email\",target=\"rule:/a:email\",kind=\"firing\"} 1"
        ), "{text}");
        assert!(text.contains("zkscope_monitor_leader 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
