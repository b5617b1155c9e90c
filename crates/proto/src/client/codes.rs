//! Numeric protocol constants as open newtypes: unknown values are kept.

use core::fmt;

use serde::{Serialize, Serializer};

/// Defines an `i32` newtype with associated constants, `name()`, a
/// `Display` that falls back to the number, and a `Serialize` as the raw int.
macro_rules! code_newtype {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$cmeta:meta])* $konst:ident = $val:expr => $str:expr, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub i32);

        impl $name {
            $(
                #[doc = concat!("`", $str, "` (", stringify!($val), ").")]
                $(#[$cmeta])*
                pub const $konst: $name = $name($val);
            )*

            /// Canonical name, `None` for values this crate does not know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $val => Some($str), )*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}", self.0),
                }
            }
        }

        impl From<i32> for $name {
            fn from(v: i32) -> Self {
                $name(v)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_i32(self.0)
            }
        }
    };
}

code_newtype! {
    /// Request type (`ZooDefs.OpCode`, protocol.md §2.4).
    OpCode {
        /// Never a request; watch events use xid −1.
        NOTIFICATION = 0 => "notification",
        CREATE = 1 => "create",
        DELETE = 2 => "delete",
        EXISTS = 3 => "exists",
        GET_DATA = 4 => "getData",
        SET_DATA = 5 => "setData",
        GET_ACL = 6 => "getACL",
        SET_ACL = 7 => "setACL",
        GET_CHILDREN = 8 => "getChildren",
        SYNC = 9 => "sync",
        PING = 11 => "ping",
        GET_CHILDREN2 = 12 => "getChildren2",
        CHECK = 13 => "check",
        MULTI = 14 => "multi",
        CREATE2 = 15 => "create2",
        RECONFIG = 16 => "reconfig",
        CHECK_WATCHES = 17 => "checkWatches",
        REMOVE_WATCHES = 18 => "removeWatches",
        CREATE_CONTAINER = 19 => "createContainer",
        /// Server-internal (leader's ContainerManager).
        DELETE_CONTAINER = 20 => "deleteContainer",
        CREATE_TTL = 21 => "createTTL",
        MULTI_READ = 22 => "multiRead",
        AUTH = 100 => "auth",
        SET_WATCHES = 101 => "setWatches",
        SASL = 102 => "sasl",
        GET_EPHEMERALS = 103 => "getEphemerals",
        GET_ALL_CHILDREN_NUMBER = 104 => "getAllChildrenNumber",
        SET_WATCHES2 = 105 => "setWatches2",
        ADD_WATCH = 106 => "addWatch",
        WHO_AM_I = 107 => "whoAmI",
        /// Server-internal (ZAB), never a client request.
        CREATE_SESSION = -10 => "createSession",
        CLOSE_SESSION = -11 => "closeSession",
        /// Txn / multi-result type only.
        ERROR = -1 => "error",
    }
}

impl OpCode {
    /// zktraffic-style request type name (`"GetDataRequest"`), or
    /// `"UnknownRequest"`. The connect handshake has no opcode
    /// (`"ConnectRequest"` is for the caller to use).
    pub fn request_type(self) -> &'static str {
        self.type_names().map_or("UnknownRequest", |t| t.0)
    }

    /// zktraffic-style reply type name (`"GetDataReply"`), or
    /// `"UnknownReply"`. Also `"WatchEvent"` for 0 (notification) and
    /// `"ErrorReply"` for −1 (multi error results).
    pub fn reply_type(self) -> &'static str {
        match self {
            OpCode::NOTIFICATION => "WatchEvent",
            OpCode::ERROR => "ErrorReply",
            _ => self.type_names().map_or("UnknownReply", |t| t.1),
        }
    }

    fn type_names(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            OpCode::CREATE => ("CreateRequest", "CreateReply"),
            OpCode::DELETE => ("DeleteRequest", "DeleteReply"),
            OpCode::EXISTS => ("ExistsRequest", "ExistsReply"),
            OpCode::GET_DATA => ("GetDataRequest", "GetDataReply"),
            OpCode::SET_DATA => ("SetDataRequest", "SetDataReply"),
            OpCode::GET_ACL => ("GetAclRequest", "GetAclReply"),
            OpCode::SET_ACL => ("SetAclRequest", "SetAclReply"),
            OpCode::GET_CHILDREN => ("GetChildrenRequest", "GetChildrenReply"),
            OpCode::SYNC => ("SyncRequest", "SyncReply"),
            OpCode::PING => ("PingRequest", "PingReply"),
            OpCode::GET_CHILDREN2 => ("GetChildren2Request", "GetChildren2Reply"),
            OpCode::CHECK => ("CheckRequest", "CheckReply"),
            OpCode::MULTI => ("MultiRequest", "MultiReply"),
            OpCode::CREATE2 => ("Create2Request", "Create2Reply"),
            OpCode::RECONFIG => ("ReconfigRequest", "ReconfigReply"),
            OpCode::CHECK_WATCHES => ("CheckWatchesRequest", "CheckWatchesReply"),
            OpCode::REMOVE_WATCHES => ("RemoveWatchesRequest", "RemoveWatchesReply"),
            OpCode::CREATE_CONTAINER => ("CreateContainerRequest", "CreateContainerReply"),
            OpCode::DELETE_CONTAINER => ("DeleteContainerRequest", "DeleteContainerReply"),
            OpCode::CREATE_TTL => ("CreateTTLRequest", "CreateTTLReply"),
            OpCode::MULTI_READ => ("MultiReadRequest", "MultiReadReply"),
            OpCode::AUTH => ("SetAuthRequest", "SetAuthReply"),
            OpCode::SET_WATCHES => ("SetWatchesRequest", "SetWatchesReply"),
            OpCode::SASL => ("SaslRequest", "SaslReply"),
            OpCode::GET_EPHEMERALS => ("GetEphemeralsRequest", "GetEphemeralsReply"),
            OpCode::GET_ALL_CHILDREN_NUMBER => {
                ("GetAllChildrenNumberRequest", "GetAllChildrenNumberReply")
            }
            OpCode::SET_WATCHES2 => ("SetWatches2Request", "SetWatches2Reply"),
            OpCode::ADD_WATCH => ("AddWatchRequest", "AddWatchReply"),
            OpCode::WHO_AM_I => ("WhoAmIRequest", "WhoAmIReply"),
            OpCode::CREATE_SESSION => ("CreateSessionRequest", "CreateSessionReply"),
            OpCode::CLOSE_SESSION => ("CloseRequest", "CloseReply"),
            _ => return None,
        })
    }

    /// True for state-changing operations (proposed through the leader;
    /// ZooKeeper's `Request.isQuorum` minus `error`).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            OpCode::CREATE
                | OpCode::CREATE2
                | OpCode::CREATE_CONTAINER
                | OpCode::CREATE_TTL
                | OpCode::DELETE
                | OpCode::DELETE_CONTAINER
                | OpCode::SET_DATA
                | OpCode::SET_ACL
                | OpCode::CHECK
                | OpCode::MULTI
                | OpCode::RECONFIG
                | OpCode::CREATE_SESSION
                | OpCode::CLOSE_SESSION
        )
    }

    /// Whether the request record starts with a path (so a cut frame may still show it).
    pub fn starts_with_path(self) -> bool {
        matches!(
            self,
            OpCode::CREATE
                | OpCode::CREATE2
                | OpCode::CREATE_CONTAINER
                | OpCode::CREATE_TTL
                | OpCode::DELETE
                | OpCode::EXISTS
                | OpCode::GET_DATA
                | OpCode::SET_DATA
                | OpCode::GET_ACL
                | OpCode::SET_ACL
                | OpCode::GET_CHILDREN
                | OpCode::GET_CHILDREN2
                | OpCode::SYNC
                | OpCode::CHECK
                | OpCode::CHECK_WATCHES
                | OpCode::REMOVE_WATCHES
                | OpCode::GET_EPHEMERALS
                | OpCode::GET_ALL_CHILDREN_NUMBER
                | OpCode::ADD_WATCH
        )
    }

    /// True for requests carrying a `watch` boolean (exists, getData,
    /// getChildren, getChildren2).
    pub fn has_watch_flag(self) -> bool {
        matches!(
            self,
            OpCode::EXISTS | OpCode::GET_DATA | OpCode::GET_CHILDREN | OpCode::GET_CHILDREN2
        )
    }

    /// True for opcodes this crate knows.
    pub fn is_known(self) -> bool {
        self.name().is_some()
    }
}

code_newtype! {
    /// Result code (`KeeperException.Code`, protocol.md §2.11).
    ErrCode {
        OK = 0 => "OK",
        SYSTEM_ERROR = -1 => "SYSTEMERROR",
        RUNTIME_INCONSISTENCY = -2 => "RUNTIMEINCONSISTENCY",
        DATA_INCONSISTENCY = -3 => "DATAINCONSISTENCY",
        CONNECTION_LOSS = -4 => "CONNECTIONLOSS",
        MARSHALLING_ERROR = -5 => "MARSHALLINGERROR",
        UNIMPLEMENTED = -6 => "UNIMPLEMENTED",
        OPERATION_TIMEOUT = -7 => "OPERATIONTIMEOUT",
        BAD_ARGUMENTS = -8 => "BADARGUMENTS",
        UNKNOWN_SESSION = -12 => "UNKNOWNSESSION",
        NEW_CONFIG_NO_QUORUM = -13 => "NEWCONFIGNOQUORUM",
        RECONFIG_IN_PROGRESS = -14 => "RECONFIGINPROGRESS",
        API_ERROR = -100 => "APIERROR",
        NO_NODE = -101 => "NONODE",
        NO_AUTH = -102 => "NOAUTH",
        BAD_VERSION = -103 => "BADVERSION",
        NO_CHILDREN_FOR_EPHEMERALS = -108 => "NOCHILDRENFOREPHEMERALS",
        NODE_EXISTS = -110 => "NODEEXISTS",
        NOT_EMPTY = -111 => "NOTEMPTY",
        SESSION_EXPIRED = -112 => "SESSIONEXPIRED",
        INVALID_CALLBACK = -113 => "INVALIDCALLBACK",
        INVALID_ACL = -114 => "INVALIDACL",
        AUTH_FAILED = -115 => "AUTHFAILED",
        SESSION_MOVED = -118 => "SESSIONMOVED",
        NOT_READONLY = -119 => "NOTREADONLY",
        EPHEMERAL_ON_LOCAL_SESSION = -120 => "EPHEMERALONLOCALSESSION",
        NO_WATCHER = -121 => "NOWATCHER",
        REQUEST_TIMEOUT = -122 => "REQUESTTIMEOUT",
        RECONFIG_DISABLED = -123 => "RECONFIGDISABLED",
        SESSION_CLOSED_REQUIRE_SASL_AUTH = -124 => "SESSIONCLOSEDREQUIRESASLAUTH",
        QUOTA_EXCEEDED = -125 => "QUOTAEXCEEDED",
        THROTTLED_OP = -127 => "THROTTLEDOP",
    }
}

impl ErrCode {
    /// Not a ZooKeeper code: the reply was cut inside its header (snap length, a gap), so its
    /// error code was not captured. Neither OK nor an error.
    pub const NOT_CAPTURED: ErrCode = ErrCode(i32::MIN);

    /// True for 0.
    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// True for a code the server sent that is not OK ([`ErrCode::NOT_CAPTURED`] is not).
    pub fn is_error(self) -> bool {
        self.0 != 0 && self != ErrCode::NOT_CAPTURED
    }

    /// False for [`ErrCode::NOT_CAPTURED`].
    pub fn is_captured(self) -> bool {
        self != ErrCode::NOT_CAPTURED
    }
}

code_newtype! {
    /// `WatcherEvent.type` (`Watcher.Event.EventType`, protocol.md §2.7).
    EventType {
        NONE = -1 => "None",
        NODE_CREATED = 1 => "NodeCreated",
        NODE_DELETED = 2 => "NodeDeleted",
        NODE_DATA_CHANGED = 3 => "NodeDataChanged",
        NODE_CHILDREN_CHANGED = 4 => "NodeChildrenChanged",
        DATA_WATCH_REMOVED = 5 => "DataWatchRemoved",
        CHILD_WATCH_REMOVED = 6 => "ChildWatchRemoved",
        PERSISTENT_WATCH_REMOVED = 7 => "PersistentWatchRemoved",
    }
}

code_newtype! {
    /// `WatcherEvent.state` (`Watcher.Event.KeeperState`, protocol.md §2.7).
    KeeperState {
        UNKNOWN = -1 => "Unknown",
        DISCONNECTED = 0 => "Disconnected",
        NO_SYNC_CONNECTED = 1 => "NoSyncConnected",
        SYNC_CONNECTED = 3 => "SyncConnected",
        AUTH_FAILED = 4 => "AuthFailed",
        CONNECTED_READ_ONLY = 5 => "ConnectedReadOnly",
        SASL_AUTHENTICATED = 6 => "SaslAuthenticated",
        EXPIRED = -112 => "Expired",
        CLOSED = 7 => "Closed",
    }
}

code_newtype! {
    /// Create `flags` (`CreateMode`, protocol.md §2.9).
    CreateMode {
        PERSISTENT = 0 => "PERSISTENT",
        EPHEMERAL = 1 => "EPHEMERAL",
        PERSISTENT_SEQUENTIAL = 2 => "PERSISTENT_SEQUENTIAL",
        EPHEMERAL_SEQUENTIAL = 3 => "EPHEMERAL_SEQUENTIAL",
        CONTAINER = 4 => "CONTAINER",
        PERSISTENT_WITH_TTL = 5 => "PERSISTENT_WITH_TTL",
        PERSISTENT_SEQUENTIAL_WITH_TTL = 6 => "PERSISTENT_SEQUENTIAL_WITH_TTL",
    }
}

impl CreateMode {
    /// EPHEMERAL or EPHEMERAL_SEQUENTIAL.
    pub fn is_ephemeral(self) -> bool {
        matches!(self.0, 1 | 3)
    }

    /// A sequential mode (the server appends a 10-digit counter).
    pub fn is_sequential(self) -> bool {
        matches!(self.0, 2 | 3 | 6)
    }

    /// CONTAINER.
    pub fn is_container(self) -> bool {
        self.0 == 4
    }

    /// A TTL mode.
    pub fn is_ttl(self) -> bool {
        matches!(self.0, 5 | 6)
    }
}

code_newtype! {
    /// checkWatches/removeWatches `type` (`Watcher.WatcherType`, §2.8).
    WatcherType {
        CHILDREN = 1 => "Children",
        DATA = 2 => "Data",
        ANY = 3 => "Any",
        PERSISTENT = 4 => "Persistent",
        PERSISTENT_RECURSIVE = 5 => "PersistentRecursive",
    }
}

code_newtype! {
    /// addWatch `mode` (`AddWatchMode`).
    AddWatchMode {
        PERSISTENT = 0 => "PERSISTENT",
        PERSISTENT_RECURSIVE = 1 => "PERSISTENT_RECURSIVE",
    }
}

/// ACL permission bits (READ 1, WRITE 2, CREATE 4, DELETE 8, ADMIN 16).
///
/// `Display` gives ZooKeeper CLI letters in `cdrwa` order (`"cdrwa"` for
/// ALL, `""` for none); bits above 16 are ignored by `Display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Perms(pub i32);

impl Perms {
    /// READ (1).
    pub const READ: i32 = 1;
    /// WRITE (2).
    pub const WRITE: i32 = 2;
    /// CREATE (4).
    pub const CREATE: i32 = 4;
    /// DELETE (8).
    pub const DELETE: i32 = 8;
    /// ADMIN (16).
    pub const ADMIN: i32 = 16;
    /// All five bits (31).
    pub const ALL: i32 = 31;

    /// True if every bit of `bits` is set.
    pub fn contains(self, bits: i32) -> bool {
        self.0 & bits == bits
    }

    /// Names of the set bits, in bit order (`["READ","WRITE",…]`).
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        [
            (Self::READ, "READ"),
            (Self::WRITE, "WRITE"),
            (Self::CREATE, "CREATE"),
            (Self::DELETE, "DELETE"),
            (Self::ADMIN, "ADMIN"),
        ]
        .into_iter()
        .filter(move |(b, _)| self.0 & b != 0)
        .map(|(_, n)| n)
    }
}

impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, c) in [
            (Self::CREATE, 'c'),
            (Self::DELETE, 'd'),
            (Self::READ, 'r'),
            (Self::WRITE, 'w'),
            (Self::ADMIN, 'a'),
        ] {
            if self.0 & bit != 0 {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

impl Serialize for Perms {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(self.0)
    }
}

/// What `Stat.ephemeralOwner` encodes (protocol.md §2.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EphemeralOwner {
    /// 0: a persistent node.
    Persistent,
    /// `i64::MIN`: a container node.
    Container,
    /// High byte 0xFF with bits 40–55 zero: a TTL node; the low 40 bits are
    /// the TTL in milliseconds.
    Ttl(u64),
    /// High byte 0xFF with a non-zero extended type (bits 40–55): unknown
    /// extended type, raw value kept.
    Extended(i64),
    /// Anything else: the owning session id (high byte = creating server's
    /// myid). 3.5.3-style TTLs (`i64::MIN | ttl`) also land here, as on a
    /// default-configured 3.5.4+ server.
    Session(i64),
}

impl EphemeralOwner {
    /// Classifies a raw `ephemeralOwner`.
    pub fn from_raw(owner: i64) -> Self {
        const LOW40: u64 = (1 << 40) - 1;
        let u = owner as u64;
        match owner {
            0 => EphemeralOwner::Persistent,
            i64::MIN => EphemeralOwner::Container,
            _ if u >> 56 == 0xff => {
                if (u >> 40) & 0xffff == 0 {
                    EphemeralOwner::Ttl(u & LOW40)
                } else {
                    EphemeralOwner::Extended(owner)
                }
            }
            _ => EphemeralOwner::Session(owner),
        }
    }

    /// `"persistent"`, `"container"`, `"ttl"`, `"extended"` or `"session"`.
    pub fn kind(self) -> &'static str {
        match self {
            EphemeralOwner::Persistent => "persistent",
            EphemeralOwner::Container => "container",
            EphemeralOwner::Ttl(_) => "ttl",
            EphemeralOwner::Extended(_) => "extended",
            EphemeralOwner::Session(_) => "session",
        }
    }
}

impl fmt::Display for EphemeralOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EphemeralOwner::Ttl(ms) => write!(f, "ttl({ms}ms)"),
            EphemeralOwner::Extended(v) => write!(f, "extended {}", Hex(*v)),
            EphemeralOwner::Session(v) => write!(f, "session {}", Hex(*v)),
            other => f.write_str(other.kind()),
        }
    }
}

/// Formats an `i64` as unsigned hex with `0x` (session ids, zxids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hex(pub i64);

impl Hex {
    /// The text (`0x` and lowercase digits, no leading zeros) in `buf`: what `Display`
    /// writes, without the formatting machinery (JSON output writes several per message).
    pub fn encode(self, buf: &mut [u8; 18]) -> &str {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let v = self.0 as u64;
        let digits = (64 - v.leading_zeros() as usize).div_ceil(4).max(1);
        let (head, rest) = buf.split_at_mut(2);
        head.copy_from_slice(b"0x");
        for (i, b) in rest.iter_mut().take(digits).enumerate() {
            let nibble = (v >> (4 * (digits - 1 - i))) & 0xf;
            *b = DIGITS.get(nibble as usize).copied().unwrap_or(b'0');
        }
        // Only ASCII was written: this never fails.
        std::str::from_utf8(buf.get(..digits + 2).unwrap_or_default()).unwrap_or("0x?")
    }
}

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.encode(&mut [0; 18]))
    }
}

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.encode(&mut [0; 18]))
    }
}

/// Name of a four-letter-word command, if the first 4 bytes of a connection
/// are one (protocol.md §2.1 item 3).
pub fn four_letter_word(first4: [u8; 4]) -> Option<&'static str> {
    const WORDS: [&str; 18] = [
        "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srvr", "srst",
        "stat", "wchc", "wchp", "wchs", "mntr", "isro", "hash",
    ];
    WORDS.into_iter().find(|w| w.as_bytes() == first4)
}

/// True if `bytes` starts with a TLS handshake record header
/// (0x16, 0x03, 0x00..=0x04): the flow is TLS, not plaintext jute.
pub fn is_tls_client_hello(bytes: &[u8]) -> bool {
    matches!(bytes, [0x16, 0x03, 0x00..=0x04, ..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_what_the_formatter_writes() {
        for v in [0i64, 1, 15, 16, 0x5000f4251, i64::MAX, -1, i64::MIN] {
            assert_eq!(Hex(v).to_string(), format!("{:#x}", v as u64));
            assert_eq!(Hex(v).encode(&mut [0; 18]), format!("{:#x}", v as u64));
        }
        assert_eq!(format!("{:>6}|", Hex(10)), "   0xa|");
    }

    #[test]
    fn names() {
        assert_eq!(OpCode(4).name(), Some("getData"));
        assert_eq!(OpCode(-11).name(), Some("closeSession"));
        assert_eq!(OpCode(555).name(), None);
        assert_eq!(OpCode(555).to_string(), "555");
        assert_eq!(OpCode(555).request_type(), "UnknownRequest");
        assert_eq!(OpCode(555).reply_type(), "UnknownReply");
        assert_eq!(OpCode::AUTH.request_type(), "SetAuthRequest");
        assert_eq!(OpCode::CLOSE_SESSION.request_type(), "CloseRequest");
        assert_eq!(OpCode::CLOSE_SESSION.reply_type(), "CloseReply");
        assert_eq!(OpCode::GET_DATA.reply_type(), "GetDataReply");
        assert!(OpCode::CREATE_TTL.is_write());
        assert!(!OpCode::GET_DATA.is_write());
        assert!(OpCode::GET_CHILDREN2.has_watch_flag());
        assert!(!OpCode::SET_DATA.has_watch_flag());
        assert_eq!(ErrCode(-101).name(), Some("NONODE"));
        assert_eq!(ErrCode(-126).name(), None);
        assert_eq!(ErrCode(-127).to_string(), "THROTTLEDOP");
        assert_eq!(EventType(7).name(), Some("PersistentWatchRemoved"));
        assert_eq!(KeeperState(-112).name(), Some("Expired"));
        assert_eq!(CreateMode(6).name(), Some("PERSISTENT_SEQUENTIAL_WITH_TTL"));
        assert_eq!(WatcherType(5).name(), Some("PersistentRecursive"));
        assert_eq!(AddWatchMode(1).name(), Some("PERSISTENT_RECURSIVE"));
    }

    #[test]
    fn every_opcode_has_both_type_names() {
        for op in (-20..=200).map(OpCode) {
            if op.name().is_some() && !matches!(op.0, 0 | -1) {
                assert!(op.request_type().ends_with("Request"), "{op}");
                assert!(op.reply_type().ends_with("Reply"), "{op}");
                assert!(!op.request_type().starts_with("Unknown"), "{op}");
            }
        }
    }

    #[test]
    fn perms() {
        assert_eq!(Perms(31).to_string(), "cdrwa");
        assert_eq!(Perms(1).to_string(), "r");
        assert_eq!(Perms(0).to_string(), "");
        assert_eq!(Perms(5).names().collect::<Vec<_>>(), ["READ", "CREATE"]);
    }

    #[test]
    fn ephemeral_owner() {
        use EphemeralOwner::*;
        assert_eq!(EphemeralOwner::from_raw(0), Persistent);
        assert_eq!(EphemeralOwner::from_raw(i64::MIN), Container);
        let ttl = (0xffu64 << 56 | 60_000) as i64;
        assert_eq!(EphemeralOwner::from_raw(ttl), Ttl(60_000));
        assert_eq!(EphemeralOwner::from_raw(ttl).to_string(), "ttl(60000ms)");
        let ext = (0xff01u64 << 48) as i64;
        assert_eq!(EphemeralOwner::from_raw(ext), Extended(ext));
        let s = 0x0100_0123_4567_0000;
        assert_eq!(EphemeralOwner::from_raw(s), Session(s));
        assert_eq!(
            EphemeralOwner::from_raw(s).to_string(),
            "session 0x100012345670000"
        );
    }

    #[test]
    fn four_letter_words_and_tls() {
        assert_eq!(four_letter_word(*b"ruok"), Some("ruok"));
        assert_eq!(four_letter_word(*b"mntr"), Some("mntr"));
        assert_eq!(four_letter_word([0, 0, 0, 44]), None);
        assert_eq!(four_letter_word(*b"RUOK"), None);
        assert!(is_tls_client_hello(&[0x16, 3, 1, 0, 5]));
        assert!(!is_tls_client_hello(&[0x16, 3, 5]));
        assert!(!is_tls_client_hello(&[0x16, 3]));
        assert!(!is_tls_client_hello(&[0, 0, 0, 44]));
    }
}
