//! Quorum statistics: what the quorum (ZAB) traffic says about the ensemble (packets by type
//! and direction, proposal→commit latency, learners and their synchronisation), and
//! [`EnsembleDigest`], the election and quorum part of `zkscope digest`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use zkscope_capture::ensemble::{ZabKind, ZabMsg};
use zkscope_capture::packet::Timestamp;
use zkscope_capture::pipeline::{Consumer, Event};
use zkscope_proto::quorum::PacketType;

use crate::elections::Tracker;

/// Election and quorum traffic seen by `digest --protocol auto|fle|zab`: election rounds
/// (built by [`Tracker`]) and quorum packet counts.
#[derive(Default)]
pub struct EnsembleDigest {
    /// Election rounds.
    pub tracker: Tracker,
    /// FLE notifications and initial messages.
    pub fle_messages: u64,
    /// Quorum traffic.
    pub quorum: Quorum,
}

/// Proposals awaiting their commit kept at most (the rest are not timed).
const MAX_PENDING: usize = 100_000;

/// One direction of a quorum connection.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct QuorumDir {
    /// Sender.
    pub src: SocketAddr,
    /// Sender's server id, if known.
    pub src_sid: Option<i64>,
    /// Receiver.
    pub dst: SocketAddr,
    /// Receiver's server id, if known.
    pub dst_sid: Option<i64>,
    /// The leader sends.
    pub from_leader: bool,
}

impl QuorumDir {
    /// `leader 1 (addr) -> learner 2 (addr)`.
    pub fn label(&self) -> String {
        let end = |a: &SocketAddr, s: Option<i64>, role: &str| match s {
            Some(s) => format!("{role} {s} ({a})"),
            None => format!("{role} {a}"),
        };
        let (sr, dr) = if self.from_leader {
            ("leader", "learner")
        } else {
            ("learner", "leader")
        };
        format!(
            "{} -> {}",
            end(&self.src, self.src_sid, sr),
            end(&self.dst, self.dst_sid, dr)
        )
    }
}

/// Traffic of one direction.
#[derive(Default)]
pub struct DirCounts {
    /// Packets by type, pings left out.
    pub by_type: BTreeMap<String, u64>,
    /// Pings.
    pub pings: u64,
    /// Bytes (frame sizes).
    pub bytes: u64,
}

/// A learner seen introducing itself (FOLLOWERINFO/OBSERVERINFO).
#[derive(Debug, Clone)]
pub struct Learner {
    /// Its server id, if known.
    pub sid: Option<i64>,
    /// OBSERVERINFO rather than FOLLOWERINFO.
    pub observer: bool,
    /// The leader's quorum address.
    pub leader: SocketAddr,
    /// The leader's server id, if known.
    pub leader_sid: Option<i64>,
    /// When it was first seen.
    pub first: Timestamp,
}

/// Quorum traffic statistics.
#[derive(Default)]
pub struct Quorum {
    /// First quorum packet.
    pub first: Option<Timestamp>,
    /// Last quorum packet.
    pub last: Option<Timestamp>,
    /// Packets by type, pings left out, by direction (leader→learner, learner→leader).
    pub from_leader: BTreeMap<String, u64>,
    /// Packets by type from learners, pings left out.
    pub from_learner: BTreeMap<String, u64>,
    /// Pings.
    pub pings: u64,
    /// Packets (the snapshot after SNAP not counted).
    pub packets: u64,
    /// Per direction of each connection.
    pub dirs: BTreeMap<QuorumDir, DirCounts>,
    /// PROPOSALs from leaders.
    pub proposals: u64,
    /// COMMITs (and COMMITANDACTIVATEs) from leaders.
    pub commits: u64,
    /// First PROPOSAL of a zxid by a leader (its quorum address).
    pub pending: HashMap<(SocketAddr, i64), Timestamp>,
    /// Proposal→commit latencies (ns), one per zxid and leader.
    pub commit_latency: Vec<i64>,
    /// Learners by address.
    pub learners: BTreeMap<SocketAddr, Learner>,
    /// SNAP synchronisations.
    pub snaps: u64,
    /// Snapshot bytes skipped over.
    pub snapshot_bytes: u64,
    /// DIFF synchronisations.
    pub diffs: u64,
    /// TRUNC synchronisations.
    pub truncs: u64,
    /// Quorum SASL packets.
    pub auth: u64,
    /// Packets cut by gaps.
    pub cut: u64,
    /// Undecodable runs of bytes.
    pub undecodable: u64,
}

impl Quorum {
    /// Counts a message by type; `packet` is false for the snapshot that follows SNAP.
    fn count(&mut self, m: &ZabMsg<'_>, name: String, ping: bool, packet: bool) {
        self.packets += u64::from(packet);
        self.first.get_or_insert(m.ts);
        self.last = Some(m.ts);
        let dir = QuorumDir {
            src: m.src(),
            src_sid: m.sender_sid(),
            dst: m.dst(),
            dst_sid: m.receiver_sid(),
            from_leader: m.from_leader,
        };
        let c = self.dirs.entry(dir).or_default();
        c.bytes += m.size as u64;
        if ping {
            self.pings += 1;
            c.pings += 1;
            return;
        }
        *c.by_type.entry(name.clone()).or_default() += 1;
        let side = if m.from_leader {
            &mut self.from_leader
        } else {
            &mut self.from_learner
        };
        *side.entry(name).or_default() += 1;
    }

    /// Counts a quorum packet.
    pub fn zab(&mut self, m: &ZabMsg<'_>) {
        match &m.kind {
            ZabKind::Packet(p) => {
                let t = p.packet_type;
                let name = t
                    .display_name()
                    .map_or_else(|| format!("Unknown({})", t.0), str::to_string);
                self.count(m, name, t == PacketType::PING, true);
                let leader = if m.from_leader { m.src() } else { m.dst() };
                match t {
                    PacketType::PROPOSAL if m.from_leader => {
                        self.proposals += 1;
                        if self.pending.len() < MAX_PENDING {
                            self.pending.entry((leader, p.zxid.0)).or_insert(m.ts);
                        }
                    }
                    PacketType::COMMIT | PacketType::COMMITANDACTIVATE if m.from_leader => {
                        self.commits += 1;
                        if let Some(t0) = self.pending.remove(&(leader, p.zxid.0)) {
                            self.commit_latency.push(m.ts.0.saturating_sub(t0.0));
                        }
                    }
                    PacketType::SNAP if m.from_leader => self.snaps += 1,
                    PacketType::DIFF if m.from_leader => self.diffs += 1,
                    PacketType::TRUNC if m.from_leader => self.truncs += 1,
                    PacketType::FOLLOWERINFO | PacketType::OBSERVERINFO if !m.from_leader => {
                        self.learners.entry(m.src()).or_insert(Learner {
                            sid: m.sender_sid(),
                            observer: t == PacketType::OBSERVERINFO,
                            leader: m.dst(),
                            leader_sid: m.receiver_sid(),
                            first: m.ts,
                        });
                    }
                    _ => {}
                }
            }
            ZabKind::Auth(_) => {
                self.auth += 1;
                self.count(m, "Auth".to_string(), false, true);
            }
            ZabKind::Snapshot { bytes, .. } => {
                self.snapshot_bytes += bytes;
                self.count(m, "Snapshot".to_string(), false, false);
            }
            ZabKind::Cut { packet_type, .. } => {
                self.cut += 1;
                let name = packet_type
                    .display_name()
                    .map_or_else(|| format!("Unknown({})", packet_type.0), str::to_string);
                self.count(m, name, *packet_type == PacketType::PING, true);
            }
            ZabKind::Undecodable { .. } => self.undecodable += 1,
        }
    }

    /// p50, p95 and max of the proposal→commit latencies, in microseconds.
    pub fn latency_us(&self) -> Option<(f64, f64, f64)> {
        let mut v = self.commit_latency.clone();
        v.sort_unstable();
        let at = |q: f64| -> f64 {
            let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            v.get(i).map_or(0.0, |&ns| ns as f64 / 1e3)
        };
        let max = *v.last()? as f64 / 1e3;
        Some((at(0.50), at(0.95), max))
    }
}

impl EnsembleDigest {
    /// True when there was any election or quorum traffic.
    pub fn seen(&self) -> bool {
        self.fle_messages > 0 || !self.quorum.dirs.is_empty() || self.quorum.undecodable > 0
    }
}

/// Connection notes are not passed to the tracker: the digest's rounds are built from
/// messages only.
impl Consumer for EnsembleDigest {
    fn event(&mut self, ev: &Event<'_, '_>) {
        match ev {
            Event::Election(_) => {
                self.fle_messages += 1;
                self.tracker.event(ev);
            }
            Event::Quorum(m) => {
                self.tracker.event(ev);
                self.quorum.zab(m);
            }
            Event::Client(_) | Event::Note(_) => {}
        }
    }
}
