//! The alert lifecycle of one rule instance (one rule on one concrete node), sans I/O: verdicts
//! and the current time come in, notifications come out. Time is wall-clock milliseconds since
//! the epoch, passed in by the caller (a virtual clock in tests), because incidents are shared
//! between agents through ZooKeeper.
//!
//! ```text
//!          bad                 cancel_timeout elapsed             good for resolve_timeout
//!   OK ──────────► PENDING ─────────────────────────► FIRING ─────────────────────────► RESOLVED
//!    ▲               │ good (not flapping): cancelled,   │ repeat_interval: reminder       │ bad
//!    └───────────────┘ no notification                  ▼                                 ▼
//!                                                                                      PENDING …
//! ```
//!
//! One FIRING notification per incident, one RESOLVED when it recovers, optional REPEAT
//! reminders. Flap damping: when the condition changed `threshold` times within `window`, a
//! pending incident is not cancelled by a good spell and a firing one is not resolved until
//! the changes age out of the window.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::check::{Compliance, Verdict};
use crate::config::Rule;

/// Milliseconds since the epoch.
pub type Millis = i64;

fn ms(d: std::time::Duration) -> Millis {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// Timing of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    pub cancel_timeout: Millis,
    pub resolve_timeout: Millis,
    pub repeat_interval: Option<Millis>,
    /// (window, threshold)
    pub flap: Option<(Millis, u32)>,
}

impl Policy {
    pub fn of(rule: &Rule) -> Policy {
        Policy {
            cancel_timeout: ms(rule.cancel_timeout),
            resolve_timeout: ms(rule.resolve_timeout),
            repeat_interval: rule.repeat_interval.map(ms),
            flap: rule.flap.map(|f| (ms(f.window), f.threshold)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AlertState {
    Ok,
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Ok => "OK",
            AlertState::Pending => "PENDING",
            AlertState::Firing => "FIRING",
            AlertState::Resolved => "RESOLVED",
        }
    }
}

/// One incident: from the first bad verdict to the resolve notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    /// When the condition went bad (start of PENDING).
    pub started: Millis,
    /// When FIRING was notified.
    pub fired_at: Option<Millis>,
    /// Last FIRING or REPEAT notification.
    pub last_notified: Option<Millis>,
    pub repeats: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    Firing,
    Repeat,
    Resolved,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Firing => "firing",
            NotificationKind::Repeat => "repeat",
            NotificationKind::Resolved => "resolved",
        }
    }
}

/// Something to tell the alerters.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub kind: NotificationKind,
    pub incident: Incident,
    pub at: Millis,
    pub message: String,
    pub value: serde_json::Value,
    pub flapping: bool,
}

/// The lifecycle of one rule on one node.
#[derive(Debug, Clone)]
pub struct Instance {
    policy: Policy,
    state: AlertState,
    state_since: Millis,
    observed: bool,
    bad: bool,
    cond_since: Millis,
    compliance: Compliance,
    message: String,
    value: serde_json::Value,
    checked_at: Option<Millis>,
    incident: Option<Incident>,
    /// Times of condition changes within the flap window.
    changes: VecDeque<Millis>,
}

impl Instance {
    pub fn new(policy: Policy, now: Millis) -> Instance {
        Instance {
            policy,
            state: AlertState::Ok,
            state_since: now,
            observed: false,
            bad: false,
            cond_since: now,
            compliance: Compliance::Unknown,
            message: crate::check::MSG_UNKNOWN.into(),
            value: serde_json::Value::Null,
            checked_at: None,
            incident: None,
            changes: VecDeque::new(),
        }
    }

    pub fn state(&self) -> AlertState {
        self.state
    }
    pub fn state_since(&self) -> Millis {
        self.state_since
    }
    pub fn compliance(&self) -> Compliance {
        self.compliance
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn value(&self) -> &serde_json::Value {
        &self.value
    }
    pub fn checked_at(&self) -> Option<Millis> {
        self.checked_at
    }
    pub fn incident(&self) -> Option<&Incident> {
        self.incident.as_ref()
    }
    pub fn policy(&self) -> Policy {
        self.policy
    }
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// A new verdict for the node.
    pub fn observe(&mut self, verdict: &Verdict, now: Millis) -> Vec<Notification> {
        let bad = verdict.compliance == Compliance::Error;
        if !self.observed {
            self.observed = true;
            self.bad = bad;
            self.cond_since = now;
        } else if bad != self.bad {
            self.bad = bad;
            self.cond_since = now;
            self.changes.push_back(now);
        }
        self.compliance = verdict.compliance;
        self.message = verdict.message.clone();
        self.value = verdict.value.clone();
        self.checked_at = Some(now);
        self.step(now)
    }

    /// Time passed.
    pub fn tick(&mut self, now: Millis) -> Vec<Notification> {
        self.step(now)
    }

    /// The node no longer exists for this rule (a glob match went away): a firing incident is
    /// resolved, a pending one dropped.
    pub fn remove(&mut self, now: Millis, reason: &str) -> Vec<Notification> {
        let mut out = Vec::new();
        if self.state == AlertState::Firing {
            if let Some(inc) = self.incident.take() {
                out.push(Notification {
                    kind: NotificationKind::Resolved,
                    incident: inc,
                    at: now,
                    message: reason.to_string(),
                    value: serde_json::Value::Null,
                    flapping: false,
                });
            }
        }
        self.incident = None;
        self.set_state(AlertState::Ok, now);
        out
    }

    /// Whether the condition is flapping at `now`.
    pub fn is_flapping(&self, now: Millis) -> bool {
        match self.policy.flap {
            Some((window, threshold)) => {
                self.changes
                    .iter()
                    .filter(|&&t| t > now.saturating_sub(window))
                    .count()
                    >= threshold as usize
            }
            None => false,
        }
    }

    /// Carries on an incident persisted by the previous leader (`None`: none was persisted).
    pub fn restore(&mut self, persisted: Option<(AlertState, Incident)>, now: Millis) {
        match persisted {
            Some((state @ (AlertState::Pending | AlertState::Firing), inc)) => {
                self.state_since = match state {
                    AlertState::Firing => inc.fired_at.unwrap_or(inc.started),
                    _ => inc.started,
                };
                self.state = state;
                self.incident = Some(inc);
            }
            Some((AlertState::Resolved, _)) => {
                self.incident = None;
                if self.state != AlertState::Resolved {
                    self.set_state(AlertState::Resolved, now);
                }
            }
            Some((AlertState::Ok, _)) | None => {
                // Nothing was notified by the previous leader: a local incident has not
                // been sent, so it starts over as pending (keeping its start time).
                if let Some(mut inc) = self.incident.take() {
                    inc.fired_at = None;
                    inc.last_notified = None;
                    inc.repeats = 0;
                    self.incident = Some(inc);
                    self.state = AlertState::Pending;
                } else if self.state == AlertState::Firing || self.state == AlertState::Pending {
                    self.set_state(AlertState::Ok, now);
                }
            }
        }
    }

    /// The next time [`tick`](Self::tick) could change something.
    pub fn next_deadline(&self) -> Option<Millis> {
        if !self.observed {
            return None;
        }
        let mut d: Option<Millis> = None;
        let mut at = |t: Millis| d = Some(d.map_or(t, |x| x.min(t)));
        match (self.state, &self.incident) {
            (AlertState::Pending, Some(inc)) => {
                at(inc.started.saturating_add(self.policy.cancel_timeout))
            }
            (AlertState::Firing, Some(inc)) => {
                // while flapping, the flap deadline below is the one that matters
                let flapping = self
                    .policy
                    .flap
                    .is_some_and(|(_, threshold)| self.changes.len() >= threshold as usize);
                if !self.bad && !flapping {
                    at(self.cond_since.saturating_add(self.policy.resolve_timeout));
                }
                if let (Some(r), Some(last)) = (self.policy.repeat_interval, inc.last_notified) {
                    at(last.saturating_add(r));
                }
            }
            _ => {}
        }
        if let Some((window, _)) = self.policy.flap {
            if matches!(self.state, AlertState::Pending | AlertState::Firing) {
                if let Some(first) = self.changes.front() {
                    at(first.saturating_add(window));
                }
            }
        }
        d
    }

    fn set_state(&mut self, s: AlertState, now: Millis) {
        if self.state != s {
            self.state = s;
            self.state_since = now;
        }
    }

    fn notification(&self, kind: NotificationKind, inc: &Incident, now: Millis) -> Notification {
        Notification {
            kind,
            incident: inc.clone(),
            at: now,
            message: self.message.clone(),
            value: self.value.clone(),
            flapping: self.is_flapping(now),
        }
    }

    fn step(&mut self, now: Millis) -> Vec<Notification> {
        // nothing is decided about a node that has not been read yet (e.g. an incident
        // carried on by a new leader before its first check)
        if !self.observed {
            return Vec::new();
        }
        if let Some((window, _)) = self.policy.flap {
            while self
                .changes
                .front()
                .is_some_and(|&t| t <= now.saturating_sub(window))
            {
                self.changes.pop_front();
            }
        } else {
            self.changes.clear();
        }
        let flapping = self.is_flapping(now);
        let mut out = Vec::new();
        if matches!(self.state, AlertState::Ok | AlertState::Resolved) && self.bad {
            let started = self.cond_since;
            self.incident = Some(Incident {
                id: format!("{started:x}"),
                started,
                fired_at: None,
                last_notified: None,
                repeats: 0,
            });
            self.state = AlertState::Pending;
            self.state_since = now;
        }
        if self.state == AlertState::Pending {
            let Some(inc) = self.incident.clone() else {
                self.set_state(AlertState::Ok, now);
                return out;
            };
            if !self.bad && !flapping {
                self.incident = None;
                self.set_state(AlertState::Ok, now);
            } else if now.saturating_sub(inc.started) >= self.policy.cancel_timeout {
                let inc = Incident {
                    fired_at: Some(now),
                    last_notified: Some(now),
                    ..inc
                };
                out.push(self.notification(NotificationKind::Firing, &inc, now));
                self.incident = Some(inc);
                self.set_state(AlertState::Firing, now);
            }
        }
        if self.state == AlertState::Firing {
            let Some(mut inc) = self.incident.clone() else {
                self.set_state(AlertState::Ok, now);
                return out;
            };
            if !self.bad
                && !flapping
                && now.saturating_sub(self.cond_since) >= self.policy.resolve_timeout
            {
                out.push(self.notification(NotificationKind::Resolved, &inc, now));
                self.incident = None;
                self.set_state(AlertState::Resolved, now);
            } else if let (Some(r), Some(last)) = (self.policy.repeat_interval, inc.last_notified) {
                if now.saturating_sub(last) >= r {
                    inc.last_notified = Some(now);
                    inc.repeats += 1;
                    out.push(self.notification(NotificationKind::Repeat, &inc, now));
                    self.incident = Some(inc);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::MSG_OK;

    fn bad(msg: &str) -> Verdict {
        Verdict {
            compliance: Compliance::Error,
            message: msg.into(),
            value: serde_json::json!({"children": 0}),
            recheck_at: None,
        }
    }
    fn good() -> Verdict {
        Verdict {
            compliance: Compliance::Ok,
            message: MSG_OK.into(),
            value: serde_json::json!({"children": 1}),
            recheck_at: None,
        }
    }
    fn kinds(n: &[Notification]) -> Vec<NotificationKind> {
        n.iter().map(|n| n.kind).collect()
    }
    fn policy(cancel: Millis) -> Policy {
        Policy {
            cancel_timeout: cancel,
            ..Policy::default()
        }
    }

    /// A virtual clock driving one instance: feeds verdicts and ticks at every deadline.
    struct Sim {
        i: Instance,
        now: Millis,
        out: Vec<(Millis, NotificationKind)>,
    }

    impl Sim {
        fn new(p: Policy) -> Sim {
            Sim {
                i: Instance::new(p, 0),
                now: 0,
                out: Vec::new(),
            }
        }
        /// Advances to `t`, ticking at each deadline on the way.
        fn until(&mut self, t: Millis) {
            while let Some(d) = self.i.next_deadline() {
                if d > t || d < self.now {
                    break;
                }
                self.now = d;
                let n = self.i.tick(d);
                self.out.extend(n.iter().map(|n| (d, n.kind)));
                if self.i.next_deadline() == Some(d) {
                    break;
                }
            }
            self.now = t;
            let n = self.i.tick(t);
            self.out.extend(n.iter().map(|n| (t, n.kind)));
        }
        fn see(&mut self, t: Millis, v: Verdict) {
            self.until(t);
            let n = self.i.observe(&v, t);
            self.out.extend(n.iter().map(|n| (t, n.kind)));
        }
    }

    #[test]
    fn lifecycle_one_firing_one_resolved() {
        let mut s = Sim::new(policy(10_000));
        s.see(0, good());
        assert_eq!(s.i.state(), AlertState::Ok);
        s.see(1_000, bad("0 children is less than minimum 1"));
        assert_eq!(s.i.state(), AlertState::Pending);
        assert_eq!(s.i.next_deadline(), Some(11_000));
        // more bad verdicts while pending/firing never re-alert (zk_monitor's bug)
        s.see(5_000, bad("0 children is less than minimum 1"));
        s.until(10_999);
        assert!(s.out.is_empty());
        s.until(11_000);
        assert_eq!(s.out, vec![(11_000, NotificationKind::Firing)]);
        assert_eq!(s.i.state(), AlertState::Firing);
        s.see(12_000, bad("still"));
        s.see(20_000, bad("other message"));
        s.until(100_000);
        assert_eq!(s.out.len(), 1);
        s.see(120_000, good());
        assert_eq!(
            s.out,
            vec![
                (11_000, NotificationKind::Firing),
                (120_000, NotificationKind::Resolved)
            ]
        );
        assert_eq!(s.i.state(), AlertState::Resolved);
        assert_eq!(s.i.state_since(), 120_000);
        // a new incident later
        s.see(200_000, bad("again"));
        s.until(210_000);
        assert_eq!(s.out.len(), 3);
        assert_eq!(s.out[2], (210_000, NotificationKind::Firing));
    }

    #[test]
    fn cured_within_cancel_timeout_is_silent() {
        let mut s = Sim::new(policy(10_000));
        s.see(0, good());
        s.see(1_000, bad("x"));
        s.see(9_000, good());
        assert_eq!(s.i.state(), AlertState::Ok);
        assert!(s.i.incident().is_none());
        s.until(60_000);
        assert!(s.out.is_empty());
    }

    #[test]
    fn zero_cancel_timeout_fires_at_once_and_carries_the_message() {
        let mut i = Instance::new(policy(0), 0);
        let n = i.observe(&bad("0 children is less than minimum 1"), 5);
        assert_eq!(kinds(&n), vec![NotificationKind::Firing]);
        assert_eq!(n[0].message, "0 children is less than minimum 1");
        assert_eq!(n[0].incident.started, 5);
        let n = i.observe(&good(), 6);
        assert_eq!(kinds(&n), vec![NotificationKind::Resolved]);
        assert_eq!(n[0].message, MSG_OK);
        assert_eq!(n[0].incident.id, "5");
    }

    #[test]
    fn unknown_never_alerts() {
        let mut i = Instance::new(policy(0), 0);
        let v = Verdict {
            compliance: Compliance::Unknown,
            message: "x".into(),
            value: serde_json::Value::Null,
            recheck_at: None,
        };
        assert!(i.observe(&v, 1).is_empty());
        assert_eq!(i.state(), AlertState::Ok);
    }

    #[test]
    fn repeat_interval_reminders() {
        let mut s = Sim::new(Policy {
            cancel_timeout: 1_000,
            repeat_interval: Some(60_000),
            ..Policy::default()
        });
        s.see(0, bad("x"));
        s.until(200_000);
        assert_eq!(
            s.out,
            vec![
                (1_000, NotificationKind::Firing),
                (61_000, NotificationKind::Repeat),
                (121_000, NotificationKind::Repeat),
                (181_000, NotificationKind::Repeat),
            ]
        );
        assert_eq!(s.i.incident().unwrap().repeats, 3);
        s.see(190_000, good());
        assert_eq!(s.out.last(), Some(&(190_000, NotificationKind::Resolved)));
        s.until(400_000);
        assert_eq!(s.out.len(), 5);
    }

    #[test]
    fn resolve_timeout_debounces_recovery() {
        let mut s = Sim::new(Policy {
            resolve_timeout: 5_000,
            flap: None,
            ..Policy::default()
        });
        s.see(0, bad("x"));
        s.see(10_000, good());
        s.see(12_000, bad("x"));
        s.see(13_000, good());
        s.until(17_999);
        assert_eq!(s.out, vec![(0, NotificationKind::Firing)]);
        s.until(18_000);
        assert_eq!(s.out.last(), Some(&(18_000, NotificationKind::Resolved)));
    }

    #[test]
    fn flapping_is_damped() {
        // threshold 4 changes in 60 s; cancel_timeout 10 s; the node flaps every 3 s
        let p = Policy {
            cancel_timeout: 10_000,
            flap: Some((60_000, 4)),
            ..Policy::default()
        };
        let mut s = Sim::new(p);
        s.see(0, good());
        let mut t = 1_000;
        let mut b = true;
        while t < 30_000 {
            s.see(t, if b { bad("x") } else { good() });
            b = !b;
            t += 3_000;
        }
        // without damping every bad spell (3 s) would be cancelled; flapping keeps the
        // incident pending and it fires once
        let firing: Vec<_> = s
            .out
            .iter()
            .filter(|(_, k)| *k == NotificationKind::Firing)
            .collect();
        assert_eq!(firing.len(), 1, "{:?}", s.out);
        assert!(s.out.iter().all(|(_, k)| *k != NotificationKind::Resolved));
        assert!(s.i.is_flapping(s.now));
        // it stabilises good at 31 s; resolved once the changes age out of the window
        s.see(31_000, good());
        s.until(60_000);
        assert_eq!(s.i.state(), AlertState::Firing);
        s.until(200_000);
        let resolved: Vec<_> = s
            .out
            .iter()
            .filter(|(_, k)| *k == NotificationKind::Resolved)
            .collect();
        assert_eq!(resolved.len(), 1, "{:?}", s.out);
        assert!(resolved[0].0 <= 31_000 + 60_000, "{:?}", s.out);
        assert_eq!(s.i.state(), AlertState::Resolved);
    }

    #[test]
    fn without_flap_damping_short_spells_are_cancelled() {
        let mut s = Sim::new(Policy {
            cancel_timeout: 10_000,
            flap: None,
            ..Policy::default()
        });
        s.see(0, good());
        for k in 0..10 {
            s.see(
                1_000 + k * 3_000,
                if k % 2 == 0 { bad("x") } else { good() },
            );
        }
        s.see(40_000, good());
        s.until(100_000);
        assert!(s.out.is_empty(), "{:?}", s.out);
    }

    #[test]
    fn removal_resolves_a_firing_incident() {
        let mut i = Instance::new(policy(0), 0);
        assert_eq!(i.observe(&bad("x"), 1).len(), 1);
        let n = i.remove(2, "node no longer matches");
        assert_eq!(kinds(&n), vec![NotificationKind::Resolved]);
        assert_eq!(n[0].message, "node no longer matches");
        let mut i = Instance::new(policy(10), 0);
        i.observe(&bad("x"), 1);
        assert!(i.remove(2, "gone").is_empty());
    }

    #[test]
    fn restore_carries_on_persisted_incidents() {
        // the old leader had a pending incident since t=1000 (cancel 10 s); this standby saw
        // the violation only at 4000: it fires at 11000, once
        let mut i = Instance::new(policy(10_000), 0);
        i.observe(&bad("x"), 4_000);
        let inc = Incident {
            id: "3e8".into(),
            started: 1_000,
            fired_at: None,
            last_notified: None,
            repeats: 0,
        };
        i.restore(Some((AlertState::Pending, inc)), 5_000);
        assert_eq!(i.next_deadline(), Some(11_000));
        assert!(i.tick(10_999).is_empty());
        let n = i.tick(11_000);
        assert_eq!(kinds(&n), vec![NotificationKind::Firing]);
        assert_eq!(n[0].incident.id, "3e8");

        // firing persisted, condition now good: the new leader sends the resolve (never lost)
        let mut i = Instance::new(policy(0), 0);
        i.observe(&good(), 1_000);
        let inc = Incident {
            id: "a".into(),
            started: 10,
            fired_at: Some(20),
            last_notified: Some(20),
            repeats: 0,
        };
        i.restore(Some((AlertState::Firing, inc)), 2_000);
        let n = i.tick(2_000);
        assert_eq!(kinds(&n), vec![NotificationKind::Resolved]);
        assert_eq!(n[0].incident.id, "a");

        // firing persisted, still bad: no second FIRING
        let mut i = Instance::new(policy(0), 0);
        i.observe(&bad("x"), 1_000);
        i.restore(
            Some((
                AlertState::Firing,
                Incident {
                    id: "b".into(),
                    started: 10,
                    fired_at: Some(20),
                    last_notified: Some(20),
                    repeats: 0,
                },
            )),
            2_000,
        );
        assert!(i.tick(3_000).is_empty());
        assert_eq!(i.state(), AlertState::Firing);

        // nothing persisted but this standby saw it fire locally: it was never sent, so it
        // fires (once) now
        let mut i = Instance::new(policy(0), 0);
        assert_eq!(i.observe(&bad("x"), 1_000).len(), 1);
        i.restore(None, 2_000);
        assert_eq!(i.state(), AlertState::Pending);
        assert_eq!(kinds(&i.tick(2_000)), vec![NotificationKind::Firing]);
        assert!(i.tick(3_000).is_empty());
    }
}
