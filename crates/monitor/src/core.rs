//! The monitor's core task: rule instances and their lifecycles, incidents persisted in
//! ZooKeeper by the leader, and the notifications handed to the delivery workers.
//!
//! Every agent evaluates every rule (so every `/status` is live); only the leader persists
//! incidents and sends. An incident record (`<prefix>/<cluster>/incidents/<key>`) holds the
//! lifecycle state and an *outbox*: each notification with the targets it has not reached yet.
//! The record is written before the deliveries start and updated as each target confirms, so
//! a new leader re-sends exactly what is still due, and carries on pending and firing
//! incidents instead of re-alerting or forgetting them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use zookeeper_client as zkc;

use crate::alert::{Payload, PayloadKind};
use crate::check::Verdict;
use crate::config::{Config, TargetKind};
use crate::dispatch::{Delivery, Dispatcher, Gate, Outcome};
use crate::engine::{
    AlertState, Incident, Instance, Millis, Notification, NotificationKind, Policy,
};
use crate::metrics::Metrics;
use crate::status::{RuleStatus, Shared};
use crate::zk;

/// Messages to the core.
#[derive(Debug)]
pub enum CoreMsg {
    /// A new session (or none: expired/closed).
    Session(Option<zkc::Client>),
    Connected(bool),
    /// The concrete nodes a glob rule matches now (instances not listed are gone).
    Expanded {
        rule: usize,
        paths: BTreeSet<String>,
    },
    Observe {
        rule: usize,
        path: String,
        verdict: Verdict,
    },
    /// A node matched by a glob no longer exists.
    Gone {
        rule: usize,
        path: String,
    },
    Leadership {
        leader: bool,
        epoch: u64,
    },
    Outcome(Outcome),
}

/// A persisted incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub rule: String,
    pub path: String,
    pub state: AlertState,
    pub incident: Option<Incident>,
    pub message: String,
    #[serde(default)]
    pub outbox: Vec<OutboxEntry>,
    pub updated: Millis,
    pub by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub seq: u64,
    pub kind: NotificationKind,
    pub at: Millis,
    pub message: String,
    pub value: serde_json::Value,
    pub flapping: bool,
    pub incident: Incident,
    /// Targets that have not confirmed yet.
    pub targets: Vec<String>,
}

/// The znode name of an incident: rule and path, `%`-escaped.
pub fn record_name(rule: &str, path: &str) -> String {
    fn enc(s: &str) -> String {
        let mut o = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '%' => o.push_str("%25"),
                '/' => o.push_str("%2F"),
                '|' => o.push_str("%7C"),
                c => o.push(c),
            }
        }
        o
    }
    format!("{}|{}", enc(rule), enc(path))
}

pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

pub struct CoreSetup {
    pub config: Arc<Config>,
    pub base: String,
    pub agent: String,
    pub cluster: String,
    pub status_url: Option<String>,
    pub acl_creator: bool,
    pub shared: Arc<Shared>,
    pub metrics: Arc<Metrics>,
    pub http: reqwest::Client,
}

type Key = (usize, String);

struct Core {
    s: CoreSetup,
    incidents_dir: String,
    instances: BTreeMap<Key, Instance>,
    client: Option<zkc::Client>,
    connected: bool,
    leader: bool,
    epoch: u64,
    records: BTreeMap<Key, Record>,
    /// Record keys to write (present in `records`) or delete (absent).
    dirty: BTreeSet<Key>,
    /// Outbox entries handed to the workers in this epoch.
    enqueued: HashSet<(Key, u64)>,
    next_seq: u64,
    gate: watch::Sender<Gate>,
    dispatcher: Dispatcher,
    /// Last Alertmanager post per (instance, target).
    am_last: HashMap<(Key, String), Millis>,
    flush_retry_at: Option<Millis>,
    loaded: bool,
}

/// Runs the core until the message channel closes.
pub async fn run(
    setup: CoreSetup,
    mut rx: mpsc::UnboundedReceiver<CoreMsg>,
    tx: mpsc::UnboundedSender<CoreMsg>,
) {
    let (gate_tx, gate_rx) = watch::channel(Gate::default());
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Outcome>();
    let dispatcher = Dispatcher::new(
        gate_rx,
        out_tx,
        setup.http.clone(),
        setup.config.settings.retry.clone(),
        setup.metrics.clone(),
    );
    // outcomes come back through the core's own queue
    tokio::spawn(async move {
        while let Some(o) = out_rx.recv().await {
            if tx.send(CoreMsg::Outcome(o)).is_err() {
                break;
            }
        }
    });
    let mut core = Core {
        incidents_dir: format!("{}/incidents", setup.base),
        s: setup,
        instances: BTreeMap::new(),
        client: None,
        connected: false,
        leader: false,
        epoch: 0,
        records: BTreeMap::new(),
        dirty: BTreeSet::new(),
        enqueued: HashSet::new(),
        next_seq: 1,
        gate: gate_tx,
        dispatcher,
        am_last: HashMap::new(),
        flush_retry_at: None,
        loaded: false,
    };
    core.publish();
    loop {
        let now = now_ms();
        let wake = core.next_wake(now);
        let sleep = Duration::from_millis(wake.saturating_sub(now).clamp(1, 60_000) as u64);
        tokio::select! {
            msg = rx.recv() => {
                let Some(msg) = msg else { break };
                core.handle(msg).await;
                // drain what is already queued before writing to ZooKeeper
                while let Ok(m) = rx.try_recv() {
                    core.handle(m).await;
                }
            }
            _ = tokio::time::sleep(sleep) => {}
        }
        core.tick(now_ms());
        core.flush().await;
        core.publish();
    }
}

impl Core {
    fn rule_name(&self, ri: usize) -> &str {
        self.s
            .config
            .rules
            .get(ri)
            .map(|r| r.path.as_str())
            .unwrap_or("")
    }

    fn next_wake(&self, now: Millis) -> Millis {
        let mut t = now + 60_000;
        for i in self.instances.values() {
            if let Some(d) = i.next_deadline() {
                t = t.min(d.max(now));
            }
        }
        if let Some(r) = self.flush_retry_at {
            t = t.min(r);
        }
        if self.leader {
            t = t.min(now + 1_000); // Alertmanager re-posts
        }
        t
    }

    fn update_gate(&self) {
        let g = Gate {
            epoch: self.epoch,
            can_send: self.leader && self.connected && self.loaded,
        };
        self.gate.send_if_modified(|old| {
            if *old != g {
                *old = g;
                true
            } else {
                false
            }
        });
        self.s.metrics.leader.set(i64::from(self.leader));
    }

    async fn handle(&mut self, msg: CoreMsg) {
        let now = now_ms();
        match msg {
            CoreMsg::Session(c) => {
                self.client = c;
                self.connected = self.client.is_some();
                self.update_gate();
            }
            CoreMsg::Connected(c) => {
                self.connected = c;
                self.update_gate();
            }
            CoreMsg::Observe {
                rule,
                path,
                verdict,
            } => {
                let Some(r) = self.s.config.rules.get(rule) else {
                    return;
                };
                let policy = Policy::of(r);
                let key = (rule, path);
                let inst = self
                    .instances
                    .entry(key.clone())
                    .or_insert_with(|| Instance::new(policy, now));
                let notes = inst.observe(&verdict, now);
                self.s.metrics.checks.inc();
                self.after(&key, notes, now);
            }
            CoreMsg::Gone { rule, path } => {
                self.remove_instance((rule, path), now);
            }
            CoreMsg::Expanded { rule, paths } => {
                let gone: Vec<Key> = self
                    .instances
                    .keys()
                    .filter(|(r, p)| *r == rule && !paths.contains(p))
                    .cloned()
                    .collect();
                for k in gone {
                    self.remove_instance(k, now);
                }
            }
            CoreMsg::Leadership { leader, epoch } => {
                if leader {
                    tracing::info!(epoch, "this agent is now the leader: it alerts");
                    self.leader = true;
                    self.epoch = epoch;
                    self.loaded = false;
                    self.take_over(now).await;
                } else {
                    if self.leader {
                        tracing::warn!("leadership lost: this agent no longer alerts");
                    }
                    self.leader = false;
                    self.loaded = false;
                    self.epoch = epoch.max(self.epoch);
                    self.records.clear();
                    self.dirty.clear();
                    self.enqueued.clear();
                    self.am_last.clear();
                }
                self.update_gate();
            }
            CoreMsg::Outcome(o) => self.outcome(o, now),
        }
    }

    fn remove_instance(&mut self, key: Key, now: Millis) {
        if let Some(mut inst) = self.instances.remove(&key) {
            let notes = inst.remove(now, "node no longer exists");
            // keep it while its resolve is recorded
            self.instances.insert(key.clone(), inst);
            self.after(&key, notes, now);
            self.instances.remove(&key);
            let labels = Metrics::rule_labels(self.rule_name(key.0), &key.1);
            self.s.metrics.rule_compliant.remove(&labels);
            self.s.metrics.rule_firing.remove(&labels);
            self.s.metrics.rule_pending.remove(&labels);
        }
    }

    fn tick(&mut self, now: Millis) {
        let due: Vec<Key> = self
            .instances
            .iter()
            .filter(|(_, i)| i.next_deadline().is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            if let Some(inst) = self.instances.get_mut(&k) {
                let notes = inst.tick(now);
                self.after(&k, notes, now);
            }
        }
        self.alertmanager_refresh(now);
    }

    /// After an instance changed: update the record (leader) and the outbox.
    fn after(&mut self, key: &Key, notes: Vec<Notification>, now: Millis) {
        for n in &notes {
            if self.leader {
                tracing::info!(rule = self.rule_name(key.0), path = %key.1,
                    kind = n.kind.as_str(), message = %n.message, "alert");
            } else {
                tracing::debug!(rule = self.rule_name(key.0), path = %key.1,
                    kind = n.kind.as_str(), message = %n.message, "alert (standby: not sent)");
            }
        }
        if !self.leader || !self.loaded {
            return;
        }
        let Some(inst) = self.instances.get(key) else {
            return;
        };
        let Some(rule) = self.s.config.rules.get(key.0) else {
            return;
        };
        let state = inst.state();
        let incident = inst.incident().cloned();
        let message = inst.message().to_string();
        let targets: Vec<String> = rule.targets.iter().map(|t| t.id.clone()).collect();
        let existed = self.records.remove(key);
        let mut rec = existed.clone().unwrap_or_else(|| Record {
            rule: rule.path.clone(),
            path: key.1.clone(),
            state,
            incident: None,
            message: String::new(),
            outbox: Vec::new(),
            updated: now,
            by: self.s.agent.clone(),
        });
        rec.state = state;
        rec.incident = incident;
        rec.message = message;
        for n in notes {
            if n.kind == NotificationKind::Firing {
                for t in &rule.targets {
                    if matches!(t.kind, TargetKind::Alertmanager(_)) {
                        self.am_last.insert((key.clone(), t.id.clone()), now);
                    }
                }
            }
            if targets.is_empty() {
                continue;
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            rec.outbox.push(OutboxEntry {
                seq,
                kind: n.kind,
                at: n.at,
                message: n.message,
                value: n.value,
                flapping: n.flapping,
                incident: n.incident,
                targets: targets.clone(),
            });
        }
        let keep =
            matches!(rec.state, AlertState::Pending | AlertState::Firing) || !rec.outbox.is_empty();
        if keep {
            if existed.as_ref() != Some(&rec) {
                rec.updated = now;
                rec.by = self.s.agent.clone();
                self.dirty.insert(key.clone());
            }
            self.records.insert(key.clone(), rec);
        } else if existed.is_some() {
            // nothing left to remember: delete
            self.dirty.insert(key.clone());
        }
    }

    fn outcome(&mut self, o: Outcome, now: Millis) {
        if !self.leader || o.epoch != self.epoch {
            return;
        }
        let key = self
            .records
            .iter()
            .find(|(_, r)| record_name(&r.rule, &r.path) == o.outbox.0)
            .map(|(k, _)| k.clone());
        let Some(key) = key else { return };
        let Some(rec) = self.records.get_mut(&key) else {
            return;
        };
        for e in rec.outbox.iter_mut().filter(|e| e.seq == o.outbox.1) {
            e.targets.retain(|t| *t != o.target);
        }
        rec.outbox.retain(|e| !e.targets.is_empty());
        rec.updated = now;
        if !matches!(rec.state, AlertState::Pending | AlertState::Firing) && rec.outbox.is_empty() {
            self.records.remove(&key);
        }
        self.dirty.insert(key);
    }

    /// Alertmanager needs firing alerts re-posted so they stay active.
    fn alertmanager_refresh(&mut self, now: Millis) {
        if !self.leader || !self.loaded || !self.connected {
            return;
        }
        let mut due = Vec::new();
        for (key, inst) in &self.instances {
            if inst.state() != AlertState::Firing {
                continue;
            }
            let Some(rule) = self.s.config.rules.get(key.0) else {
                continue;
            };
            for t in &rule.targets {
                if let TargetKind::Alertmanager(am) = &t.kind {
                    let every = am.resend_interval.as_millis() as i64;
                    let last = self.am_last.get(&(key.clone(), t.id.clone())).copied();
                    if last.is_none_or(|l| now - l >= every) {
                        due.push((key.clone(), t.clone()));
                    }
                }
            }
        }
        for (key, target) in due {
            self.am_last.insert((key.clone(), target.id.clone()), now);
            let Some(inst) = self.instances.get(&key) else {
                continue;
            };
            let Some(inc) = inst.incident().cloned() else {
                continue;
            };
            let payload = self.payload(
                &key,
                PayloadKind::Refresh,
                &inc,
                now,
                inst.message().to_string(),
                inst.value().clone(),
                inst.is_flapping(now),
            );
            self.dispatcher.submit(Delivery {
                target,
                payload: Arc::new(payload),
                epoch: self.epoch,
                outbox: None,
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn payload(
        &self,
        key: &Key,
        kind: PayloadKind,
        inc: &Incident,
        at: Millis,
        message: String,
        value: serde_json::Value,
        flapping: bool,
    ) -> Payload {
        let rule = self.s.config.rules.get(key.0);
        Payload {
            kind,
            rule: rule.map(|r| r.path.clone()).unwrap_or_default(),
            path: key.1.clone(),
            incident_id: inc.id.clone(),
            started: inc.started,
            fired_at: inc.fired_at,
            at,
            message,
            value,
            flapping,
            severity: rule.map(|r| r.severity.clone()).unwrap_or_default(),
            labels: rule.map(|r| r.labels.clone()).unwrap_or_default(),
            description: rule.and_then(|r| r.description.clone()),
            cluster: self.s.cluster.clone(),
            agent: self.s.agent.clone(),
            status_url: self.s.status_url.clone(),
        }
    }

    /// New leader: load the persisted incidents and carry them on.
    async fn take_over(&mut self, now: Millis) {
        self.records.clear();
        self.dirty.clear();
        self.enqueued.clear();
        self.am_last.clear();
        let Some(client) = self.client.clone() else {
            self.flush_retry_at = Some(now + 1_000);
            return;
        };
        let names = match client.list_children(&self.incidents_dir).await {
            Ok(n) => n,
            Err(zkc::Error::NoNode) => Vec::new(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read persisted incidents; retrying");
                self.flush_retry_at = Some(now + 1_000);
                return;
            }
        };
        let rule_idx: HashMap<&str, usize> = self
            .s
            .config
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.path.as_str(), i))
            .collect();
        let mut restored: BTreeMap<Key, Record> = BTreeMap::new();
        for name in names {
            let p = format!("{}/{}", self.incidents_dir, name);
            let data = match client.get_data(&p).await {
                Ok((d, _)) => d,
                Err(zkc::Error::NoNode) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read persisted incidents; retrying");
                    self.flush_retry_at = Some(now + 1_000);
                    return;
                }
            };
            let rec: Record = match serde_json::from_slice(&data) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(node = %p, error = %e, "unreadable incident record, removed");
                    let _ = client.delete(&p, None).await;
                    continue;
                }
            };
            let Some(&ri) = rule_idx.get(rec.rule.as_str()) else {
                tracing::warn!(rule = %rec.rule, path = %rec.path,
                    "incident of a rule no longer configured, removed");
                let _ = client.delete(&p, None).await;
                continue;
            };
            restored.insert((ri, rec.path.clone()), rec);
        }
        self.next_seq = restored
            .values()
            .flat_map(|r| r.outbox.iter().map(|e| e.seq + 1))
            .max()
            .unwrap_or(1)
            .max(self.next_seq);
        // carry on every instance: persisted state, or none
        for (key, rec) in &restored {
            let policy = self
                .s
                .config
                .rules
                .get(key.0)
                .map(Policy::of)
                .unwrap_or_default();
            let inst = self
                .instances
                .entry(key.clone())
                .or_insert_with(|| Instance::new(policy, now));
            let persisted = rec.incident.clone().map(|i| (rec.state, i));
            let persisted = match (rec.state, persisted) {
                (AlertState::Resolved, _) => Some((AlertState::Resolved, dummy_incident())),
                (_, p) => p,
            };
            inst.restore(persisted, now);
            tracing::info!(rule = %rec.rule, path = %rec.path, state = rec.state.as_str(),
                undelivered = rec.outbox.len(), "carrying on persisted incident");
        }
        for (key, inst) in self.instances.iter_mut() {
            if !restored.contains_key(key) {
                inst.restore(None, now);
            }
        }
        self.records = restored;
        // Alertmanager: firing alerts are re-posted at once by the refresh
        self.loaded = true;
        self.flush_retry_at = None;
        // every carried-on outbox entry is due again
        let keys: Vec<Key> = self.records.keys().cloned().collect();
        for k in keys {
            self.enqueue_outbox(&k);
        }
        let ks: Vec<Key> = self.instances.keys().cloned().collect();
        for k in ks {
            // records must reflect the carried-on state even without a notification
            self.after(&k, Vec::new(), now);
        }
    }

    fn enqueue_outbox(&mut self, key: &Key) {
        let Some(rec) = self.records.get(key) else {
            return;
        };
        let Some(rule) = self.s.config.rules.get(key.0) else {
            return;
        };
        let name = record_name(&rec.rule, &rec.path);
        let mut subs = Vec::new();
        let mut seqs = Vec::new();
        for e in &rec.outbox {
            if self.enqueued.contains(&(key.clone(), e.seq)) {
                continue;
            }
            seqs.push(e.seq);
            let payload = Arc::new(self.payload(
                key,
                PayloadKind::Notify(e.kind),
                &e.incident,
                e.at,
                e.message.clone(),
                e.value.clone(),
                e.flapping,
            ));
            for tid in &e.targets {
                if let Some(t) = rule.targets.iter().find(|t| t.id == *tid) {
                    subs.push(Delivery {
                        target: t.clone(),
                        payload: payload.clone(),
                        epoch: self.epoch,
                        outbox: Some((name.clone(), e.seq)),
                    });
                }
            }
        }
        for seq in seqs {
            self.enqueued.insert((key.clone(), seq));
        }
        for d in subs {
            self.dispatcher.submit(d);
        }
        // targets that no longer exist in the config can never confirm
        let known: HashSet<&str> = rule.targets.iter().map(|t| t.id.as_str()).collect();
        let mut pruned = false;
        if let Some(rec) = self.records.get_mut(key) {
            for e in rec.outbox.iter_mut() {
                let before = e.targets.len();
                e.targets.retain(|t| known.contains(t.as_str()));
                pruned |= e.targets.len() != before;
            }
            rec.outbox.retain(|e| !e.targets.is_empty());
        }
        if pruned {
            self.dirty.insert(key.clone());
        }
    }

    /// Writes dirty records (leader, connected), then starts their new deliveries.
    async fn flush(&mut self) {
        if !self.leader || !self.connected {
            return;
        }
        if !self.loaded {
            if self.flush_retry_at.is_some_and(|t| t <= now_ms()) {
                self.flush_retry_at = None;
                self.take_over(now_ms()).await;
                self.update_gate();
            }
            return;
        }
        let Some(client) = self.client.clone() else {
            return;
        };
        if self.dirty.is_empty() {
            return;
        }
        let opts_acl = if self.s.acl_creator {
            zkc::Acls::creator_all()
        } else {
            zkc::Acls::anyone_all()
        };
        let create = zkc::CreateMode::Persistent.with_acls(opts_acl);
        let keys: Vec<Key> = self.dirty.iter().cloned().collect();
        let mut failed = false;
        for key in keys {
            let name = match self.records.get(&key) {
                Some(r) => record_name(&r.rule, &r.path),
                None => record_name(self.rule_name(key.0), &key.1),
            };
            let p = format!("{}/{}", self.incidents_dir, name);
            let result = match self.records.get(&key) {
                Some(rec) => {
                    let data = serde_json::to_vec(rec).unwrap_or_default();
                    match client.set_data(&p, &data, None).await {
                        Ok(_) => Ok(()),
                        Err(zkc::Error::NoNode) => match client.create(&p, &data, &create).await {
                            Ok(_) => Ok(()),
                            Err(zkc::Error::NoNode) => {
                                let base =
                                    self.incidents_dir.rsplit_once('/').map_or("", |(b, _)| b);
                                match zk::mkdir_under(&client, base, &self.incidents_dir, &create)
                                    .await
                                {
                                    Ok(()) => client.create(&p, &data, &create).await.map(|_| ()),
                                    Err(e) => Err(e),
                                }
                            }
                            Err(e) => Err(e),
                        },
                        Err(e) => Err(e),
                    }
                }
                None => match client.delete(&p, None).await {
                    Ok(()) | Err(zkc::Error::NoNode) => Ok(()),
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(()) => {
                    self.dirty.remove(&key);
                    self.enqueue_outbox(&key);
                }
                Err(e) => {
                    tracing::warn!(node = %p, error = %e, "cannot persist incident; will retry");
                    failed = true;
                    break;
                }
            }
        }
        self.flush_retry_at = if failed { Some(now_ms() + 1_000) } else { None };
    }

    fn publish(&self) {
        let mut rules = BTreeMap::new();
        for ((ri, path), inst) in &self.instances {
            let rule = self.rule_name(*ri).to_string();
            let labels = Metrics::rule_labels(&rule, path);
            let c = match inst.compliance() {
                crate::check::Compliance::Ok => 1,
                crate::check::Compliance::Error => 0,
                crate::check::Compliance::Unknown => -1,
            };
            self.s.metrics.rule_compliant.get_or_create(&labels).set(c);
            self.s
                .metrics
                .rule_firing
                .get_or_create(&labels)
                .set(i64::from(inst.state() == AlertState::Firing));
            self.s
                .metrics
                .rule_pending
                .get_or_create(&labels)
                .set(i64::from(inst.state() == AlertState::Pending));
            rules.insert(
                (path.clone(), rule.clone()),
                RuleStatus {
                    rule,
                    path: path.clone(),
                    compliance: inst.compliance(),
                    message: inst.message().to_string(),
                    alert_state: inst.state(),
                    since: inst.state_since(),
                    last_value: inst.value().clone(),
                    checked_at: inst.checked_at(),
                    incident: inst.incident().map(|i| i.id.clone()),
                    flapping: inst.is_flapping(now_ms()),
                },
            );
        }
        // a configured path not checked yet (ZooKeeper unreachable) is unknown, not absent
        for (ri, r) in self.s.config.rules.iter().enumerate() {
            if !r.is_glob() && !self.instances.contains_key(&(ri, r.path.clone())) {
                publish_unknown(&self.s.metrics, &r.path);
            }
        }
        self.s.shared.set_rules(rules, self.leader && self.loaded);
    }
}

/// The gauges of a rule whose node has not been checked: compliance -1, not firing or pending.
fn publish_unknown(metrics: &Metrics, path: &str) {
    let labels = Metrics::rule_labels(path, path);
    metrics.rule_compliant.get_or_create(&labels).set(-1);
    metrics.rule_firing.get_or_create(&labels).set(0);
    metrics.rule_pending.get_or_create(&labels).set(0);
}

fn dummy_incident() -> Incident {
    Incident {
        id: String::new(),
        started: 0,
        fired_at: None,
        last_notified: None,
        repeats: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names() {
        assert_eq!(
            record_name("/services/*/members", "/services/a%b/members"),
            "%2Fservices%2F*%2Fmembers|%2Fservices%2Fa%25b%2Fmembers"
        );
    }

    #[test]
    fn record_roundtrip() {
        let r = Record {
            rule: "/a".into(),
            path: "/a".into(),
            state: AlertState::Firing,
            incident: Some(Incident {
                id: "1".into(),
                started: 1,
                fired_at: Some(2),
                last_notified: Some(2),
                repeats: 0,
            }),
            message: "m".into(),
            outbox: vec![OutboxEntry {
                seq: 3,
                kind: NotificationKind::Firing,
                at: 2,
                message: "m".into(),
                value: serde_json::json!({"children": 0}),
                flapping: false,
                incident: dummy_incident(),
                targets: vec!["rule:/a:email".into()],
            }],
            updated: 2,
            by: "agent".into(),
        };
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"state\":\"FIRING\""), "{j}");
        assert_eq!(serde_json::from_str::<Record>(&j).unwrap(), r);
    }
}
