//! Watching the configured nodes during one ZooKeeper session.
//!
//! Persistent watches when the server has them (3.6+: `addWatch`, `PERSISTENT` on plain paths,
//! `PERSISTENT_RECURSIVE` on the static prefix of glob paths), one-shot watches otherwise
//! (re-armed after each event). A full re-check runs at start, after every reconnect (events
//! during a disconnection can be lost, ZOOKEEPER-4698; and zookeeper-client 0.11 does not
//! re-register persistent watches on reconnect, so they are added again) and periodically.
//! Events are debounced and only the affected rule instances are re-read.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use zookeeper_client as zkc;

use crate::check;
use crate::config::{Config, WatchMode};
use crate::core::{now_ms, CoreMsg};
use crate::glob;
use crate::status::Shared;
use crate::zk;

/// The session is unusable (expired/closed): the supervisor starts a new one.
#[derive(Debug)]
pub struct SessionOver;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Armed {
    Exists,
    Children,
}

pub struct Watcher {
    client: zkc::Client,
    config: Arc<Config>,
    core: mpsc::UnboundedSender<CoreMsg>,
    shared: Arc<Shared>,
    persistent: bool,
    ev_tx: mpsc::UnboundedSender<(String, Option<Armed>)>,
    ev_rx: mpsc::UnboundedReceiver<(String, Option<Armed>)>,
    persistent_tasks: Vec<JoinHandle<()>>,
    armed: HashSet<(String, Armed)>,
    rechecks: BTreeMap<i64, BTreeSet<(usize, String)>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        for t in self.persistent_tasks.drain(..) {
            t.abort();
        }
    }
}

impl Watcher {
    pub fn new(
        client: zkc::Client,
        config: Arc<Config>,
        core: mpsc::UnboundedSender<CoreMsg>,
        shared: Arc<Shared>,
    ) -> Watcher {
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        Watcher {
            client,
            persistent: config.settings.watch_mode != WatchMode::Oneshot,
            config,
            core,
            shared,
            ev_tx,
            ev_rx,
            persistent_tasks: Vec::new(),
            armed: HashSet::new(),
            rechecks: BTreeMap::new(),
        }
    }

    /// Runs until the session is over. `reconnects` changes after each reconnection.
    pub async fn run(mut self, mut reconnects: watch::Receiver<u64>) -> SessionOver {
        if self.arm_persistent().await.is_err() || self.full_check().await.is_err() {
            return SessionOver;
        }
        let period = self.config.settings.check_interval;
        let mut interval = tokio::time::interval_at(Instant::now() + period, period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut dirty: BTreeSet<String> = BTreeSet::new();
        let mut debounce: Option<Instant> = None;
        loop {
            let recheck_in = self
                .rechecks
                .keys()
                .next()
                .map(|&t| Duration::from_millis(t.saturating_sub(now_ms()).max(0) as u64));
            let r = tokio::select! {
                ev = self.ev_rx.recv() => {
                    if let Some((path, armed)) = ev {
                        if let Some(kind) = armed {
                            self.armed.remove(&(path.clone(), kind));
                        }
                        dirty.insert(path);
                        debounce.get_or_insert_with(|| Instant::now() + Duration::from_millis(50));
                    }
                    Ok(())
                }
                _ = sleep_until_opt(debounce) => {
                    debounce = None;
                    let paths = std::mem::take(&mut dirty);
                    self.process(paths).await
                }
                _ = interval.tick() => self.full_check().await,
                changed = reconnects.changed() => {
                    if changed.is_err() {
                        return SessionOver;
                    }
                    tracing::info!("reconnected: re-adding watches and re-checking every rule");
                    match self.arm_persistent().await {
                        Ok(()) => self.full_check().await,
                        Err(e) => Err(e),
                    }
                }
                _ = sleep_opt(recheck_in) => self.run_rechecks().await,
            };
            if r.is_err() {
                return SessionOver;
            }
        }
    }

    /// (Re-)adds the persistent watches; in `auto` mode falls back to one-shot watches when
    /// the server does not know `addWatch` (before 3.6).
    ///
    /// On a reconnect the previous watchers are let go only once the new ones are in place:
    /// dropping the last local watcher of a path makes zookeeper-client send
    /// `RemoveWatches(Any)` for it, which also removes a persistent watch on the server (3.8),
    /// and reaching the server after the new `addWatch` it would silently undo it.
    async fn arm_persistent(&mut self) -> Result<(), SessionOver> {
        if !self.persistent {
            self.shared.update_zk(|z| z.watch_mode = Some("oneshot"));
            return Ok(());
        }
        let previous = std::mem::take(&mut self.persistent_tasks);
        let r = self.add_persistent().await;
        for t in previous {
            t.abort();
        }
        r
    }

    async fn add_persistent(&mut self) -> Result<(), SessionOver> {
        let mut wanted: BTreeSet<(String, bool)> = BTreeSet::new();
        for r in &self.config.rules {
            if r.is_glob() {
                wanted.insert((glob::static_prefix(&r.path), true));
            } else {
                wanted.insert((r.path.clone(), false));
            }
        }
        for (path, recursive) in wanted {
            let mode = if recursive {
                zkc::AddWatchMode::PersistentRecursive
            } else {
                zkc::AddWatchMode::Persistent
            };
            match self.client.watch(&path, mode).await {
                Ok(mut w) => {
                    let tx = self.ev_tx.clone();
                    self.persistent_tasks.push(tokio::spawn(async move {
                        loop {
                            let ev = w.changed().await;
                            if ev.event_type == zkc::EventType::Session {
                                if ev.session_state.is_terminated() {
                                    break;
                                }
                                continue;
                            }
                            if tx.send((ev.path, None)).is_err() {
                                break;
                            }
                        }
                    }));
                }
                Err(e) if zk::is_fatal(&e) => return Err(SessionOver),
                Err(e)
                    if self.config.settings.watch_mode == WatchMode::Auto
                        && !matches!(e, zkc::Error::ConnectionLoss | zkc::Error::Timeout) =>
                {
                    tracing::warn!(error = %e, "persistent watches unavailable (server before 3.6?): using one-shot watches");
                    self.persistent = false;
                    for t in self.persistent_tasks.drain(..) {
                        t.abort();
                    }
                    self.shared.update_zk(|z| z.watch_mode = Some("oneshot"));
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(path = %path, error = %e, "cannot add watch; the periodic re-check covers it");
                }
            }
        }
        self.shared.update_zk(|z| z.watch_mode = Some("persistent"));
        Ok(())
    }

    /// One-shot mode: arms an exists/data watch, and a child watch when `children`.
    async fn arm_oneshot(&mut self, path: &str, children: bool) -> Result<(), SessionOver> {
        if self.persistent {
            return Ok(());
        }
        let key = (path.to_string(), Armed::Exists);
        let mut exists = true;
        if !self.armed.contains(&key) {
            match self.client.check_and_watch_stat(path).await {
                Ok((stat, w)) => {
                    exists = stat.is_some();
                    self.armed.insert(key);
                    self.spawn_oneshot(w, path, Armed::Exists);
                }
                Err(e) if zk::is_fatal(&e) => return Err(SessionOver),
                Err(_) => return Ok(()),
            }
        }
        let key = (path.to_string(), Armed::Children);
        if children && exists && !self.armed.contains(&key) {
            match self.client.list_and_watch_children(path).await {
                Ok((_, w)) => {
                    self.armed.insert(key);
                    self.spawn_oneshot(w, path, Armed::Children);
                }
                Err(e) if zk::is_fatal(&e) => return Err(SessionOver),
                Err(_) => {}
            }
        }
        Ok(())
    }

    fn spawn_oneshot(&self, w: zkc::OneshotWatcher, path: &str, kind: Armed) {
        let tx = self.ev_tx.clone();
        let path = path.to_string();
        tokio::spawn(async move {
            let ev = w.changed().await;
            if ev.event_type != zkc::EventType::Session {
                let _ = tx.send((path, Some(kind)));
            }
        });
    }

    async fn full_check(&mut self) -> Result<(), SessionOver> {
        for ri in 0..self.config.rules.len() {
            if self.config.rules[ri].is_glob() {
                self.expand(ri).await?;
            } else {
                let p = self.config.rules[ri].path.clone();
                self.eval(ri, &p).await?;
            }
        }
        Ok(())
    }

    /// Lists the nodes a glob rule matches, evaluates each, tells the core the set.
    async fn expand(&mut self, ri: usize) -> Result<(), SessionOver> {
        let pattern = self.config.rules[ri].path.clone();
        let segs: Vec<String> = glob::segments(&pattern)
            .into_iter()
            .map(String::from)
            .collect();
        let prefix = glob::static_prefix(&pattern);
        let skip = glob::segments(&prefix).len();
        let mut current = vec![prefix];
        for seg in &segs[skip..] {
            let mut next = Vec::new();
            for node in &current {
                if glob::is_glob(seg) {
                    self.arm_oneshot(node, true).await?;
                    match self.client.list_children(node).await {
                        Ok(children) => {
                            for c in children {
                                if glob::segment_matches(seg, &c) {
                                    next.push(glob::join(node, &c));
                                }
                            }
                        }
                        Err(zkc::Error::NoNode) => {}
                        Err(e) if zk::is_fatal(&e) => return Err(SessionOver),
                        Err(e) => {
                            tracing::warn!(path = %node, error = %e, "cannot list children");
                            return Ok(()); // keep the instances we have; re-checked later
                        }
                    }
                } else {
                    next.push(glob::join(node, seg));
                }
            }
            current = next;
        }
        let mut found = BTreeSet::new();
        for p in current {
            if self.eval(ri, &p).await? {
                found.insert(p);
            }
        }
        let _ = self.core.send(CoreMsg::Expanded {
            rule: ri,
            paths: found,
        });
        Ok(())
    }

    /// Reads and checks one node; returns whether it is (still) an instance.
    async fn eval(&mut self, ri: usize, path: &str) -> Result<bool, SessionOver> {
        let rule = &self.config.rules[ri];
        let is_glob = rule.is_glob();
        let need_data = rule.checks.needs_data();
        let children = rule.checks.children_min.is_some() || rule.checks.children_max.is_some();
        self.arm_oneshot(path, children).await?;
        let rule = &self.config.rules[ri];
        let verdict = match zk::read_node(&self.client, path, need_data).await {
            Ok(snap) => {
                if is_glob && snap.stat.is_none() {
                    let _ = self.core.send(CoreMsg::Gone {
                        rule: ri,
                        path: path.to_string(),
                    });
                    return Ok(false);
                }
                check::evaluate(&rule.checks, &snap, now_ms())
            }
            Err(zkc::Error::NoAuth) => check::unreadable("not authorized (check --zookeeper-user)"),
            Err(e) if zk::is_fatal(&e) => return Err(SessionOver),
            Err(e) => {
                tracing::debug!(path, error = %e, "read failed; re-checked after reconnect");
                return Ok(true);
            }
        };
        if let Some(t) = verdict.recheck_at {
            self.rechecks
                .entry(t)
                .or_default()
                .insert((ri, path.to_string()));
        }
        let _ = self.core.send(CoreMsg::Observe {
            rule: ri,
            path: path.to_string(),
            verdict,
        });
        Ok(true)
    }

    async fn run_rechecks(&mut self) -> Result<(), SessionOver> {
        let now = now_ms();
        let due: Vec<i64> = self.rechecks.range(..=now).map(|(t, _)| *t).collect();
        let mut todo = BTreeSet::new();
        for t in due {
            if let Some(s) = self.rechecks.remove(&t) {
                todo.extend(s);
            }
        }
        for (ri, p) in todo {
            self.eval(ri, &p).await?;
        }
        Ok(())
    }

    /// Re-reads what the changed paths can affect.
    async fn process(&mut self, paths: BTreeSet<String>) -> Result<(), SessionOver> {
        let mut evals: BTreeSet<(usize, String)> = BTreeSet::new();
        let mut expands: BTreeSet<usize> = BTreeSet::new();
        for p in &paths {
            let parent = glob::parent(p);
            for (ri, r) in self.config.rules.iter().enumerate() {
                if r.is_glob() {
                    if glob::matches(&r.path, p) {
                        evals.insert((ri, p.clone()));
                    }
                    if p != "/" && glob::matches(&r.path, parent) {
                        evals.insert((ri, parent.to_string()));
                    }
                    let depth = glob::segments(p).len();
                    if depth < glob::segments(&r.path).len() && glob::matches_prefix(&r.path, p) {
                        expands.insert(ri);
                    }
                } else if r.path == *p || (p != "/" && r.path == parent) {
                    evals.insert((ri, r.path.clone()));
                }
            }
        }
        for ri in &expands {
            self.expand(*ri).await?;
        }
        for (ri, p) in evals {
            if expands.contains(&ri) {
                continue;
            }
            self.eval(ri, &p).await?;
        }
        Ok(())
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
