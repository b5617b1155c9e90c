//! Quorum port (2888): ZAB `QuorumPacket`s between the leader and its
//! learners (protocol.md §3).
//!
//! The stream has no length prefix: each message is one jute
//! `QuorumPacket{type:int, zxid:long, data:buffer, authinfo:vector<Id>}`
//! written back to back. [`decode_packet`] finds the end of one packet from
//! its declared lengths (capped, so garbage is `Invalid` rather than an
//! endless `Partial`); [`QuorumPacket::body`] then decodes `data` by type.
//! [`plausible_packet_start`] helps to resynchronise after a gap.
//!
//! The only other bytes on the stream are an optional quorum SASL exchange at
//! the start ([`decode_quorum_auth`]) and the raw snapshot that follows a
//! SNAP packet, which [`SnapshotSkipper`] walks over.

use core::fmt;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::client::{
    Acls, Data, Element, ErrCode, Hex, OpCode, RequestBody, Strings, Vector, MAX_MULTI_OPS,
};
pub use crate::election::{decode_quorum_auth, QuorumAuthPacket, Status, Zxid};
use crate::election::{read_capped_buffer, serialize_config, serialize_zxid, status_of, SeqOf};
use crate::jute::{DecodeError, ErrorKind, JStr, Reader, Result};

/// Largest `data` buffer [`decode_packet`] accepts (larger ⇒ `Invalid`).
pub const MAX_DATA_LEN: usize = 64 << 20;
/// Most `authinfo` ids [`decode_packet`] accepts (more ⇒ `Invalid`).
pub const MAX_AUTHINFO: usize = 1024;
/// Longest `authinfo` scheme or id string [`decode_packet`] accepts.
pub const MAX_AUTH_ID_LEN: usize = 64 << 10;
/// Smallest packet: type, zxid, null data, null authinfo.
pub const MIN_PACKET_LEN: usize = 20;

const PACKET_TYPES: [(&str, &str); 19] = [
    ("REQUEST", "Request"),
    ("PROPOSAL", "Proposal"),
    ("ACK", "Ack"),
    ("COMMIT", "Commit"),
    ("PING", "Ping"),
    ("REVALIDATE", "Revalidate"),
    ("SYNC", "Sync"),
    ("INFORM", "Inform"),
    ("COMMITANDACTIVATE", "CommitAndActivate"),
    ("NEWLEADER", "NewLeader"),
    ("FOLLOWERINFO", "FollowerInfo"),
    ("UPTODATE", "UpToDate"),
    ("DIFF", "Diff"),
    ("TRUNC", "Trunc"),
    ("SNAP", "Snap"),
    ("OBSERVERINFO", "ObserverInfo"),
    ("LEADERINFO", "LeaderInfo"),
    ("ACKEPOCH", "AckEpoch"),
    ("INFORMANDACTIVATE", "InformAndActivate"),
];

/// `QuorumPacket.type` (`Leader.java` constants; unknown values kept).
///
/// `Display` gives the Java name (`PROPOSAL`), [`PacketType::display_name`]
/// the zktraffic class name (`Proposal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PacketType(pub i32);

impl PacketType {
    /// `REQUEST` (1): Learner → leader: a forwarded client request.
    pub const REQUEST: PacketType = PacketType(1);
    /// `PROPOSAL` (2): Leader → follower: a transaction to log.
    pub const PROPOSAL: PacketType = PacketType(2);
    /// `ACK` (3): Learner → leader: the zxid was logged (also acks NEWLEADER/UPTODATE).
    pub const ACK: PacketType = PacketType(3);
    /// `COMMIT` (4): Leader → follower: apply the zxid.
    pub const COMMIT: PacketType = PacketType(4);
    /// `PING` (5): Both ways: liveness, learner replies carry touched sessions.
    pub const PING: PacketType = PacketType(5);
    /// `REVALIDATE` (6): Session revalidation: learner request, leader reply.
    pub const REVALIDATE: PacketType = PacketType(6);
    /// `SYNC` (7): Leader → learner: answer to a forwarded `sync`.
    pub const SYNC: PacketType = PacketType(7);
    /// `INFORM` (8): Leader → observer: a committed transaction.
    pub const INFORM: PacketType = PacketType(8);
    /// `COMMITANDACTIVATE` (9): Leader → follower: commit a reconfig and activate it (3.5+).
    pub const COMMITANDACTIVATE: PacketType = PacketType(9);
    /// `NEWLEADER` (10): Leader → learner: end of sync, carries the config (3.5+).
    pub const NEWLEADER: PacketType = PacketType(10);
    /// `FOLLOWERINFO` (11): Follower → leader: first packet, `LearnerInfo`.
    pub const FOLLOWERINFO: PacketType = PacketType(11);
    /// `UPTODATE` (12): Leader → learner: start serving.
    pub const UPTODATE: PacketType = PacketType(12);
    /// `DIFF` (13): Leader → learner: sync by proposals.
    pub const DIFF: PacketType = PacketType(13);
    /// `TRUNC` (14): Leader → learner: truncate the log to the zxid.
    pub const TRUNC: PacketType = PacketType(14);
    /// `SNAP` (15): Leader → learner: a raw snapshot follows (see [`SnapshotSkipper`]).
    pub const SNAP: PacketType = PacketType(15);
    /// `OBSERVERINFO` (16): Observer → leader: first packet, `LearnerInfo`.
    pub const OBSERVERINFO: PacketType = PacketType(16);
    /// `LEADERINFO` (17): Leader → learner: protocol version, new epoch in the zxid.
    pub const LEADERINFO: PacketType = PacketType(17);
    /// `ACKEPOCH` (18): Learner → leader: current epoch.
    pub const ACKEPOCH: PacketType = PacketType(18);
    /// `INFORMANDACTIVATE` (19): Leader → observer: a reconfig to apply and activate (3.5+).
    pub const INFORMANDACTIVATE: PacketType = PacketType(19);
}

impl PacketType {
    fn entry(self) -> Option<(&'static str, &'static str)> {
        let i = usize::try_from(self.0.checked_sub(1)?).ok()?;
        PACKET_TYPES.get(i).copied()
    }

    /// Java constant name (`"PROPOSAL"`), `None` when unknown.
    pub fn name(self) -> Option<&'static str> {
        self.entry().map(|e| e.0)
    }

    /// zktraffic class name (`"Proposal"`, `"UpToDate"`), `None` when unknown.
    pub fn display_name(self) -> Option<&'static str> {
        self.entry().map(|e| e.1)
    }

    /// True for the 19 known types.
    pub fn is_known(self) -> bool {
        self.entry().is_some()
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

impl From<i32> for PacketType {
    fn from(v: i32) -> Self {
        PacketType(v)
    }
}

impl Serialize for PacketType {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_i32(self.0)
    }
}

/// One client `Id{scheme, id}` of a REQUEST's `authinfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct AuthId<'a> {
    /// Scheme (`ip`, `digest`, `sasl`, `x509`, `super`…).
    pub scheme: JStr<'a>,
    /// Identity within the scheme.
    pub id: JStr<'a>,
}

impl<'a> Element<'a> for AuthId<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        Ok(AuthId {
            scheme: r.ustring_or_empty("scheme")?,
            id: r.ustring_or_empty("id")?,
        })
    }
}

/// `vector<Id>`, lazily iterated.
pub type AuthIds<'a> = Vector<'a, AuthId<'a>>;

/// A decoded `QuorumPacket` (the body stays raw until [`QuorumPacket::body`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumPacket<'a> {
    /// Packet type.
    pub packet_type: PacketType,
    /// zxid (meaning depends on the type, see protocol.md §3.2).
    pub zxid: Zxid,
    /// The `data` buffer (`None` = null).
    pub data: Data<'a>,
    /// Client ids (REQUEST only; null elsewhere).
    pub authinfo: AuthIds<'a>,
}

/// Decodes one `QuorumPacket` from the start of `buf`.
///
/// `Partial` while `buf` is a strict prefix of a packet whose declared
/// lengths are within limits; `Invalid` for a data length over
/// [`MAX_DATA_LEN`], more than [`MAX_AUTHINFO`] ids, an id string over
/// [`MAX_AUTH_ID_LEN`], or a length below −1. Any `type` is accepted.
pub fn decode_packet(buf: &[u8]) -> Status<(usize, QuorumPacket<'_>)> {
    status_of(read_packet(buf))
}

fn read_packet(buf: &[u8]) -> Result<(usize, QuorumPacket<'_>)> {
    let mut r = Reader::new(buf);
    let packet_type = PacketType(r.i32("type")?);
    let zxid = Zxid(r.i64("zxid")?);
    let data = read_capped_buffer(&mut r, "data", MAX_DATA_LEN)?;
    let auth_start = r.position();
    let count = r.i32("authinfo")?;
    if count < -1 {
        return Err(DecodeError::new(
            ErrorKind::NegativeLength,
            "authinfo",
            auth_start,
        ));
    }
    if usize::try_from(count).is_ok_and(|n| n > MAX_AUTHINFO) {
        return Err(DecodeError::new(ErrorKind::Invalid, "authinfo", auth_start));
    }
    for _ in 0..count.max(0) {
        read_capped_buffer(&mut r, "scheme", MAX_AUTH_ID_LEN)?;
        read_capped_buffer(&mut r, "id", MAX_AUTH_ID_LEN)?;
    }
    let end = r.position();
    let auth_bytes = buf.get(auth_start..end).unwrap_or_default();
    let authinfo = AuthIds::read(&mut Reader::new(auth_bytes), "authinfo")?;
    Ok((
        end,
        QuorumPacket {
            packet_type,
            zxid,
            data: Data(data),
            authinfo,
        },
    ))
}

/// The type and zxid of the packet starting `buf`, from its first 12 bytes
/// alone (`None` when shorter). Gives context for a packet that
/// [`decode_packet`] rejects.
pub fn peek_header(buf: &[u8]) -> Option<(PacketType, Zxid)> {
    let mut r = Reader::new(buf);
    Some((PacketType(r.i32("type").ok()?), Zxid(r.i64("zxid").ok()?)))
}

/// True when `buf` could start a `QuorumPacket` written by ZooKeeper: a
/// known type (1..=19), zxid ≥ −1 and a data length of −1 or
/// `0..=`[`MAX_DATA_LEN`]; when the authinfo count is already present it must
/// be −1 or `0..=`[`MAX_AUTHINFO`]. Needs at least 16 bytes (else false).
/// Meant for resynchronising a stream after a gap.
pub fn plausible_packet_start(buf: &[u8]) -> bool {
    let mut r = Reader::new(buf);
    let (Ok(ty), Ok(zxid), Ok(len)) = (r.i32("type"), r.i64("zxid"), r.i32("data")) else {
        return false;
    };
    if !PacketType(ty).is_known() || zxid < -1 {
        return false;
    }
    let len = match len {
        -1 => 0,
        n => match usize::try_from(n) {
            Ok(n) if n <= MAX_DATA_LEN => n,
            _ => return false,
        },
    };
    if r.bytes(len, "data").is_ok() {
        if let Ok(count) = r.i32("authinfo") {
            return count == -1 || usize::try_from(count).is_ok_and(|n| n <= MAX_AUTHINFO);
        }
    }
    true
}

impl<'a> QuorumPacket<'a> {
    /// Decodes `data` according to the packet type.
    ///
    /// `from_leader` is the direction when known: it decides REVALIDATE
    /// (request 12 bytes vs. reply 9 bytes); with `None` the length decides.
    /// PING is told apart by its data (null from the leader, a session list
    /// from a learner).
    pub fn body(&self, from_leader: Option<bool>) -> Result<QuorumBody<'a>> {
        decode_body(self.packet_type, self.data.0, from_leader)
    }

    /// A view that serialises with the body decoded for a known direction.
    pub fn directed(self, from_leader: Option<bool>) -> DirectedPacket<'a> {
        DirectedPacket {
            packet: self,
            from_leader,
        }
    }

    /// Writes the packet fields and the body fields (or `body_error`) into an
    /// open map: `type` (zktraffic name or null), `type_code`, `zxid`,
    /// `zxid_hex`, `zxid_epoch`, `zxid_counter`, `payload_len` (length of
    /// `data`, null for null), `authinfo` (only when not null), then the
    /// fields of [`QuorumBody::serialize_fields`].
    pub fn serialize_fields<M: SerializeMap>(
        &self,
        m: &mut M,
        from_leader: Option<bool>,
    ) -> core::result::Result<(), M::Error> {
        m.serialize_entry("type", &self.packet_type.display_name())?;
        m.serialize_entry("type_code", &self.packet_type.0)?;
        serialize_zxid(
            m,
            ["zxid", "zxid_hex", "zxid_epoch", "zxid_counter"],
            self.zxid,
        )?;
        m.serialize_entry("payload_len", &self.data)?;
        if !self.authinfo.is_null() {
            m.serialize_entry("authinfo", &self.authinfo)?;
        }
        match self.body(from_leader) {
            Ok(b) => b.serialize_fields(m),
            Err(e) => m.serialize_entry("body_error", &crate::election::DisplayStr(&e)),
        }
    }
}

/// Flat map (see [`QuorumPacket::serialize_fields`]), direction unknown.
impl Serialize for QuorumPacket<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        self.serialize_fields(&mut m, None)?;
        m.end()
    }
}

/// A [`QuorumPacket`] with its direction, for serialisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectedPacket<'a> {
    /// The packet.
    pub packet: QuorumPacket<'a>,
    /// Sent by the leader (`Some(true)`), a learner (`Some(false)`), or unknown.
    pub from_leader: Option<bool>,
}

impl Serialize for DirectedPacket<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        self.packet.serialize_fields(&mut m, self.from_leader)?;
        m.end()
    }
}

// ---------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------

/// The `data` of a [`QuorumPacket`], by type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuorumBody<'a> {
    /// REQUEST: a client request forwarded by a learner.
    Request(ForwardedRequest<'a>),
    /// PROPOSAL and INFORM: a transaction.
    Txn(Txn<'a>),
    /// PING: `None` from the leader (null data); from a learner, the sessions
    /// it touched since the last ping.
    Ping(Option<PingSessions<'a>>),
    /// REVALIDATE learner → leader.
    RevalidateRequest {
        /// Session to revalidate.
        session: i64,
        /// Its timeout (ms).
        timeout: i32,
    },
    /// REVALIDATE leader → learner.
    RevalidateReply {
        /// Session.
        session: i64,
        /// Whether the session is still valid.
        valid: bool,
    },
    /// COMMITANDACTIVATE (3.5+ reconfig commit).
    CommitAndActivate {
        /// Leader designated by the new config.
        designated_leader: i64,
    },
    /// INFORMANDACTIVATE (3.5+, to observers): designated leader + proposal.
    InformAndActivate {
        /// Leader designated by the new config.
        designated_leader: i64,
        /// The reconfig transaction.
        txn: Txn<'a>,
    },
    /// NEWLEADER: the last-seen config text (3.5+), null in 3.4.
    NewLeader {
        /// Config text (protocol.md §4.4).
        config: Option<JStr<'a>>,
    },
    /// FOLLOWERINFO / OBSERVERINFO (`None` for null data).
    LearnerInfo(Option<LearnerInfo>),
    /// LEADERINFO.
    LeaderInfo {
        /// ZAB protocol version (0x10000).
        protocol_version: i32,
    },
    /// ACKEPOCH.
    AckEpoch {
        /// The learner's current epoch, −1 if it had already accepted this one.
        epoch: i32,
    },
    /// ACK, COMMIT, UPTODATE, SYNC, DIFF, TRUNC, SNAP: only the zxid matters.
    Empty,
    /// A type this crate does not know.
    Unknown {
        /// Data length (`None` for null).
        len: Option<usize>,
    },
}

/// Decodes the `data` of a packet of type `ty` (see [`QuorumPacket::body`]).
pub fn decode_body(
    ty: PacketType,
    data: Option<&[u8]>,
    from_leader: Option<bool>,
) -> Result<QuorumBody<'_>> {
    let bytes = data.unwrap_or_default();
    let mut r = Reader::new(bytes);
    Ok(match ty {
        PacketType::REQUEST => QuorumBody::Request(ForwardedRequest::read(&mut r)?),
        PacketType::PROPOSAL | PacketType::INFORM => QuorumBody::Txn(Txn::read(&mut r)?),
        PacketType::PING => QuorumBody::Ping(data.map(PingSessions::decode).transpose()?),
        PacketType::REVALIDATE => {
            if from_leader.unwrap_or(bytes.len() == 9) {
                QuorumBody::RevalidateReply {
                    session: r.i64("sessionId")?,
                    valid: r.bool("valid")?,
                }
            } else {
                QuorumBody::RevalidateRequest {
                    session: r.i64("sessionId")?,
                    timeout: r.i32("timeout")?,
                }
            }
        }
        PacketType::COMMITANDACTIVATE => QuorumBody::CommitAndActivate {
            designated_leader: r.i64("designatedLeader")?,
        },
        PacketType::INFORMANDACTIVATE => QuorumBody::InformAndActivate {
            designated_leader: r.i64("designatedLeader")?,
            txn: Txn::read(&mut r)?,
        },
        PacketType::NEWLEADER => QuorumBody::NewLeader {
            config: data.map(JStr),
        },
        PacketType::FOLLOWERINFO | PacketType::OBSERVERINFO => {
            QuorumBody::LearnerInfo(data.map(LearnerInfo::decode).transpose()?)
        }
        PacketType::LEADERINFO => QuorumBody::LeaderInfo {
            protocol_version: r.i32("protocolVersion")?,
        },
        PacketType::ACKEPOCH => QuorumBody::AckEpoch {
            epoch: r.i32("epoch")?,
        },
        PacketType::ACK
        | PacketType::COMMIT
        | PacketType::UPTODATE
        | PacketType::SYNC
        | PacketType::DIFF
        | PacketType::TRUNC
        | PacketType::SNAP => QuorumBody::Empty,
        _ => QuorumBody::Unknown {
            len: data.map(<[u8]>::len),
        },
    })
}

impl QuorumBody<'_> {
    /// Writes this body's fields into an open map:
    /// REQUEST `session`, `cxid`, `req_type`, `op`, request fields (`path`…);
    /// PROPOSAL/INFORM `session`, `cxid`, `txn_zxid`, `txn_zxid_hex`, `time`,
    /// `txn_type`, `txn_op`, record fields, `digest`;
    /// PING `sessions` (list or null); REVALIDATE `session` + `timeout` or `valid`;
    /// COMMITANDACTIVATE/INFORMANDACTIVATE `designated_leader` (+ txn fields);
    /// NEWLEADER `config`, `config_servers`, `config_version`;
    /// FOLLOWERINFO/OBSERVERINFO `sid`, `protocol_version`, `config_version`;
    /// LEADERINFO `protocol_version`; ACKEPOCH `epoch`; unknown `body_len`.
    pub fn serialize_fields<M: SerializeMap>(
        &self,
        m: &mut M,
    ) -> core::result::Result<(), M::Error> {
        match self {
            QuorumBody::Request(req) => req.serialize_fields(m),
            QuorumBody::Txn(txn) => txn.serialize_fields(m),
            QuorumBody::Ping(sessions) => m.serialize_entry("sessions", sessions),
            QuorumBody::RevalidateRequest { session, timeout } => {
                m.serialize_entry("session", &Hex(*session))?;
                m.serialize_entry("timeout", timeout)
            }
            QuorumBody::RevalidateReply { session, valid } => {
                m.serialize_entry("session", &Hex(*session))?;
                m.serialize_entry("valid", valid)
            }
            QuorumBody::CommitAndActivate { designated_leader } => {
                m.serialize_entry("designated_leader", designated_leader)
            }
            QuorumBody::InformAndActivate {
                designated_leader,
                txn,
            } => {
                m.serialize_entry("designated_leader", designated_leader)?;
                txn.serialize_fields(m)
            }
            QuorumBody::NewLeader { config } => serialize_config(m, *config),
            QuorumBody::LearnerInfo(info) => {
                m.serialize_entry("sid", &info.map(|i| i.sid))?;
                m.serialize_entry("protocol_version", &info.and_then(|i| i.protocol_version))?;
                m.serialize_entry("config_version", &info.and_then(|i| i.config_version))
            }
            QuorumBody::LeaderInfo { protocol_version } => {
                m.serialize_entry("protocol_version", protocol_version)
            }
            QuorumBody::AckEpoch { epoch } => m.serialize_entry("epoch", epoch),
            QuorumBody::Empty => Ok(()),
            QuorumBody::Unknown { len } => m.serialize_entry("body_len", len),
        }
    }
}

/// Flat map of the body's fields (see [`QuorumBody::serialize_fields`]).
impl Serialize for QuorumBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        self.serialize_fields(&mut m)?;
        m.end()
    }
}

/// `LearnerInfo` (FOLLOWERINFO/OBSERVERINFO data): 8 bytes before 3.4,
/// 12 in 3.4, 20 in 3.5+.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct LearnerInfo {
    /// The learner's server id.
    pub sid: i64,
    /// ZAB protocol version (0x10000 = ZAB 1.0); absent in 8-byte bodies.
    pub protocol_version: Option<i32>,
    /// Version of the learner's last activated config (3.5+).
    pub config_version: Option<i64>,
}

impl LearnerInfo {
    /// Reads the fields present (a field cut short is `Truncated`; bytes
    /// after the 20th are ignored, as the leader does).
    pub fn decode(data: &[u8]) -> Result<Self> {
        let mut r = Reader::new(data);
        let sid = r.i64("serverid")?;
        let protocol_version = if r.is_empty() {
            None
        } else {
            Some(r.i32("protocolVersion")?)
        };
        let config_version = if r.is_empty() {
            None
        } else {
            Some(r.i64("configVersion")?)
        };
        Ok(LearnerInfo {
            sid,
            protocol_version,
            config_version,
        })
    }
}

/// The session list of a learner's PING reply: (sessionId long, timeout int)*.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PingSessions<'a> {
    bytes: &'a [u8],
}

/// One entry of [`PingSessions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionTimeout {
    /// Session id.
    pub session: i64,
    /// Its timeout (ms).
    pub timeout: i32,
}

/// `{"session":"0x…","timeout":10000}`.
impl Serialize for SessionTimeout {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("session", &Hex(self.session))?;
        m.serialize_entry("timeout", &self.timeout)?;
        m.end()
    }
}

impl<'a> PingSessions<'a> {
    /// Validates a session list (its length must be a multiple of 12).
    pub fn decode(data: &'a [u8]) -> Result<Self> {
        let whole = data.len() - data.len() % 12;
        if whole != data.len() {
            let mut r = Reader::new(data.get(whole..).unwrap_or_default());
            r.i64("sessionId")
                .and_then(|_| r.i32("timeout"))
                .map_err(|e| DecodeError::new(e.kind, e.field, e.offset + whole))?;
        }
        Ok(PingSessions { bytes: data })
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.bytes.len() / 12
    }

    /// True for an empty list.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Iterates the sessions.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = SessionTimeout> + 'a {
        self.bytes.chunks_exact(12).map(|c| {
            let mut r = Reader::new(c);
            SessionTimeout {
                session: r.i64("sessionId").unwrap_or_default(),
                timeout: r.i32("timeout").unwrap_or_default(),
            }
        })
    }
}

impl fmt::Debug for PingSessions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for PingSessions<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for e in self.iter() {
            seq.serialize_element(&e)?;
        }
        seq.end()
    }
}

// ---------------------------------------------------------------------------
// Forwarded requests
// ---------------------------------------------------------------------------

/// REQUEST data: a client request a learner forwards to the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardedRequest<'a> {
    /// Client session.
    pub session: i64,
    /// Client xid.
    pub cxid: i32,
    /// Request type.
    pub op: OpCode,
    /// The request record.
    pub record: ForwardedRecord<'a>,
    /// Bytes after a known record.
    pub trailing: usize,
}

/// The record of a [`ForwardedRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedRecord<'a> {
    /// createSession (−10): the requested timeout.
    CreateSession {
        /// Session timeout (ms).
        timeout: i32,
    },
    /// Any other opcode: the client record, decoded as on the client port
    /// (closeSession is [`RequestBody::Empty`]).
    Client(RequestBody<'a>),
}

impl<'a> ForwardedRequest<'a> {
    /// Reads sessionId, cxid, type and the record up to the end of `r`.
    pub fn read(r: &mut Reader<'a>) -> Result<Self> {
        let session = r.i64("sessionId")?;
        let cxid = r.i32("cxid")?;
        let op = OpCode(r.i32("type")?);
        let record = if op == OpCode::CREATE_SESSION {
            ForwardedRecord::CreateSession {
                timeout: r.i32("timeOut")?,
            }
        } else {
            ForwardedRecord::Client(RequestBody::read(op, r)?)
        };
        Ok(ForwardedRequest {
            session,
            cxid,
            op,
            record,
            trailing: r.remaining(),
        })
    }

    /// The client request body, if this is not a createSession.
    pub fn body(&self) -> Option<RequestBody<'a>> {
        match self.record {
            ForwardedRecord::Client(b) => Some(b),
            ForwardedRecord::CreateSession { .. } => None,
        }
    }

    /// Writes `session`, `cxid`, `req_type`, `op`, then `timeout` or the
    /// client body's fields, and `trailing_bytes` when non-zero.
    pub fn serialize_fields<M: SerializeMap>(
        &self,
        m: &mut M,
    ) -> core::result::Result<(), M::Error> {
        m.serialize_entry("session", &Hex(self.session))?;
        m.serialize_entry("cxid", &self.cxid)?;
        m.serialize_entry("req_type", &self.op.0)?;
        m.serialize_entry("op", &self.op.name())?;
        match &self.record {
            ForwardedRecord::CreateSession { timeout } => m.serialize_entry("timeout", timeout)?,
            ForwardedRecord::Client(b) => b.serialize_fields(m)?,
        }
        if self.trailing > 0 {
            m.serialize_entry("trailing_bytes", &self.trailing)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------

/// `TxnHeader` (32 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxnHeader {
    /// Client session (`clientId`).
    pub session: i64,
    /// Client xid.
    pub cxid: i32,
    /// Transaction zxid.
    pub zxid: Zxid,
    /// Leader time (ms since the epoch).
    pub time: i64,
    /// Transaction type (= opcode).
    pub op: OpCode,
}

impl TxnHeader {
    /// Encoded size.
    pub const LEN: usize = 32;

    /// Reads a header.
    pub fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.clone().bytes(Self::LEN, "TxnHeader")?;
        Ok(TxnHeader {
            session: r.i64("clientId")?,
            cxid: r.i32("cxid")?,
            zxid: Zxid(r.i64("zxid")?),
            time: r.i64("time")?,
            op: OpCode(r.i32("type")?),
        })
    }
}

/// `TxnDigest` (3.6+, 12 bytes after the record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct TxnDigest {
    /// Digest algorithm version.
    pub version: i32,
    /// Digest of the whole tree after this txn.
    pub tree_digest: i64,
}

/// A transaction: PROPOSAL/INFORM data, also the txn-log entry format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Txn<'a> {
    /// Header.
    pub header: TxnHeader,
    /// Record, by `header.op`.
    pub record: TxnRecord<'a>,
    /// Tree digest (3.6+ with `zookeeper.digest.enabled`).
    pub digest: Option<TxnDigest>,
    /// Bytes after the record that are not a 12-byte digest.
    pub trailing: usize,
}

/// Decodes a transaction (TxnHeader + record + optional TxnDigest).
pub fn decode_txn(data: &[u8]) -> Result<Txn<'_>> {
    Txn::read(&mut Reader::new(data))
}

impl<'a> Txn<'a> {
    /// Reads a transaction up to the end of `r`.
    ///
    /// After the record, 0 bytes left means no digest, exactly 12 a
    /// [`TxnDigest`], 1–11 is `Truncated`, more is `trailing`. A
    /// closeSession followed by exactly 12 bytes is a digest with no
    /// `CloseSessionTxn` (protocol.md §2.14).
    pub fn read(r: &mut Reader<'a>) -> Result<Self> {
        let header = TxnHeader::read(r)?;
        let record = TxnRecord::read(header.op, r, false)?;
        let (digest, trailing) = match r.remaining() {
            0 => (None, 0),
            12 => (
                Some(TxnDigest {
                    version: r.i32("TxnDigest.version")?,
                    tree_digest: r.i64("treeDigest")?,
                }),
                0,
            ),
            n if n < 12 => {
                return Err(DecodeError::new(
                    ErrorKind::Truncated,
                    "TxnDigest",
                    r.position(),
                ))
            }
            n => (None, n),
        };
        Ok(Txn {
            header,
            record,
            digest,
            trailing,
        })
    }

    /// Writes `session`, `cxid`, `txn_zxid`, `txn_zxid_hex`, `time`,
    /// `txn_type`, `txn_op`, the record fields, `digest` and
    /// `trailing_bytes` (when non-zero). A reconfig's SetDataTxn also gets
    /// `config`, `config_servers` and `config_version`.
    pub fn serialize_fields<M: SerializeMap>(
        &self,
        m: &mut M,
    ) -> core::result::Result<(), M::Error> {
        let h = &self.header;
        m.serialize_entry("session", &Hex(h.session))?;
        m.serialize_entry("cxid", &h.cxid)?;
        m.serialize_entry("txn_zxid", &h.zxid.0)?;
        m.serialize_entry("txn_zxid_hex", &crate::election::DisplayStr(&h.zxid))?;
        m.serialize_entry("time", &h.time)?;
        m.serialize_entry("txn_type", &h.op.0)?;
        m.serialize_entry("txn_op", &h.op.name())?;
        self.record.serialize_fields(m)?;
        if let (OpCode::RECONFIG, TxnRecord::SetData { data, .. }) = (h.op, &self.record) {
            serialize_config(m, data.0.map(JStr))?;
        }
        m.serialize_entry("digest", &self.digest)?;
        if self.trailing > 0 {
            m.serialize_entry("trailing_bytes", &self.trailing)?;
        }
        Ok(())
    }
}

/// Flat map (see [`Txn::serialize_fields`]).
impl Serialize for Txn<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        self.serialize_fields(&mut m)?;
        m.end()
    }
}

/// The record after a [`TxnHeader`], chosen by its type (protocol.md §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnRecord<'a> {
    /// createSession (−10): `CreateSessionTxn`.
    CreateSession {
        /// Negotiated timeout (ms).
        timeout: i32,
    },
    /// closeSession (−11): `CloseSessionTxn` (3.6+) or nothing (`None`).
    CloseSession {
        /// Ephemeral paths to delete.
        paths: Option<Strings<'a>>,
    },
    /// create (1) / create2 (15): `CreateTxn` (`CreateTxnV0` without
    /// `parent_cversion`).
    Create {
        /// Created path (with any sequence suffix).
        path: JStr<'a>,
        /// Data.
        data: Data<'a>,
        /// ACL.
        acl: Acls<'a>,
        /// Ephemeral node.
        ephemeral: bool,
        /// Parent's new cversion (absent in `CreateTxnV0`).
        parent_cversion: Option<i32>,
    },
    /// createTTL (21): `CreateTTLTxn`.
    CreateTtl {
        /// Path.
        path: JStr<'a>,
        /// Data.
        data: Data<'a>,
        /// ACL.
        acl: Acls<'a>,
        /// Parent's new cversion.
        parent_cversion: i32,
        /// TTL (ms).
        ttl: i64,
    },
    /// createContainer (19): `CreateContainerTxn`.
    CreateContainer {
        /// Path.
        path: JStr<'a>,
        /// Data.
        data: Data<'a>,
        /// ACL.
        acl: Acls<'a>,
        /// Parent's new cversion.
        parent_cversion: i32,
    },
    /// delete (2) / deleteContainer (20): `DeleteTxn`.
    Delete {
        /// Path.
        path: JStr<'a>,
    },
    /// setData (5) / reconfig (16): `SetDataTxn`.
    SetData {
        /// Path (`/zookeeper/config` for reconfig).
        path: JStr<'a>,
        /// New data (the new config text for reconfig).
        data: Data<'a>,
        /// New version.
        version: i32,
    },
    /// setACL (7): `SetACLTxn`.
    SetAcl {
        /// Path.
        path: JStr<'a>,
        /// New ACL.
        acl: Acls<'a>,
        /// New ACL version.
        version: i32,
    },
    /// check (13): `CheckVersionTxn`.
    Check {
        /// Path.
        path: JStr<'a>,
        /// Expected version.
        version: i32,
    },
    /// multi (14): `MultiTxn`.
    Multi(MultiTxn<'a>),
    /// error (−1): `ErrorTxn`.
    Error {
        /// Error code.
        err: ErrCode,
    },
    /// A type without a known record (kept opaque).
    Unknown {
        /// Record length in bytes.
        len: usize,
    },
}

impl<'a> TxnRecord<'a> {
    /// Reads the record for `op`. `nested` is true inside a multi (no digest
    /// follows, and a nested multi is `Invalid`).
    fn read(op: OpCode, r: &mut Reader<'a>, nested: bool) -> Result<Self> {
        Ok(match op {
            OpCode::CREATE_SESSION => TxnRecord::CreateSession {
                timeout: r.i32("timeOut")?,
            },
            OpCode::CLOSE_SESSION => {
                let rem = r.remaining();
                let absent = rem == 0 || (!nested && rem == 12);
                TxnRecord::CloseSession {
                    paths: if absent {
                        None
                    } else {
                        Some(Strings::read(r, "paths2Delete")?)
                    },
                }
            }
            OpCode::CREATE | OpCode::CREATE2 => {
                let path = r.ustring_or_empty("path")?;
                let data = Data(r.buffer("data")?);
                let acl = Acls::read(r, "acl")?;
                let ephemeral = r.bool("ephemeral")?;
                let parent_cversion = if r.is_empty() {
                    None
                } else {
                    Some(r.i32("parentCVersion")?)
                };
                TxnRecord::Create {
                    path,
                    data,
                    acl,
                    ephemeral,
                    parent_cversion,
                }
            }
            OpCode::CREATE_TTL => TxnRecord::CreateTtl {
                path: r.ustring_or_empty("path")?,
                data: Data(r.buffer("data")?),
                acl: Acls::read(r, "acl")?,
                parent_cversion: r.i32("parentCVersion")?,
                ttl: r.i64("ttl")?,
            },
            OpCode::CREATE_CONTAINER => TxnRecord::CreateContainer {
                path: r.ustring_or_empty("path")?,
                data: Data(r.buffer("data")?),
                acl: Acls::read(r, "acl")?,
                parent_cversion: r.i32("parentCVersion")?,
            },
            OpCode::DELETE | OpCode::DELETE_CONTAINER => TxnRecord::Delete {
                path: r.ustring_or_empty("path")?,
            },
            OpCode::SET_DATA | OpCode::RECONFIG => TxnRecord::SetData {
                path: r.ustring_or_empty("path")?,
                data: Data(r.buffer("data")?),
                version: r.i32("version")?,
            },
            OpCode::SET_ACL => TxnRecord::SetAcl {
                path: r.ustring_or_empty("path")?,
                acl: Acls::read(r, "acl")?,
                version: r.i32("version")?,
            },
            OpCode::CHECK => TxnRecord::Check {
                path: r.ustring_or_empty("path")?,
                version: r.i32("version")?,
            },
            OpCode::MULTI if nested => {
                return Err(DecodeError::new(
                    ErrorKind::Invalid,
                    "Txn.type",
                    r.position(),
                ))
            }
            OpCode::MULTI => TxnRecord::Multi(MultiTxn::read(r)?),
            OpCode::ERROR => TxnRecord::Error {
                err: ErrCode(r.i32("err")?),
            },
            _ => TxnRecord::Unknown {
                len: r.take_rest().len(),
            },
        })
    }

    /// The znode path the transaction is about, if any.
    pub fn path(&self) -> Option<JStr<'a>> {
        match *self {
            TxnRecord::Create { path, .. }
            | TxnRecord::CreateTtl { path, .. }
            | TxnRecord::CreateContainer { path, .. }
            | TxnRecord::Delete { path }
            | TxnRecord::SetData { path, .. }
            | TxnRecord::SetAcl { path, .. }
            | TxnRecord::Check { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Writes the record's fields into an open map: `timeout`; `paths`;
    /// `path`, `data_len`, `acl`, `ephemeral`, `parent_cversion`, `ttl`,
    /// `version`; `txns` (multi); `err`, `err_name`; `body_len` (unknown).
    pub fn serialize_fields<M: SerializeMap>(
        &self,
        m: &mut M,
    ) -> core::result::Result<(), M::Error> {
        match self {
            TxnRecord::CreateSession { timeout } => m.serialize_entry("timeout", timeout),
            TxnRecord::CloseSession { paths } => m.serialize_entry("paths", paths),
            TxnRecord::Create {
                path,
                data,
                acl,
                ephemeral,
                parent_cversion,
            } => {
                m.serialize_entry("path", path)?;
                m.serialize_entry("data_len", data)?;
                m.serialize_entry("acl", acl)?;
                m.serialize_entry("ephemeral", ephemeral)?;
                m.serialize_entry("parent_cversion", parent_cversion)
            }
            TxnRecord::CreateTtl {
                path,
                data,
                acl,
                parent_cversion,
                ttl,
            } => {
                m.serialize_entry("path", path)?;
                m.serialize_entry("data_len", data)?;
                m.serialize_entry("acl", acl)?;
                m.serialize_entry("parent_cversion", parent_cversion)?;
                m.serialize_entry("ttl", ttl)
            }
            TxnRecord::CreateContainer {
                path,
                data,
                acl,
                parent_cversion,
            } => {
                m.serialize_entry("path", path)?;
                m.serialize_entry("data_len", data)?;
                m.serialize_entry("acl", acl)?;
                m.serialize_entry("parent_cversion", parent_cversion)
            }
            TxnRecord::Delete { path } => m.serialize_entry("path", path),
            TxnRecord::SetData {
                path,
                data,
                version,
            } => {
                m.serialize_entry("path", path)?;
                m.serialize_entry("data_len", data)?;
                m.serialize_entry("version", version)
            }
            TxnRecord::SetAcl { path, acl, version } => {
                m.serialize_entry("path", path)?;
                m.serialize_entry("acl", acl)?;
                m.serialize_entry("version", version)
            }
            TxnRecord::Check { path, version } => {
                m.serialize_entry("path", path)?;
                m.serialize_entry("version", version)
            }
            TxnRecord::Multi(txns) => m.serialize_entry("txns", txns),
            TxnRecord::Error { err } => {
                m.serialize_entry("err", &err.0)?;
                m.serialize_entry("err_name", &err.name())
            }
            TxnRecord::Unknown { len } => m.serialize_entry("body_len", len),
        }
    }
}

/// The sub-transactions of a `MultiTxn`, validated at decode time and
/// iterated lazily.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MultiTxn<'a> {
    bytes: &'a [u8],
    count: usize,
}

/// One sub-transaction of a [`MultiTxn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubTxn<'a> {
    /// Sub-transaction type.
    pub op: OpCode,
    /// Its record.
    pub record: TxnRecord<'a>,
}

/// `{"txn_type":1,"txn_op":"create", …record fields}`.
impl Serialize for SubTxn<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("txn_type", &self.op.0)?;
        m.serialize_entry("txn_op", &self.op.name())?;
        self.record.serialize_fields(&mut m)?;
        m.end()
    }
}

/// Reads one `Txn{type, data}` of a multi and decodes its record.
fn read_sub_txn<'a>(r: &mut Reader<'a>) -> Result<SubTxn<'a>> {
    let op = OpCode(r.i32("Txn.type")?);
    let base = r.position();
    let data = r.buffer("Txn.data")?.unwrap_or_default();
    let base = base + 4;
    let record = TxnRecord::read(op, &mut Reader::new(data), true)
        .map_err(|e| DecodeError::new(e.kind, e.field, e.offset + base))?;
    Ok(SubTxn { op, record })
}

impl<'a> MultiTxn<'a> {
    /// Reads and validates `vector<Txn>` (at most [`MAX_MULTI_OPS`] items;
    /// a null vector reads as empty; a nested multi is `Invalid`).
    pub fn read(r: &mut Reader<'a>) -> Result<Self> {
        let at = r.position();
        let count = r.vec_len("txns")?.unwrap_or(0);
        if count > MAX_MULTI_OPS {
            return Err(DecodeError::new(ErrorKind::Invalid, "txns", at));
        }
        let all = r.rest();
        let start = r.position();
        for _ in 0..count {
            read_sub_txn(r)?;
        }
        let used = r.position().saturating_sub(start);
        Ok(MultiTxn {
            bytes: all.get(..used).unwrap_or_default(),
            count,
        })
    }

    /// Number of sub-transactions.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Iterates the sub-transactions.
    pub fn iter(&self) -> MultiTxnIter<'a> {
        MultiTxnIter {
            r: Reader::new(self.bytes),
            left: self.count,
        }
    }
}

impl fmt::Debug for MultiTxn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for MultiTxn<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        SeqOf(|| self.iter()).serialize(s)
    }
}

impl<'a> IntoIterator for MultiTxn<'a> {
    type Item = SubTxn<'a>;
    type IntoIter = MultiTxnIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over a [`MultiTxn`].
#[derive(Debug, Clone)]
pub struct MultiTxnIter<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for MultiTxnIter<'a> {
    type Item = SubTxn<'a>;
    fn next(&mut self) -> Option<SubTxn<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Validated at decode time; stop if it fails anyway.
        let item = read_sub_txn(&mut self.r).ok();
        if item.is_none() {
            self.left = 0;
        }
        item
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for MultiTxnIter<'_> {}

// ---------------------------------------------------------------------------
// Snapshot after SNAP
// ---------------------------------------------------------------------------

/// Longest path, ACL scheme or ACL id [`SnapshotSkipper`] accepts.
pub const MAX_SNAPSHOT_STRING: u64 = 1 << 20;
/// Most ACLs in one ACL-cache entry [`SnapshotSkipper`] accepts.
pub const MAX_SNAPSHOT_ACLS: u64 = 1 << 20;
const SIGNATURE: &[u8] = b"BenWasHere";

/// Progress of a [`SnapshotSkipper`] after one `feed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipStatus {
    /// All `n` bytes were part of the snapshot; it has not ended yet.
    Consumed(usize),
    /// The snapshot (signature included) ended after `n` bytes of this
    /// buffer; the rest is the next `QuorumPacket`.
    Done(usize),
    /// The bytes are not a snapshot (negative count, oversized string, bad
    /// signature…). Sticky.
    Invalid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    SessionCount,
    AclMapSize,
    AclCount,
    AclSchemeLen,
    AclIdLen,
    PathLen,
    PathSlash,
    NodeDataLen,
    SigLen,
    SigBytes,
    /// Skipping `skip` bytes, then going to `then`.
    Skip(After),
    Done,
    Invalid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    AclMapSize,
    AclCount,
    AclSchemeLen,
    AclIdLen,
    NextAcl,
    NodeDataLen,
    NodeTail,
    PathLen,
}

/// Walks over the raw snapshot a leader streams after SNAP (protocol.md
/// §3.5) to find where the next `QuorumPacket` starts.
///
/// Sans-I/O and bounded: feed it the bytes that follow the SNAP packet, in
/// pieces of any size (even one byte at a time); it keeps a few counters and
/// a 4-byte accumulator, never the data. It parses the session list, the
/// ACL cache and the node list (pre-order, ended by the path `"/"`), then
/// checks the `"BenWasHere"` signature.
#[derive(Debug, Clone)]
pub struct SnapshotSkipper {
    phase: Phase,
    acc: [u8; 4],
    acc_len: usize,
    skip: u64,
    acl_entries_left: u64,
    acls_left: u64,
    sig_at: usize,
    consumed: u64,
    sessions: u64,
    nodes: u64,
}

impl Default for SnapshotSkipper {
    fn default() -> Self {
        Self::new()
    }
}

impl SnapshotSkipper {
    /// A skipper positioned at the first byte after the SNAP packet.
    pub fn new() -> Self {
        SnapshotSkipper {
            phase: Phase::SessionCount,
            acc: [0; 4],
            acc_len: 0,
            skip: 0,
            acl_entries_left: 0,
            acls_left: 0,
            sig_at: 0,
            consumed: 0,
            sessions: 0,
            nodes: 0,
        }
    }

    /// Snapshot bytes consumed so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Sessions in the snapshot (known once the count was read).
    pub fn sessions(&self) -> u64 {
        self.sessions
    }

    /// Nodes walked over so far.
    pub fn nodes(&self) -> u64 {
        self.nodes
    }

    /// True once the signature was read.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Consumes snapshot bytes from the start of `buf`.
    pub fn feed(&mut self, buf: &[u8]) -> SkipStatus {
        let mut i = 0;
        loop {
            match self.phase {
                Phase::Done => return SkipStatus::Done(i),
                Phase::Invalid => return SkipStatus::Invalid,
                _ => {}
            }
            let Some(rest) = buf.get(i..).filter(|r| !r.is_empty()) else {
                return SkipStatus::Consumed(i);
            };
            let used = self.step(rest);
            i += used;
            self.consumed += used as u64;
        }
    }

    /// Makes progress on a non-empty `buf`; returns the bytes used.
    fn step(&mut self, buf: &[u8]) -> usize {
        match self.phase {
            Phase::Skip(after) => {
                let n = usize::try_from(self.skip).map_or(buf.len(), |s| s.min(buf.len()));
                self.skip -= n as u64;
                if self.skip == 0 {
                    self.after(after);
                }
                n
            }
            Phase::PathSlash => {
                // A one-byte path: "/" ends the node list, anything else is a node.
                self.phase = if buf.first() == Some(&b'/') {
                    Phase::SigLen
                } else {
                    Phase::NodeDataLen
                };
                1
            }
            Phase::SigBytes => {
                if buf.first() != SIGNATURE.get(self.sig_at) {
                    self.phase = Phase::Invalid;
                    return 0;
                }
                self.sig_at += 1;
                if self.sig_at == SIGNATURE.len() {
                    self.phase = Phase::Done;
                }
                1
            }
            Phase::Done | Phase::Invalid => 0,
            _ => {
                let want = 4 - self.acc_len;
                let n = want.min(buf.len());
                for (dst, src) in self.acc.iter_mut().skip(self.acc_len).zip(buf) {
                    *dst = *src;
                }
                self.acc_len += n;
                if self.acc_len == 4 {
                    self.acc_len = 0;
                    self.on_int(i32::from_be_bytes(self.acc));
                }
                n
            }
        }
    }

    fn skip_then(&mut self, n: u64, after: After) {
        if n == 0 {
            self.after(after);
        } else {
            self.skip = n;
            self.phase = Phase::Skip(after);
        }
    }

    /// A string length: −1 (null) or `0..=MAX_SNAPSHOT_STRING`.
    fn string_len(v: i32) -> Option<u64> {
        match v {
            -1 => Some(0),
            v => u64::try_from(v).ok().filter(|&n| n <= MAX_SNAPSHOT_STRING),
        }
    }

    fn on_int(&mut self, v: i32) {
        match self.phase {
            Phase::SessionCount => match u64::try_from(v) {
                Ok(n) => {
                    self.sessions = n;
                    self.skip_then(n * 12, After::AclMapSize);
                }
                Err(_) => self.phase = Phase::Invalid,
            },
            Phase::AclMapSize => match u64::try_from(v) {
                Ok(n) => {
                    self.acl_entries_left = n;
                    if n == 0 {
                        self.phase = Phase::PathLen;
                    } else {
                        self.skip_then(8, After::AclCount);
                    }
                }
                Err(_) => self.phase = Phase::Invalid,
            },
            Phase::AclCount => {
                let n = if v == -1 {
                    Some(0)
                } else {
                    u64::try_from(v).ok()
                };
                match n.filter(|&n| n <= MAX_SNAPSHOT_ACLS) {
                    Some(n) => {
                        self.acls_left = n;
                        self.after(After::NextAcl);
                    }
                    None => self.phase = Phase::Invalid,
                }
            }
            Phase::AclSchemeLen => match Self::string_len(v) {
                Some(n) => self.skip_then(n, After::AclIdLen),
                None => self.phase = Phase::Invalid,
            },
            Phase::AclIdLen => match Self::string_len(v) {
                Some(n) => self.skip_then(n, After::NextAcl),
                None => self.phase = Phase::Invalid,
            },
            Phase::PathLen => match Self::string_len(v) {
                Some(_) if v == -1 => self.phase = Phase::Invalid,
                Some(1) => self.phase = Phase::PathSlash,
                Some(n) => self.skip_then(n, After::NodeDataLen),
                None => self.phase = Phase::Invalid,
            },
            Phase::NodeDataLen => {
                let n = if v == -1 {
                    Some(0)
                } else {
                    u64::try_from(v).ok()
                };
                match n.filter(|&n| n <= MAX_DATA_LEN as u64) {
                    Some(n) => self.skip_then(n, After::NodeTail),
                    None => self.phase = Phase::Invalid,
                }
            }
            Phase::SigLen => {
                if usize::try_from(v).ok() == Some(SIGNATURE.len()) {
                    self.sig_at = 0;
                    self.phase = Phase::SigBytes;
                } else {
                    self.phase = Phase::Invalid;
                }
            }
            _ => self.phase = Phase::Invalid,
        }
    }

    fn after(&mut self, after: After) {
        match after {
            After::AclMapSize => self.phase = Phase::AclMapSize,
            After::AclCount => self.phase = Phase::AclCount,
            After::AclSchemeLen => self.phase = Phase::AclSchemeLen,
            After::AclIdLen => self.phase = Phase::AclIdLen,
            After::NextAcl => {
                if self.acls_left > 0 {
                    self.acls_left -= 1;
                    // perms (int), then the Id strings.
                    self.skip_then(4, After::AclSchemeLen);
                } else {
                    self.acl_entries_left = self.acl_entries_left.saturating_sub(1);
                    if self.acl_entries_left == 0 {
                        self.phase = Phase::PathLen;
                    } else {
                        self.skip_then(8, After::AclCount);
                    }
                }
            }
            After::NodeDataLen => self.phase = Phase::NodeDataLen,
            After::NodeTail => {
                // Data skipped: then the acl ref (long) and StatPersisted (60).
                self.nodes += 1;
                self.skip_then(8 + 60, After::PathLen);
            }
            After::PathLen => self.phase = Phase::PathLen,
        }
    }
}
