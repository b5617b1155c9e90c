//! Election rounds from the election (FLE) and quorum (ZAB) traffic: the story of each
//! leader election.
//!
//! A round opens with a LOOKING notification when no round is open, or when the open one is
//! over: every server that was LOOKING in it has been seen settled (a FOLLOWING/LEADING/
//! OBSERVING notification from it, its FOLLOWERINFO/OBSERVERINFO, or the LEADERINFO it sends
//! as leader), a settled server goes LOOKING again, or, once a quorum agreed, a server that
//! took no part goes LOOKING (a restarting server that finds the existing leader: that is a
//! round of its own) or a higher election epoch appears. Each notification updates its
//! sender's vote; the round's leader is the leader a quorum of votes agreed on (the servers
//! already FOLLOWING/LEADING vote for the current leader), confirmed by the LEADERINFO of the
//! quorum connection when it was captured. After the round, each learner's UPTODATE (the end
//! of its synchronisation with the new leader) is timed from the round's start.
//!
//! Observers run the election too (to find the leader) but do not vote: a server is an
//! observer when the configuration says so (`:observer`), when it sends OBSERVING or
//! OBSERVERINFO, or when its LOOKING vote is for no one (a non-voting member proposes
//! `Long.MIN_VALUE`). Observers' votes are never counted towards a quorum; rounds list them
//! apart from the participants.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use zkscope_capture::ensemble::{FleKind, FleMsg, Note, Proto, ServerConn, ZabKind, ZabMsg};
use zkscope_capture::packet::Timestamp;
use zkscope_capture::pipeline::{Consumer, Event};
use zkscope_capture::tcp::CloseReason;
use zkscope_proto::election::{parse_config, ConfigLine, Notification, Role, ServerState, Zxid};
use zkscope_proto::quorum::PacketType;

/// A server's vote as a notification carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    /// The sender's state.
    pub state: ServerState,
    /// Whom it votes for.
    pub leader: i64,
    /// The candidate's last zxid.
    pub zxid: Zxid,
    /// The election epoch.
    pub election_epoch: i64,
    /// The candidate's epoch.
    pub peer_epoch: i64,
}

impl Vote {
    fn of(n: &Notification<'_>) -> Self {
        Vote {
            state: n.state,
            leader: n.leader,
            zxid: n.zxid,
            election_epoch: n.election_epoch,
            peer_epoch: n.peer_epoch,
        }
    }
}

/// One election round.
#[derive(Debug, Default)]
pub struct Round {
    /// Its first LOOKING notification.
    pub start: Timestamp,
    /// Time of its last event.
    pub last: Timestamp,
    /// Servers that were LOOKING in it (observers included).
    pub looking: BTreeSet<i64>,
    /// Servers heard in it that are observers (their votes do not count).
    pub observers: BTreeSet<i64>,
    /// When each LOOKING server was seen settled, and how.
    pub settled: BTreeMap<i64, (Timestamp, &'static str)>,
    /// Latest vote of every server heard in the round.
    pub votes: BTreeMap<i64, Vote>,
    /// Vote changes in order (consecutive repeats of a server's vote left out).
    pub history: Vec<(Timestamp, i64, Vote)>,
    /// When a quorum of votes first agreed, and on whom (updated if it changes).
    pub agreed: Option<(Timestamp, i64)>,
    /// The leader as the quorum traffic shows it (LEADERINFO sender) and its new epoch.
    pub zab_leader: Option<i64>,
    /// The new leader's epoch (LEADERINFO/NEWLEADER).
    pub zab_epoch: Option<u32>,
    /// Voting members per the configuration carried by the notifications.
    pub voters: Option<usize>,
    /// When each learner got UPTODATE from the new leader.
    pub uptodate: BTreeMap<i64, Timestamp>,
    /// The round is over (a later round opened, or the input ended).
    pub closed: bool,
}

impl Round {
    fn new(ts: Timestamp) -> Self {
        Round {
            start: ts,
            last: ts,
            ..Round::default()
        }
    }

    /// Highest election epoch of its votes.
    pub fn epoch(&self) -> Option<i64> {
        self.votes.values().map(|v| v.election_epoch).max()
    }

    /// Every LOOKING server was seen settling.
    pub fn all_settled(&self) -> bool {
        !self.looking.is_empty() && self.looking.iter().all(|s| self.settled.contains_key(s))
    }

    /// Votes needed: a majority of the configuration's voters (or of those heard).
    pub fn quorum(&self) -> usize {
        let heard = self.participants().count();
        let n = self.voters.unwrap_or(heard).max(1);
        n / 2 + 1
    }

    /// Voting servers heard in the round.
    pub fn participants(&self) -> impl Iterator<Item = i64> + '_ {
        self.votes
            .keys()
            .copied()
            .filter(|s| !self.observers.contains(s))
    }

    /// The leader: from the quorum traffic, else the quorum's agreement, else the settled
    /// servers' votes.
    pub fn leader(&self) -> Option<i64> {
        if let Some(l) = self.zab_leader {
            return Some(l);
        }
        if let Some((_, l)) = self.agreed {
            return Some(l);
        }
        // Settled servers that said whom they follow.
        let mut count: BTreeMap<i64, usize> = BTreeMap::new();
        for v in self.votes.values() {
            if v.state != ServerState::LOOKING {
                *count.entry(v.leader).or_default() += 1;
            }
        }
        count.into_iter().max_by_key(|&(_, n)| n).map(|(l, _)| l)
    }

    /// When it ended: every LOOKING server settled, or the quorum agreed.
    pub fn end(&self) -> Timestamp {
        let settled = self.settled.values().map(|(t, _)| *t).max();
        match (settled, self.agreed) {
            (Some(s), _) if self.all_settled() => s,
            (s, Some((a, _))) => s.map_or(a, |s| s.max(a)),
            (Some(s), None) => s,
            (None, None) => self.last,
        }
    }

    /// `election`, or `rejoin` (a server finding the existing leader).
    pub fn kind(&self) -> &'static str {
        let answered = self
            .votes
            .iter()
            .any(|(sid, v)| v.state != ServerState::LOOKING && !self.looking.contains(sid));
        match self.leader() {
            Some(l) if answered && !self.looking.contains(&l) => "rejoin",
            _ => "election",
        }
    }

    fn check_agreement(&mut self, ts: Timestamp) {
        let q = self.quorum();
        let mut count: BTreeMap<i64, usize> = BTreeMap::new();
        for (sid, v) in &self.votes {
            if !self.observers.contains(sid) {
                *count.entry(v.leader).or_default() += 1;
            }
        }
        if let Some((&leader, _)) = count.iter().find(|&(_, &n)| n >= q) {
            if self.agreed.is_none_or(|(_, l)| l != leader) {
                self.agreed = Some((ts, leader));
            }
        }
    }
}

/// A server that goes LOOKING this long after a quorum agreed, without having been LOOKING
/// in that round, finds the settled ensemble: a round of its own (FLE decides within its
/// 200 ms finalize wait after a quorum agrees).
const JOIN_WINDOW_NS: i64 = 1_000_000_000;

/// How many of the latest rounds late quorum evidence (FOLLOWERINFO, UPTODATE) may belong to.
const RECENT: usize = 4;

/// Builds rounds from election and quorum messages.
#[derive(Debug, Default)]
pub struct Tracker {
    rounds: Vec<Round>,
    /// Voting members of the latest configuration seen.
    voters: Option<usize>,
    /// Servers known to be observers (configuration, OBSERVING, OBSERVERINFO).
    observers: BTreeSet<i64>,
    /// Notifications whose sender's id is unknown (not counted in rounds).
    pub unknown_senders: u64,
    /// Per server: seen settled since its last LOOKING vote, and that vote.
    servers: BTreeMap<i64, (bool, Option<Vote>)>,
    /// LOOKING notifications that only repeat a settled server's last LOOKING vote: a new
    /// election connection starts with the last message sent to that peer (left out).
    pub resent: u64,
    /// Open quorum connections seen (connection id → leader's server id): a leader whose
    /// last one closes has left its followers.
    quorum_open: BTreeMap<u64, Option<i64>>,
}

impl Tracker {
    fn current(&mut self) -> Option<&mut Round> {
        self.rounds.last_mut().filter(|r| !r.closed)
    }

    /// The rounds built so far, in order (the last one may still be open).
    pub fn rounds(&self) -> &[Round] {
        &self.rounds
    }

    fn close_current(&mut self) {
        if let Some(r) = self.rounds.last_mut() {
            r.closed = true;
        }
    }

    fn notification(&mut self, ts: Timestamp, sid: i64, n: &Notification<'_>) {
        if let Some(text) = n.config_str() {
            let mut voters = 0;
            for line in parse_config(text) {
                if let ConfigLine::Server(s) = line {
                    if s.role == Role::Participant {
                        voters += 1;
                        self.observers.remove(&s.sid);
                    } else {
                        self.observers.insert(s.sid);
                    }
                }
            }
            if voters > 0 {
                self.voters = Some(voters);
            }
        }
        match n.state {
            ServerState::OBSERVING => {
                self.observers.insert(sid);
            }
            ServerState::FOLLOWING | ServerState::LEADING => {
                self.observers.remove(&sid);
            }
            // FastLeaderElection's initial vote of a non-voting member.
            ServerState::LOOKING if n.leader == i64::MIN => {
                self.observers.insert(sid);
            }
            _ => {}
        }
        let observer = self.observers.contains(&sid);
        let vote = Vote::of(n);
        let looking = n.state == ServerState::LOOKING;
        let known = self.servers.entry(sid).or_insert((false, None));
        if looking {
            if known.0 && known.1 == Some(vote) {
                self.resent += 1;
                return;
            }
            *known = (false, Some(vote));
        } else {
            known.0 = true;
        }
        let new_round = match self.current() {
            None => looking,
            Some(r) if looking => {
                let agreed_long_ago = r
                    .agreed
                    .is_some_and(|(t, _)| ts.0.saturating_sub(t.0) > JOIN_WINDOW_NS);
                r.all_settled()
                    || r.settled.contains_key(&sid)
                    || (agreed_long_ago && !r.looking.contains(&sid))
                    || (r.agreed.is_some() && r.epoch().is_some_and(|e| vote.election_epoch > e))
            }
            Some(_) => false,
        };
        if new_round {
            self.close_current();
            self.rounds.push(Round::new(ts));
        }
        let voters = self.voters;
        // Answers after a round closed still belong to it (they answer its last LOOKING votes).
        let Some(r) = self.rounds.last_mut() else {
            return;
        };
        r.last = ts;
        r.voters = voters;
        if observer {
            r.observers.insert(sid);
        } else {
            r.observers.remove(&sid);
        }
        if looking {
            r.looking.insert(sid);
        } else if r.looking.contains(&sid) && !r.settled.contains_key(&sid) {
            r.settled
                .insert(sid, (ts, vote.state.name().unwrap_or("settled")));
        }
        if r.votes.get(&sid) != Some(&vote) {
            r.votes.insert(sid, vote);
            r.history.push((ts, sid, vote));
        }
        if !r.closed {
            r.check_agreement(ts);
            if r.all_settled() {
                self.close_current();
            }
        }
    }

    /// A quorum connection ended. Its learner has left the leader (it restarted, crashed, or
    /// looks for a new one), and so has a leader with no learner left: their next LOOKING
    /// vote is a new election even when it repeats their last one. (A restarted observer,
    /// or a participant restarted with no write since, sends the very same initial vote.)
    fn quorum_closed(&mut self, conn: &ServerConn, reason: CloseReason) {
        let open = self.quorum_open.remove(&conn.id).is_some();
        if !open || matches!(reason, CloseReason::End | CloseReason::Evicted) {
            return;
        }
        let mut left = Vec::with_capacity(2);
        left.extend(conn.client_sid);
        if let Some(leader) = conn.server_sid {
            if !self.quorum_open.values().any(|&l| l == Some(leader)) {
                left.push(leader);
            }
        }
        for sid in left {
            if let Some(known) = self.servers.get_mut(&sid) {
                known.0 = false;
            }
        }
    }

    /// A learner (FOLLOWERINFO/OBSERVERINFO) or leader (LEADERINFO) is past the election:
    /// the latest recent round where it was LOOKING and not yet seen settled.
    fn settle(&mut self, ts: Timestamp, sid: i64, how: &'static str) {
        self.servers.entry(sid).or_insert((false, None)).0 = true;
        let observer = how == "OBSERVERINFO";
        if observer {
            self.observers.insert(sid);
        }
        let Some(r) = self
            .rounds
            .iter_mut()
            .rev()
            .take(RECENT)
            .find(|r| r.looking.contains(&sid) && !r.settled.contains_key(&sid))
        else {
            return;
        };
        r.settled.insert(sid, (ts, how));
        if observer {
            r.observers.insert(sid);
        }
        r.last = r.last.max(ts);
        // Only the open round can close (older ones already are).
        if self.current().is_some_and(|r| r.all_settled()) {
            self.close_current();
        }
    }

    fn zab(&mut self, m: &ZabMsg<'_>) {
        let ZabKind::Packet(p) = &m.kind else {
            return;
        };
        match p.packet_type {
            PacketType::FOLLOWERINFO | PacketType::OBSERVERINFO if !m.from_leader => {
                if let Some(sid) = m.sender_sid() {
                    let how = if p.packet_type == PacketType::FOLLOWERINFO {
                        "FOLLOWERINFO"
                    } else {
                        "OBSERVERINFO"
                    };
                    self.settle(m.ts, sid, how);
                }
            }
            PacketType::LEADERINFO | PacketType::NEWLEADER if m.from_leader => {
                let epoch = p.zxid.epoch();
                let leader = m.sender_sid();
                // The round this leader was elected in (open, or the last one).
                if let Some(r) = self.rounds.last_mut() {
                    if leader.is_some() && (r.leader().is_none() || r.leader() == leader) {
                        r.zab_leader = leader.or(r.zab_leader);
                    }
                    r.zab_epoch = Some(epoch);
                }
                if p.packet_type == PacketType::LEADERINFO {
                    if let Some(l) = leader {
                        self.settle(m.ts, l, "LEADERINFO");
                    }
                }
            }
            PacketType::UPTODATE if m.from_leader => {
                // The latest recent round the learner took part in.
                let Some(learner) = m.receiver_sid() else {
                    return;
                };
                let leader = m.sender_sid();
                if let Some(r) = self.rounds.iter_mut().rev().take(RECENT).find(|r| {
                    r.votes.contains_key(&learner)
                        && (leader.is_none() || r.leader().is_none() || r.leader() == leader)
                }) {
                    r.uptodate.entry(learner).or_insert(m.ts);
                }
            }
            _ => {}
        }
    }
}

/// A finished round as other reports (the digest) see it.
#[derive(Debug, Clone)]
pub struct RoundSummary {
    /// `election` or `rejoin`.
    pub kind: &'static str,
    /// Its first LOOKING notification.
    pub start: Timestamp,
    /// See [`Round::end`].
    pub end: Timestamp,
    /// See [`Round::leader`].
    pub leader: Option<i64>,
    /// Highest election epoch of its votes.
    pub epoch: Option<i64>,
    /// The new leader's epoch from its LEADERINFO/NEWLEADER.
    pub zab_epoch: Option<u32>,
    /// Voting servers heard in the round.
    pub participants: Vec<i64>,
    /// Servers that were LOOKING in it (observers included).
    pub looking: Vec<i64>,
    /// Every LOOKING server was seen settling.
    pub complete: bool,
}

impl Tracker {
    /// Closes the open round (end of input).
    pub fn finish(&mut self) {
        self.close_current();
    }

    /// The rounds built so far, in order.
    pub fn summaries(&self) -> Vec<RoundSummary> {
        self.rounds
            .iter()
            .map(|r| RoundSummary {
                kind: r.kind(),
                start: r.start,
                end: r.end(),
                leader: r.leader(),
                epoch: r.epoch(),
                zab_epoch: r.zab_epoch,
                participants: r.participants().collect(),
                looking: r.looking.iter().copied().collect(),
                complete: r.all_settled(),
            })
            .collect()
    }
}

impl Consumer for Tracker {
    fn event(&mut self, ev: &Event<'_, '_>) {
        match ev {
            Event::Election(m) => self.fle(m),
            Event::Quorum(m) => {
                self.quorum_open.insert(m.conn.id, m.conn.server_sid);
                self.zab(m);
            }
            Event::Note(n) => self.note(n),
            Event::Client(_) => {}
        }
    }
}

impl Tracker {
    fn fle(&mut self, m: &FleMsg<'_>) {
        let FleKind::Notification(n) = &m.kind else {
            return;
        };
        match m.sender_sid() {
            Some(sid) => self.notification(m.ts, sid, n),
            None => self.unknown_senders += 1,
        }
    }

    fn note(&mut self, n: &Note<'_>) {
        if let Note::Closed { conn, reason, .. } = n {
            if conn.proto == Proto::Zab {
                self.quorum_closed(conn, *reason);
            }
        }
    }
}

/// Seconds since the epoch, microsecond precision.
pub fn secs(ts: Timestamp) -> f64 {
    ts.micros() as f64 / 1e6
}

/// Milliseconds from `from` to `to` (0 if negative).
pub fn ms(from: Timestamp, to: Timestamp) -> f64 {
    to.0.saturating_sub(from.0) as f64 / 1e6
}

#[derive(Serialize)]
struct VoteJson {
    sid: i64,
    state: Option<&'static str>,
    leader: i64,
    zxid: i64,
    zxid_hex: String,
    election_epoch: i64,
    peer_epoch: i64,
}

impl VoteJson {
    fn new(sid: i64, v: &Vote) -> Self {
        VoteJson {
            sid,
            state: v.state.name(),
            leader: v.leader,
            zxid: v.zxid.0,
            zxid_hex: v.zxid.to_string(),
            election_epoch: v.election_epoch,
            peer_epoch: v.peer_epoch,
        }
    }
}

#[derive(Serialize)]
struct ChangeJson {
    ts: f64,
    #[serde(flatten)]
    vote: VoteJson,
}

#[derive(Serialize)]
struct SettledJson {
    sid: i64,
    ts: f64,
    how: &'static str,
}

#[derive(Serialize)]
struct UpToDateJson {
    sid: i64,
    ts: f64,
    since_start_ms: f64,
}

/// The JSON model of a round (`zkscope elections --format json`).
#[derive(Serialize)]
pub struct RoundJson {
    round: usize,
    kind: &'static str,
    start_ts: f64,
    end_ts: f64,
    duration_ms: f64,
    leader: Option<i64>,
    epoch: Option<i64>,
    zab_epoch: Option<u32>,
    participants: Vec<i64>,
    observers: Vec<i64>,
    looking: Vec<i64>,
    voters: Option<usize>,
    quorum: usize,
    agreed_ts: Option<f64>,
    votes: Vec<VoteJson>,
    history: Vec<ChangeJson>,
    settled: Vec<SettledJson>,
    uptodate: Vec<UpToDateJson>,
    complete: bool,
}

/// Round `n` (from 1) as JSON.
pub fn round_json(n: usize, r: &Round) -> RoundJson {
    let end = r.end();
    RoundJson {
        round: n,
        kind: r.kind(),
        start_ts: secs(r.start),
        end_ts: secs(end),
        duration_ms: ms(r.start, end),
        leader: r.leader(),
        epoch: r.epoch(),
        zab_epoch: r.zab_epoch,
        participants: r.participants().collect(),
        observers: r.observers.iter().copied().collect(),
        looking: r.looking.iter().copied().collect(),
        voters: r.voters,
        quorum: r.quorum(),
        agreed_ts: r.agreed.map(|(t, _)| secs(t)),
        votes: r.votes.iter().map(|(s, v)| VoteJson::new(*s, v)).collect(),
        history: r
            .history
            .iter()
            .map(|(t, s, v)| ChangeJson {
                ts: secs(*t),
                vote: VoteJson::new(*s, v),
            })
            .collect(),
        settled: r
            .settled
            .iter()
            .map(|(s, (t, how))| SettledJson {
                sid: *s,
                ts: secs(*t),
                how,
            })
            .collect(),
        uptodate: r
            .uptodate
            .iter()
            .map(|(s, t)| UpToDateJson {
                sid: *s,
                ts: secs(*t),
                since_start_ms: ms(r.start, *t),
            })
            .collect(),
        complete: r.all_settled(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(state: ServerState, leader: i64, epoch: i64) -> Vote {
        Vote {
            state,
            leader,
            zxid: Zxid(0),
            election_epoch: epoch,
            peer_epoch: 0,
        }
    }

    fn feed(t: &mut Tracker, ts: i64, sid: i64, v: Vote) {
        feed_cfg(
            t,
            ts,
            sid,
            v,
            b"server.1=h:1:2:participant\nserver.2=h:3:4:participant\nserver.3=h:5:6:participant",
        );
    }

    fn feed_cfg(t: &mut Tracker, ts: i64, sid: i64, v: Vote, config: &'static [u8]) {
        let n = Notification {
            state: v.state,
            leader: v.leader,
            zxid: v.zxid,
            election_epoch: v.election_epoch,
            peer_epoch: v.peer_epoch,
            peer_epoch_derived: false,
            version: Some(2),
            version_ignored: false,
            config: Some(zkscope_proto::jute::JStr(config)),
            trailing: 0,
        };
        t.notification(Timestamp(ts * 1_000_000), sid, &n);
    }

    #[test]
    fn election_then_rejoin_then_failover() {
        use ServerState as S;
        let mut t = Tracker::default();
        // 1 and 2 elect 2.
        feed(&mut t, 0, 1, vote(S::LOOKING, 1, 1));
        feed(&mut t, 1, 2, vote(S::LOOKING, 2, 1));
        feed(&mut t, 2, 1, vote(S::LOOKING, 2, 1));
        feed(&mut t, 3, 2, vote(S::LEADING, 2, 1));
        feed(&mut t, 4, 1, vote(S::FOLLOWING, 2, 1));
        // 3 starts late and finds leader 2.
        feed(&mut t, 99, 1, vote(S::LOOKING, 2, 1)); // resent on a new connection
        feed(&mut t, 100, 3, vote(S::LOOKING, 3, 1));
        feed(&mut t, 101, 1, vote(S::FOLLOWING, 2, 1));
        feed(&mut t, 101, 2, vote(S::LEADING, 2, 1));
        feed(&mut t, 102, 3, vote(S::FOLLOWING, 2, 1));
        // 2 dies: 1 and 3 elect 3.
        feed(&mut t, 200, 1, vote(S::LOOKING, 1, 2));
        feed(&mut t, 200, 3, vote(S::LOOKING, 3, 2));
        feed(&mut t, 201, 1, vote(S::LOOKING, 3, 2));
        feed(&mut t, 202, 3, vote(S::LEADING, 3, 2));
        feed(&mut t, 202, 1, vote(S::FOLLOWING, 3, 2));
        t.close_current();
        let leaders: Vec<_> = t.rounds.iter().map(|r| r.leader()).collect();
        assert_eq!(leaders, [Some(2), Some(2), Some(3)]);
        let kinds: Vec<_> = t.rounds.iter().map(|r| r.kind()).collect();
        assert_eq!(kinds, ["election", "rejoin", "election"]);
        assert_eq!(t.rounds[0].agreed.map(|a| a.0), Some(Timestamp(2_000_000)));
        assert!(t.rounds.iter().all(|r| r.all_settled()));
        assert_eq!(t.resent, 1);
    }

    /// A server restarted with no write since sends the very vote it sent at its last start:
    /// not a resend once its quorum connection has closed.
    #[test]
    fn a_restart_repeating_its_vote_is_a_round() {
        use ServerState as S;
        let conn = |id, learner| ServerConn {
            id,
            proto: Proto::Zab,
            client: "127.0.0.1:40000".parse().unwrap(),
            server: "127.0.0.1:2888".parse().unwrap(),
            client_sid: Some(learner),
            server_sid: Some(2),
            observer: false,
        };
        let mut t = Tracker::default();
        feed(&mut t, 0, 1, vote(S::LOOKING, 2, 1));
        feed(&mut t, 1, 2, vote(S::LOOKING, 2, 1));
        feed(&mut t, 2, 2, vote(S::LEADING, 2, 1));
        feed(&mut t, 3, 1, vote(S::FOLLOWING, 2, 1));
        feed(&mut t, 50, 3, vote(S::LOOKING, 3, 1));
        feed(&mut t, 51, 2, vote(S::LEADING, 2, 1));
        feed(&mut t, 52, 3, vote(S::FOLLOWING, 2, 1));
        t.quorum_open.insert(10, Some(2));
        t.quorum_open.insert(11, Some(2));
        // 3 restarts: its quorum connection closes; 1 resends its last LOOKING vote to it
        // on their new election connection; 3 votes as at its first start.
        t.quorum_closed(&conn(11, 3), CloseReason::Fin);
        feed(&mut t, 99, 1, vote(S::LOOKING, 2, 1));
        feed(&mut t, 100, 3, vote(S::LOOKING, 3, 1));
        feed(&mut t, 101, 2, vote(S::LEADING, 2, 1));
        feed(&mut t, 102, 3, vote(S::FOLLOWING, 2, 1));
        // the end of the input closes nothing
        t.quorum_open.insert(12, Some(2));
        t.quorum_closed(&conn(12, 3), CloseReason::End);
        feed(&mut t, 200, 3, vote(S::LOOKING, 3, 1));
        t.close_current();
        let kinds: Vec<_> = t.rounds.iter().map(|r| r.kind()).collect();
        assert_eq!(kinds, ["election", "rejoin", "rejoin"]);
        assert_eq!(t.rounds[2].looking.iter().copied().collect::<Vec<_>>(), [3]);
        assert_eq!(t.resent, 2);
        // 2 still leads 1 (connection 10): it has not left.
        assert!(t.servers.get(&2).is_some_and(|k| k.0));
    }

    #[test]
    fn observers_do_not_vote() {
        use ServerState as S;
        const CFG: &[u8] = b"server.1=h:1:2:participant\nserver.2=h:3:4:participant\n\
            server.3=h:5:6:participant\nserver.4=h:7:8:observer\nversion=0";
        let mut t = Tracker::default();
        let non_voter = Vote {
            state: S::LOOKING,
            leader: i64::MIN,
            zxid: Zxid(i64::MIN),
            election_epoch: 1,
            peer_epoch: i64::MIN,
        };
        feed_cfg(&mut t, 0, 4, non_voter, CFG);
        feed_cfg(&mut t, 1, 1, vote(S::LOOKING, 2, 1), CFG);
        // The observer follows 2 before a second voter does: no quorum yet.
        feed_cfg(&mut t, 2, 4, vote(S::OBSERVING, 2, 1), CFG);
        assert_eq!(t.rounds[0].agreed, None);
        assert_eq!(t.rounds[0].quorum(), 2);
        feed_cfg(&mut t, 3, 2, vote(S::LOOKING, 2, 1), CFG);
        assert_eq!(t.rounds[0].agreed, Some((Timestamp(3_000_000), 2)));
        feed_cfg(&mut t, 4, 2, vote(S::LEADING, 2, 1), CFG);
        feed_cfg(&mut t, 5, 1, vote(S::FOLLOWING, 2, 1), CFG);
        t.close_current();
        let r = &t.rounds[0];
        assert_eq!(r.participants().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(r.observers.iter().copied().collect::<Vec<_>>(), [4]);
        assert_eq!(r.looking.iter().copied().collect::<Vec<_>>(), [1, 2, 4]);
        assert!(r.all_settled());
        assert_eq!(r.leader(), Some(2));
        // Without a configuration, OBSERVING alone marks the observer.
        let mut t = Tracker::default();
        feed_cfg(&mut t, 0, 1, vote(S::LOOKING, 3, 1), b"");
        feed_cfg(&mut t, 1, 5, vote(S::OBSERVING, 3, 1), b"");
        assert_eq!(
            t.rounds[0].observers.iter().copied().collect::<Vec<_>>(),
            [5]
        );
        assert_eq!(t.rounds[0].participants().collect::<Vec<_>>(), [1]);
    }
}
