//! Leader election port (3888): `QuorumCnxManager` connection set-up and
//! `FastLeaderElection` notifications (protocol.md §4), plus the quorum
//! config text they carry (§4.4).
//!
//! A connection starts with an [`InitialMessage`] from the initiator
//! ([`decode_initial`]), optionally followed by [`QuorumAuthPacket`]s
//! ([`decode_quorum_auth`]). After that both directions carry
//! `int length (1..=`[`MAX_MESSAGE_LEN`]`) + body` frames; the framing is the
//! caller's job and [`decode_notification`] decodes one body.
//!
//! Stream decoders ([`decode_initial`], [`decode_quorum_auth`]) return a
//! [`Status`]: `Partial` while the input is a strict prefix of a valid
//! message, `Complete((consumed, message))`, or `Invalid` for bytes no
//! ZooKeeper writes (so a caller never waits for more bytes on garbage).

use core::fmt;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::client::Data;
use crate::jute::{DecodeError, ErrorKind, JStr, Reader, Result};

/// Outcome of a stream decoder (one that is handed the bytes received so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// A whole message; for the stream decoders `T` is `(bytes consumed, message)`.
    Complete(T),
    /// The input is a strict prefix of a possible message: call again with more bytes.
    Partial,
    /// The bytes cannot start this message (bad magic, length out of range…).
    Invalid(DecodeError),
}

impl<T> Status<T> {
    /// The completed value, if any.
    pub fn complete(self) -> Option<T> {
        match self {
            Status::Complete(t) => Some(t),
            _ => None,
        }
    }

    /// True for `Partial`.
    pub fn is_partial(&self) -> bool {
        matches!(self, Status::Partial)
    }

    /// True for `Invalid`.
    pub fn is_invalid(&self) -> bool {
        matches!(self, Status::Invalid(_))
    }

    /// Maps the completed value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Status<U> {
        match self {
            Status::Complete(t) => Status::Complete(f(t)),
            Status::Partial => Status::Partial,
            Status::Invalid(e) => Status::Invalid(e),
        }
    }
}

/// Turns a decode result over a possibly incomplete buffer into a [`Status`]:
/// `Truncated` means "need more bytes".
pub(crate) fn status_of<T>(r: Result<T>) -> Status<T> {
    match r {
        Ok(t) => Status::Complete(t),
        Err(e) if e.is_truncated() => Status::Partial,
        Err(e) => Status::Invalid(e),
    }
}

/// A ZooKeeper transaction id: epoch in the high 32 bits, counter in the low 32.
///
/// `Display` is unsigned hex (`0x100000001`); [`Zxid::epoch_counter`]
/// displays `epoch:counter` (`1:1`). Serialises as the integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Zxid(pub i64);

impl Zxid {
    /// Builds a zxid from its parts.
    pub fn new(epoch: u32, counter: u32) -> Self {
        Zxid(((u64::from(epoch) << 32) | u64::from(counter)) as i64)
    }

    /// High 32 bits.
    pub fn epoch(self) -> u32 {
        ((self.0 as u64) >> 32) as u32
    }

    /// Low 32 bits.
    pub fn counter(self) -> u32 {
        self.0 as u32
    }

    /// Displays as `epoch:counter` (decimal).
    pub fn epoch_counter(self) -> EpochCounter {
        EpochCounter(self)
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0 as u64)
    }
}

impl From<i64> for Zxid {
    fn from(v: i64) -> Self {
        Zxid(v)
    }
}

impl Serialize for Zxid {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

/// `epoch:counter` display of a [`Zxid`] (see [`Zxid::epoch_counter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochCounter(pub Zxid);

impl fmt::Display for EpochCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0.epoch(), self.0.counter())
    }
}

/// Writes a zxid as integer, hex, epoch and counter under the four `keys`.
pub(crate) fn serialize_zxid<M: SerializeMap>(
    m: &mut M,
    keys: [&'static str; 4],
    z: Zxid,
) -> core::result::Result<(), M::Error> {
    let [int, hex, epoch, counter] = keys;
    m.serialize_entry(int, &z.0)?;
    m.serialize_entry(hex, &DisplayStr(&z))?;
    m.serialize_entry(epoch, &z.epoch())?;
    m.serialize_entry(counter, &z.counter())
}

/// Serialises any `Display` as a string.
pub(crate) struct DisplayStr<'t, T: fmt::Display>(pub &'t T);

impl<T: fmt::Display> Serialize for DisplayStr<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

// ---------------------------------------------------------------------------
// Initial message
// ---------------------------------------------------------------------------

/// Initial-message protocol version of 3.5.0+ (one `host:port`).
pub const PROTOCOL_VERSION_V1: i64 = -65536;
/// Initial-message protocol version of 3.6.0+ with `multiAddress.enabled`.
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// Largest address text a receiver accepts in an initial message.
pub const MAX_INITIAL_ADDR_LEN: usize = 2048;
/// Largest frame body after the initial message (`PACKETMAXSIZE`).
pub const MAX_MESSAGE_LEN: usize = 512 * 1024;

/// Which initial-message format a connection used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InitialFormat {
    /// 3.4: the sender's sid alone (8 bytes).
    Legacy,
    /// 3.5+: version −65536, sid, one `host:port`.
    V1,
    /// 3.6+ multi-address: version −65535, sid, `host:port|host:port…`.
    V2,
}

impl InitialFormat {
    /// `"3.4"`, `"v1"` or `"v2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            InitialFormat::Legacy => "3.4",
            InitialFormat::V1 => "v1",
            InitialFormat::V2 => "v2",
        }
    }

    /// The protocol-version long on the wire (`None` for 3.4, which sends none).
    pub fn protocol_version(self) -> Option<i64> {
        match self {
            InitialFormat::Legacy => None,
            InitialFormat::V1 => Some(PROTOCOL_VERSION_V1),
            InitialFormat::V2 => Some(PROTOCOL_VERSION_V2),
        }
    }
}

/// The first message of an election connection (initiator → acceptor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialMessage<'a> {
    /// Wire format.
    pub format: InitialFormat,
    /// Sender's server id.
    pub sid: i64,
    /// Raw election address text (`host:port[|host:port…]`); empty for 3.4.
    pub address_text: JStr<'a>,
}

impl<'a> InitialMessage<'a> {
    /// The `|`-separated election addresses, as sent (empty for 3.4).
    pub fn addresses(&self) -> Addresses<'a> {
        Addresses {
            rest: if self.address_text.is_empty() {
                None
            } else {
                Some(self.address_text.0)
            },
        }
    }
}

/// Iterator over the addresses of an [`InitialMessage`].
#[derive(Debug, Clone)]
pub struct Addresses<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for Addresses<'a> {
    type Item = JStr<'a>;
    fn next(&mut self) -> Option<JStr<'a>> {
        let rest = self.rest?;
        match rest.iter().position(|&b| b == b'|') {
            Some(i) => {
                self.rest = rest.get(i + 1..);
                rest.get(..i).map(JStr)
            }
            None => {
                self.rest = None;
                Some(JStr(rest))
            }
        }
    }
}

/// `{"format":"v1","protocol_version":-65536,"sid":6,"addresses":["127.0.0.1:3888"]}`
/// (`protocol_version` is null for 3.4).
impl Serialize for InitialMessage<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("format", self.format.as_str())?;
        m.serialize_entry("protocol_version", &self.format.protocol_version())?;
        m.serialize_entry("sid", &self.sid)?;
        m.serialize_entry("addresses", &SeqOf(|| self.addresses()))?;
        m.end()
    }
}

/// Serialises the items of a re-creatable iterator as a sequence.
pub(crate) struct SeqOf<F>(pub F);

impl<F, I> Serialize for SeqOf<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for item in (self.0)() {
            seq.serialize_element(&item)?;
        }
        seq.end()
    }
}

/// Decodes the initial message at the start of an election connection.
///
/// A first long ≥ 0 is a 3.4 sid (8 bytes). −65536/−65535 are followed by
/// the sid, an address length in `1..=`[`MAX_INITIAL_ADDR_LEN`] and the
/// address text. Any other negative first long, or a length out of range, is
/// `Invalid`. The address text is not validated (see [`parse_host_port`]).
pub fn decode_initial(buf: &[u8]) -> Status<(usize, InitialMessage<'_>)> {
    status_of(read_initial(buf))
}

fn read_initial(buf: &[u8]) -> Result<(usize, InitialMessage<'_>)> {
    let mut r = Reader::new(buf);
    let first = r.i64("protocolVersion")?;
    let format = match first {
        v if v >= 0 => {
            return Ok((
                8,
                InitialMessage {
                    format: InitialFormat::Legacy,
                    sid: v,
                    address_text: JStr(&[]),
                },
            ))
        }
        PROTOCOL_VERSION_V1 => InitialFormat::V1,
        PROTOCOL_VERSION_V2 => InitialFormat::V2,
        _ => return Err(DecodeError::new(ErrorKind::Invalid, "protocolVersion", 0)),
    };
    let sid = r.i64("sid")?;
    let at = r.position();
    let len = r.i32("addressLength")?;
    let len = usize::try_from(len)
        .ok()
        .filter(|n| (1..=MAX_INITIAL_ADDR_LEN).contains(n))
        .ok_or(DecodeError::new(ErrorKind::Invalid, "addressLength", at))?;
    let text = r.bytes(len, "address")?;
    Ok((
        r.position(),
        InitialMessage {
            format,
            sid,
            address_text: JStr(text),
        },
    ))
}

/// Splits `host:port` (IPv6 hosts bracketed: `[::1]:3888`) into the host
/// (without brackets) and the port. `None` when malformed.
pub fn parse_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, rest) = split_host(s)?;
    Some((host, parse_port(rest)?))
}

/// Splits a host (bracketed IPv6 allowed) from what follows its colon.
fn split_host(s: &str) -> Option<(&str, &str)> {
    let (host, rest) = if let Some(inner) = s.strip_prefix('[') {
        let close = inner.find(']')?;
        let host = inner.get(..close)?;
        let rest = inner.get(close + 1..)?.strip_prefix(':')?;
        (host, rest)
    } else {
        s.split_once(':')?
    };
    (!host.is_empty()).then_some((host, rest))
}

fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

// ---------------------------------------------------------------------------
// Quorum SASL auth packet
// ---------------------------------------------------------------------------

/// `QuorumAuthPacket.magic` (the Java literal −0xa0dbcafecafe1234).
pub const QUORUM_AUTH_MAGIC: i64 = 0x5F24_3501_3501_EDCC;
/// Largest SASL token [`decode_quorum_auth`] accepts (larger ⇒ `Invalid`).
pub const MAX_AUTH_TOKEN_LEN: usize = 1 << 20;

/// `QuorumAuth.Status`: 0 IN_PROGRESS, 1 SUCCESS, −1 ERROR (others kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AuthStatus(pub i32);

impl AuthStatus {
    /// `IN_PROGRESS` (0).
    pub const IN_PROGRESS: AuthStatus = AuthStatus(0);
    /// `SUCCESS` (1).
    pub const SUCCESS: AuthStatus = AuthStatus(1);
    /// `ERROR` (−1).
    pub const ERROR: AuthStatus = AuthStatus(-1);

    /// Name, `None` for unknown values.
    pub fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("IN_PROGRESS"),
            1 => Some("SUCCESS"),
            -1 => Some("ERROR"),
            _ => None,
        }
    }
}

impl fmt::Display for AuthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

/// A quorum SASL packet (both the 2888 and 3888 ports, before any other traffic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumAuthPacket<'a> {
    /// Exchange status.
    pub status: AuthStatus,
    /// SASL token (serialised as its length).
    pub token: Data<'a>,
}

/// `{"status":"SUCCESS","status_code":1,"token_len":0}`.
impl Serialize for QuorumAuthPacket<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("status", &self.status.name())?;
        m.serialize_entry("status_code", &self.status.0)?;
        m.serialize_entry("token_len", &self.token)?;
        m.end()
    }
}

/// Decodes a `QuorumAuthPacket{magic, status, token}`.
///
/// `Invalid` as soon as the bytes present differ from [`QUORUM_AUTH_MAGIC`]
/// (so even 1 byte can rule it out), or for a token length below −1 or over
/// [`MAX_AUTH_TOKEN_LEN`].
pub fn decode_quorum_auth(buf: &[u8]) -> Status<(usize, QuorumAuthPacket<'_>)> {
    let magic = QUORUM_AUTH_MAGIC.to_be_bytes();
    let n = buf.len().min(8);
    if buf.get(..n) != magic.get(..n) {
        return Status::Invalid(DecodeError::new(ErrorKind::Invalid, "magic", 0));
    }
    status_of(read_quorum_auth(buf))
}

fn read_quorum_auth(buf: &[u8]) -> Result<(usize, QuorumAuthPacket<'_>)> {
    let mut r = Reader::new(buf);
    r.i64("magic")?;
    let status = AuthStatus(r.i32("status")?);
    let token = read_capped_buffer(&mut r, "token", MAX_AUTH_TOKEN_LEN)?;
    Ok((
        r.position(),
        QuorumAuthPacket {
            status,
            token: Data(token),
        },
    ))
}

/// A jute `buffer` whose length must be −1 or `0..=max` (else `Invalid` /
/// `NegativeLength`, checked before waiting for the bytes).
pub(crate) fn read_capped_buffer<'a>(
    r: &mut Reader<'a>,
    field: &'static str,
    max: usize,
) -> Result<Option<&'a [u8]>> {
    let at = r.position();
    let n = r.i32(field)?;
    match n {
        -1 => Ok(None),
        n if n < -1 => Err(DecodeError::new(ErrorKind::NegativeLength, field, at)),
        n => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > max {
                return Err(DecodeError::new(ErrorKind::Invalid, field, at));
            }
            r.bytes(n, field).map(Some)
        }
    }
}

// ---------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------

/// `QuorumPeer.ServerState` as sent in notifications (unknown values kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ServerState(pub i32);

impl ServerState {
    /// `LOOKING` (0).
    pub const LOOKING: ServerState = ServerState(0);
    /// `FOLLOWING` (1).
    pub const FOLLOWING: ServerState = ServerState(1);
    /// `LEADING` (2).
    pub const LEADING: ServerState = ServerState(2);
    /// `OBSERVING` (3).
    pub const OBSERVING: ServerState = ServerState(3);

    /// Name, `None` for values receivers drop.
    pub fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("LOOKING"),
            1 => Some("FOLLOWING"),
            2 => Some("LEADING"),
            3 => Some("OBSERVING"),
            _ => None,
        }
    }
}

impl fmt::Display for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

impl Serialize for ServerState {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_i32(self.0)
    }
}

/// A FastLeaderElection notification (vote), decoded from one frame body.
///
/// The sender's sid is not in the body: it comes from the connection's
/// [`InitialMessage`] (or, for the acceptor's replies, from the other side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification<'a> {
    /// Sender's state.
    pub state: ServerState,
    /// Proposed leader's sid.
    pub leader: i64,
    /// Proposed leader's last zxid.
    pub zxid: Zxid,
    /// Sender's logical clock.
    pub election_epoch: i64,
    /// Proposed leader's epoch; derived from `zxid` for 28-byte bodies.
    pub peer_epoch: i64,
    /// True when `peer_epoch` was not sent (28-byte body) and was derived
    /// from the zxid, as receivers do (`zxid >> 32`).
    pub peer_epoch_derived: bool,
    /// Version field as sent (`None` for 28- and 36-byte bodies).
    pub version: Option<i32>,
    /// True for exactly-40-byte bodies: 3.5+ receivers ignore the version
    /// field and use version 0 (see [`Notification::effective_version`]).
    pub version_ignored: bool,
    /// Config text (version > 1 only).
    pub config: Option<JStr<'a>>,
    /// Bytes after the last field (e.g. text after a version-1 body).
    pub trailing: usize,
}

impl<'a> Notification<'a> {
    /// The version a 3.5+ receiver acts on (0 when absent or ignored).
    pub fn effective_version(&self) -> i32 {
        match self.version {
            Some(v) if !self.version_ignored => v,
            _ => 0,
        }
    }

    /// The config text, if present and valid UTF-8.
    pub fn config_str(&self) -> Option<&'a str> {
        self.config.and_then(|c| c.to_str())
    }

    /// The parsed config lines (empty when there is no UTF-8 config).
    pub fn config_lines(&self) -> ConfigLines<'a> {
        parse_config(self.config_str().unwrap_or_default())
    }
}

/// Decodes a notification body (the bytes after the 4-byte frame length).
///
/// | length | fields |
/// |---|---|
/// | 28 | state, leader, zxid, electionEpoch (peerEpoch derived) |
/// | 36 | + peerEpoch |
/// | 40 | + version (ignored by 3.5+ receivers: `version_ignored`) |
/// | 44+N | + version, and if version > 1: configLength, config |
///
/// 3.5+ receivers drop 36-byte bodies (they expect a version after the
/// peer epoch) and states outside 0..=3; both are decoded here anyway.
///
/// Shorter bodies, and bodies cut inside a field, are `Truncated`;
/// a config length below 0 is `NegativeLength`. Never allocates.
pub fn decode_notification(body: &[u8]) -> Result<Notification<'_>> {
    let mut r = Reader::new(body);
    // A body under 28 bytes is dropped by receivers; name the whole record.
    r.clone().bytes(28, "notification")?;
    let state = ServerState(r.i32("state")?);
    let leader = r.i64("leader")?;
    let zxid = Zxid(r.i64("zxid")?);
    let election_epoch = r.i64("electionEpoch")?;
    let mut n = Notification {
        state,
        leader,
        zxid,
        election_epoch,
        peer_epoch: zxid.0 >> 32,
        peer_epoch_derived: true,
        version: None,
        version_ignored: false,
        config: None,
        trailing: 0,
    };
    if r.is_empty() {
        return Ok(n);
    }
    n.peer_epoch = r.i64("peerEpoch")?;
    n.peer_epoch_derived = false;
    if r.is_empty() {
        return Ok(n);
    }
    let version = r.i32("version")?;
    n.version = Some(version);
    n.version_ignored = body.len() == 40;
    if version > 1 && !n.version_ignored {
        let at = r.position();
        let len = r.i32("configLength")?;
        let len = usize::try_from(len)
            .map_err(|_| DecodeError::new(ErrorKind::NegativeLength, "configLength", at))?;
        n.config = Some(JStr(r.bytes(len, "config")?));
    }
    n.trailing = r.remaining();
    Ok(n)
}

/// Flat map: `state` (name or null), `state_code`, `leader`, `zxid`,
/// `zxid_hex`, `zxid_epoch`, `zxid_counter`, `election_epoch`, `peer_epoch`,
/// `peer_epoch_derived`, `version` (null when absent), `version_ignored`,
/// `config` (text or null), `config_servers` (parsed server lines),
/// `config_version` (integer or null), and `trailing_bytes` when non-zero.
impl Serialize for Notification<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("state", &self.state.name())?;
        m.serialize_entry("state_code", &self.state.0)?;
        m.serialize_entry("leader", &self.leader)?;
        serialize_zxid(
            &mut m,
            ["zxid", "zxid_hex", "zxid_epoch", "zxid_counter"],
            self.zxid,
        )?;
        m.serialize_entry("election_epoch", &self.election_epoch)?;
        m.serialize_entry("peer_epoch", &self.peer_epoch)?;
        m.serialize_entry("peer_epoch_derived", &self.peer_epoch_derived)?;
        m.serialize_entry("version", &self.version)?;
        m.serialize_entry("version_ignored", &self.version_ignored)?;
        serialize_config(&mut m, self.config)?;
        if self.trailing > 0 {
            m.serialize_entry("trailing_bytes", &self.trailing)?;
        }
        m.end()
    }
}

/// Writes `config`, `config_servers`, `config_version` for optional config text.
pub(crate) fn serialize_config<M: SerializeMap>(
    m: &mut M,
    config: Option<JStr<'_>>,
) -> core::result::Result<(), M::Error> {
    m.serialize_entry("config", &config)?;
    let text = config.and_then(|c| c.to_str());
    match text {
        Some(t) => {
            m.serialize_entry(
                "config_servers",
                &SeqOf(|| {
                    parse_config(t).filter_map(|l| match l {
                        ConfigLine::Server(s) => Some(s),
                        _ => None,
                    })
                }),
            )?;
            m.serialize_entry("config_version", &config_version(t).map(|z| z.0))
        }
        None => {
            m.serialize_entry("config_servers", &None::<()>)?;
            m.serialize_entry("config_version", &None::<i64>)
        }
    }
}

/// The last `version=` of a config text.
pub fn config_version(text: &str) -> Option<Zxid> {
    parse_config(text)
        .filter_map(|l| match l {
            ConfigLine::Version(v) => Some(v),
            _ => None,
        })
        .last()
}

// ---------------------------------------------------------------------------
// Config text
// ---------------------------------------------------------------------------

/// Server role in a `server.N=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Role {
    /// Voting member (the default when no role is given).
    #[default]
    Participant,
    /// Non-voting observer.
    Observer,
}

impl Role {
    /// `"participant"` or `"observer"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Participant => "participant",
            Role::Observer => "observer",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("participant") {
            Some(Role::Participant)
        } else if s.eq_ignore_ascii_case("observer") {
            Some(Role::Observer)
        } else {
            None
        }
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One quorum/election address pair of a server line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct QuorumAddr<'a> {
    /// Host name or address (IPv6 without brackets).
    pub host: &'a str,
    /// Quorum (ZAB) port, conventionally 2888.
    pub quorum_port: u16,
    /// Election (FLE) port, conventionally 3888.
    pub election_port: u16,
}

/// A client (or secure client) listen address of a server line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ClientAddr<'a> {
    /// Host; `"0.0.0.0"` when only a port was given (ZooKeeper's default).
    pub host: &'a str,
    /// Port.
    pub port: u16,
}

/// The validated `|`-separated address list of a server line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerAddrs<'a> {
    text: &'a str,
    count: usize,
}

impl<'a> ServerAddrs<'a> {
    /// Number of addresses (at least 1).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Always false for a parsed entry.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The raw text (`host:q:e[:role]|…`).
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// Iterates the addresses.
    pub fn iter(&self) -> impl Iterator<Item = QuorumAddr<'a>> + 'a {
        self.text
            .split('|')
            .filter_map(|a| parse_quorum_addr(a).map(|(q, _)| q))
    }
}

impl Serialize for ServerAddrs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        SeqOf(|| self.iter()).serialize(s)
    }
}

/// `host:quorumPort:electionPort[:role]`; role is `Some` when present.
fn parse_quorum_addr(s: &str) -> Option<(QuorumAddr<'_>, Option<Role>)> {
    let (host, rest) = split_host(s)?;
    let mut parts = rest.split(':');
    let quorum_port = parse_port(parts.next()?)?;
    let election_port = parse_port(parts.next()?)?;
    let role = match parts.next() {
        None => None,
        Some(r) => Some(Role::parse(r)?),
    };
    if parts.next().is_some() || quorum_port == election_port {
        return None;
    }
    Some((
        QuorumAddr {
            host,
            quorum_port,
            election_port,
        },
        role,
    ))
}

/// `port` or `host:port` (bracketed IPv6 allowed).
fn parse_client_addr(s: &str) -> Option<ClientAddr<'_>> {
    if !s.starts_with('[') && !s.contains(':') {
        return Some(ClientAddr {
            host: "0.0.0.0",
            port: parse_port(s)?,
        });
    }
    let (host, port) = parse_host_port(s)?;
    Some(ClientAddr { host, port })
}

/// A `server.<sid>=…` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerEntry<'a> {
    /// Server id.
    pub sid: i64,
    /// Quorum/election addresses (several with multi-address, 3.6+).
    pub addrs: ServerAddrs<'a>,
    /// Role (participant when not given).
    pub role: Role,
    /// Client address (`;host:port` or `;port`).
    pub client: Option<ClientAddr<'a>>,
    /// Secure client address (`;client;secure` or `;;secure`).
    pub secure_client: Option<ClientAddr<'a>>,
}

impl<'a> ServerEntry<'a> {
    /// Parses the value of a `server.<sid>=` line.
    pub fn parse(sid: i64, value: &'a str) -> Option<Self> {
        // Java's split drops trailing empty parts (`a;2181;` has 2 parts).
        let mut parts: [&str; 3] = [""; 3];
        for (n, p) in value.trim_end_matches(';').split(';').enumerate() {
            *parts.get_mut(n)? = p;
        }
        let [servers, client, secure] = parts;
        let client = if client.is_empty() {
            None
        } else {
            Some(parse_client_addr(client)?)
        };
        let secure_client = if secure.is_empty() {
            None
        } else {
            Some(parse_client_addr(secure)?)
        };
        let mut role = None;
        let mut count = 0;
        for a in servers.split('|') {
            let (_, r) = parse_quorum_addr(a)?;
            if let Some(r) = r {
                if role.is_some_and(|prev| prev != r) {
                    return None;
                }
                role = Some(r);
            }
            count += 1;
        }
        Some(ServerEntry {
            sid,
            addrs: ServerAddrs {
                text: servers,
                count,
            },
            role: role.unwrap_or_default(),
            client,
            secure_client,
        })
    }
}

/// `{"sid":1,"addrs":[{"host":…,"quorum_port":…,"election_port":…}],
/// "role":"participant","client":{"host":"0.0.0.0","port":2181}|null,"secure_client":…}`.
impl Serialize for ServerEntry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(5))?;
        self.serialize_fields(&mut m)?;
        m.end()
    }
}

impl ServerEntry<'_> {
    fn serialize_fields<M: SerializeMap>(&self, m: &mut M) -> core::result::Result<(), M::Error> {
        m.serialize_entry("sid", &self.sid)?;
        m.serialize_entry("addrs", &self.addrs)?;
        m.serialize_entry("role", &self.role)?;
        m.serialize_entry("client", &self.client)?;
        m.serialize_entry("secure_client", &self.secure_client)
    }
}

/// One line of a quorum config text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigLine<'a> {
    /// `server.<sid>=<addrs>[:role][;client[;secure]]`.
    Server(ServerEntry<'a>),
    /// `version=<hex>`: the config's zxid.
    Version(Zxid),
    /// `group.<gid>=<sid>:<sid>…` (hierarchical quorums).
    Group {
        /// Group id.
        gid: i64,
        /// The validated `:`-separated member sids (see [`ConfigLine::group_members`]).
        members: &'a str,
    },
    /// `weight.<sid>=<weight>` (hierarchical quorums).
    Weight {
        /// Server id.
        sid: i64,
        /// Vote weight.
        weight: i64,
    },
    /// Any other non-blank line (unknown key, not `key=value`).
    Other(&'a str),
    /// A known key with a malformed value (the whole line, trimmed).
    Invalid(&'a str),
}

impl<'a> ConfigLine<'a> {
    /// Parses one line; `None` for blank lines and `#`/`!` comments.
    pub fn parse(line: &'a str) -> Option<Self> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            return None;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Some(ConfigLine::Other(line));
        };
        let (key, value) = (key.trim(), value.trim());
        let parsed = if let Some(sid) = key.strip_prefix("server.") {
            parse_i64(sid).and_then(|sid| ServerEntry::parse(sid, value).map(ConfigLine::Server))
        } else if key == "version" {
            i64::from_str_radix(value, 16)
                .ok()
                .map(|v| ConfigLine::Version(Zxid(v)))
        } else if let Some(gid) = key.strip_prefix("group.") {
            let ok = !value.is_empty() && value.split(':').all(|m| parse_i64(m).is_some());
            parse_i64(gid).filter(|_| ok).map(|gid| ConfigLine::Group {
                gid,
                members: value,
            })
        } else if let Some(sid) = key.strip_prefix("weight.") {
            parse_i64(sid)
                .zip(parse_i64(value))
                .map(|(sid, weight)| ConfigLine::Weight { sid, weight })
        } else {
            return Some(ConfigLine::Other(line));
        };
        Some(parsed.unwrap_or(ConfigLine::Invalid(line)))
    }

    /// Member sids of a `Group` line (empty for other lines).
    pub fn group_members(&self) -> impl Iterator<Item = i64> + 'a {
        let text = match *self {
            ConfigLine::Group { members, .. } => Some(members),
            _ => None,
        };
        text.into_iter()
            .flat_map(|t| t.split(':'))
            .filter_map(parse_i64)
    }
}

fn parse_i64(s: &str) -> Option<i64> {
    let s = s.trim();
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Flat map with a `kind` tag: `server` (+ [`ServerEntry`] fields),
/// `version` (`version`, `version_hex`), `group` (`gid`, `members`),
/// `weight` (`sid`, `weight`), `other` / `invalid` (`line`).
impl Serialize for ConfigLine<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self {
            ConfigLine::Server(e) => {
                m.serialize_entry("kind", "server")?;
                e.serialize_fields(&mut m)?;
            }
            ConfigLine::Version(v) => {
                m.serialize_entry("kind", "version")?;
                m.serialize_entry("version", &v.0)?;
                m.serialize_entry("version_hex", &DisplayStr(v))?;
            }
            ConfigLine::Group { gid, .. } => {
                m.serialize_entry("kind", "group")?;
                m.serialize_entry("gid", gid)?;
                m.serialize_entry("members", &SeqOf(|| self.group_members()))?;
            }
            ConfigLine::Weight { sid, weight } => {
                m.serialize_entry("kind", "weight")?;
                m.serialize_entry("sid", sid)?;
                m.serialize_entry("weight", weight)?;
            }
            ConfigLine::Other(l) => {
                m.serialize_entry("kind", "other")?;
                m.serialize_entry("line", l)?;
            }
            ConfigLine::Invalid(l) => {
                m.serialize_entry("kind", "invalid")?;
                m.serialize_entry("line", l)?;
            }
        }
        m.end()
    }
}

/// Iterator returned by [`parse_config`].
#[derive(Debug, Clone)]
pub struct ConfigLines<'a> {
    lines: core::str::Split<'a, char>,
}

impl<'a> Iterator for ConfigLines<'a> {
    type Item = ConfigLine<'a>;
    fn next(&mut self) -> Option<ConfigLine<'a>> {
        self.lines.by_ref().find_map(ConfigLine::parse)
    }
}

/// Parses a quorum config text (FLE v2 payload, NEWLEADER data,
/// `/zookeeper/config`, a dynamic config file) line by line, lazily and
/// without allocating.
///
/// Blank lines and `#` comments are skipped; a malformed `server.`,
/// `version`, `group.` or `weight.` line becomes [`ConfigLine::Invalid`],
/// any other line [`ConfigLine::Other`]. Never panics.
pub fn parse_config(text: &str) -> ConfigLines<'_> {
    ConfigLines {
        lines: text.split('\n'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zxid_parts() {
        let z = Zxid(0x1_0000_0002);
        assert_eq!(z.epoch(), 1);
        assert_eq!(z.counter(), 2);
        assert_eq!(z.to_string(), "0x100000002");
        assert_eq!(z.epoch_counter().to_string(), "1:2");
        assert_eq!(Zxid::new(1, 2), z);
        assert_eq!(Zxid(-1).to_string(), "0xffffffffffffffff");
    }

    #[test]
    fn host_port() {
        assert_eq!(parse_host_port("a:1"), Some(("a", 1)));
        assert_eq!(parse_host_port("[::1]:3888"), Some(("::1", 3888)));
        assert_eq!(parse_host_port("[::1]3888"), None);
        assert_eq!(parse_host_port("a"), None);
        assert_eq!(parse_host_port(":1"), None);
        assert_eq!(parse_host_port("a:+1"), None);
        assert_eq!(parse_host_port("a:70000"), None);
    }

    #[test]
    fn server_lines() {
        let e = ServerEntry::parse(1, "[::1]:2888:3888|h:1:2:observer;;[::2]:2281").unwrap();
        assert_eq!(e.addrs.len(), 2);
        assert_eq!(e.role, Role::Observer);
        assert_eq!(e.client, None);
        assert_eq!(
            e.secure_client,
            Some(ClientAddr {
                host: "::2",
                port: 2281
            })
        );
        let a: Vec<_> = e.addrs.iter().collect();
        assert_eq!(a[0].host, "::1");
        assert_eq!(a[1].election_port, 2);
        assert!(ServerEntry::parse(1, "h:1:2:observer|h:3:4:participant").is_none());
        assert!(ServerEntry::parse(1, "h:1:1").is_none());
        assert!(ServerEntry::parse(1, "h:1:2;1;2;3").is_none());
        assert!(ServerEntry::parse(1, "").is_none());
        let e = ServerEntry::parse(1, "h:1:2;2181;").unwrap();
        assert_eq!(e.client.unwrap().host, "0.0.0.0");
    }
}
