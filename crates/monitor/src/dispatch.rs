//! Delivery workers: one queue and one task per target, so a slow or failing alerter never
//! holds up the others, while the notifications of one target stay in order (a resolve never
//! overtakes its firing). Failed sends are retried with exponential backoff and counted.
//!
//! Sending is gated: only the leader of the current leadership epoch, while its ZooKeeper
//! session is connected, sends. A delivery from an older epoch is dropped (the new leader
//! re-sends what the persisted incidents say is still due).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::alert::{self, Payload};
use crate::config::{RetryPolicy, Target};
use crate::metrics::Metrics;

/// Who may send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Gate {
    pub epoch: u64,
    pub can_send: bool,
}

/// An entry of a persisted incident's outbox: (incident key, notification sequence number).
pub type OutboxRef = (String, u64);

#[derive(Debug, Clone)]
pub struct Delivery {
    pub target: Arc<Target>,
    pub payload: Arc<Payload>,
    pub epoch: u64,
    pub outbox: Option<OutboxRef>,
}

/// What became of a delivery that belongs to an outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub outbox: OutboxRef,
    pub target: String,
    pub epoch: u64,
    /// false: given up after all retries.
    pub delivered: bool,
}

pub struct Dispatcher {
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<Delivery>>>,
    gate: watch::Receiver<Gate>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    http: reqwest::Client,
    retry: RetryPolicy,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    pub fn new(
        gate: watch::Receiver<Gate>,
        outcomes: mpsc::UnboundedSender<Outcome>,
        http: reqwest::Client,
        retry: RetryPolicy,
        metrics: Arc<Metrics>,
    ) -> Dispatcher {
        Dispatcher {
            queues: Mutex::new(HashMap::new()),
            gate,
            outcomes,
            http,
            retry,
            metrics,
        }
    }

    /// Queues a delivery on its target's worker (started on first use).
    pub fn submit(&self, d: Delivery) {
        let Ok(mut queues) = self.queues.lock() else {
            return;
        };
        let id = d.target.id.clone();
        let tx = queues.entry(id).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(worker(
                rx,
                self.gate.clone(),
                self.outcomes.clone(),
                self.http.clone(),
                self.retry.clone(),
                self.metrics.clone(),
            ));
            tx
        });
        if let Err(e) = tx.send(d) {
            tracing::error!(target = %e.0.target.id, "alert worker is gone");
        }
    }
}

async fn worker(
    mut rx: mpsc::UnboundedReceiver<Delivery>,
    mut gate: watch::Receiver<Gate>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    http: reqwest::Client,
    retry: RetryPolicy,
    metrics: Arc<Metrics>,
) {
    while let Some(d) = rx.recv().await {
        let alerter = d.target.kind.name();
        let kind = d.payload.kind.as_str();
        let mut labels = Metrics::alerter_labels(alerter, &d.target.id);
        let mut backoff = retry.initial_backoff;
        let mut attempt = 0u32;
        let delivered = 'attempts: loop {
            // wait until this epoch's leader may send
            loop {
                let g = *gate.borrow_and_update();
                if g.epoch != d.epoch {
                    tracing::info!(target = %d.target.id, path = %d.payload.path, kind,
                        "leadership changed: delivery left to the current leader");
                    break 'attempts None;
                }
                if g.can_send {
                    break;
                }
                if gate.changed().await.is_err() {
                    return;
                }
            }
            attempt += 1;
            match alert::send(&d.target, &d.payload, &http).await {
                Ok(()) => {
                    tracing::info!(target = %d.target.id, path = %d.payload.path, kind, attempt,
                        "notification sent");
                    break Some(true);
                }
                Err(e) => {
                    metrics.send_errors.get_or_create(&labels).inc();
                    if attempt >= retry.attempts {
                        tracing::error!(target = %d.target.id, path = %d.payload.path, kind,
                            attempt, error = %e, "notification failed, giving up");
                        break Some(false);
                    }
                    tracing::warn!(target = %d.target.id, path = %d.payload.path, kind, attempt,
                        error = %e, retry_in = ?backoff, "notification failed, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(retry.max_backoff.max(Duration::from_millis(1)));
                }
            }
        };
        let Some(delivered) = delivered else {
            continue;
        };
        labels.push(("kind".to_string(), kind.to_string()));
        if delivered {
            metrics.alerts_sent.get_or_create(&labels).inc();
        } else {
            metrics.alerts_failed.get_or_create(&labels).inc();
        }
        if let Some(outbox) = d.outbox {
            let _ = outcomes.send(Outcome {
                outbox,
                target: d.target.id.clone(),
                epoch: d.epoch,
                delivered,
            });
        }
    }
}
