//! Test frames (bodies after the 4-byte length prefix), one per message kind.
//! `corpus()` lists them all with how their strict prefixes must decode.

use crate::enc::Enc;

pub const SESSION: i64 = 0x0100_0000_0000_0042;
pub const TTL_OWNER: i64 = (0xffu64 << 56 | 60_000) as i64;
const WORLD: (i32, &str, &str) = (31, "world", "anyone");

// ---- requests ----
pub fn create_req() -> Vec<u8> {
    Enc::req(1, 1)
        .s("/app")
        .buf(Some(b"hello"))
        .acls(&[WORLD])
        .i32(0)
        .build()
}
pub fn create_null_data_req() -> Vec<u8> {
    Enc::req(1, 1).s("/n").buf(None).acls(&[]).i32(1).build()
}
pub fn create2_req() -> Vec<u8> {
    Enc::req(2, 15)
        .s("/q/item-")
        .buf(Some(b""))
        .acls(&[WORLD])
        .i32(3)
        .build()
}
pub fn create_container_req() -> Vec<u8> {
    Enc::req(3, 19)
        .s("/c")
        .buf(Some(b"x"))
        .acls(&[WORLD])
        .i32(4)
        .build()
}
pub fn create_ttl_req() -> Vec<u8> {
    Enc::req(4, 21)
        .s("/t")
        .buf(Some(b"ttl"))
        .acls(&[WORLD])
        .i32(5)
        .i64(60_000)
        .build()
}
pub fn delete_req() -> Vec<u8> {
    Enc::req(5, 2).s("/app").i32(-1).build()
}
pub fn exists_req() -> Vec<u8> {
    Enc::req(6, 3).s("/app").bool(true).build()
}
pub fn get_data_req() -> Vec<u8> {
    Enc::req(7, 4).s("/app").bool(false).build()
}
pub fn set_data_req() -> Vec<u8> {
    Enc::req(8, 5).s("/app").buf(Some(b"world!")).i32(3).build()
}
pub fn get_acl_req() -> Vec<u8> {
    Enc::req(9, 6).s("/app").build()
}
pub fn set_acl_req() -> Vec<u8> {
    Enc::req(10, 7)
        .s("/app")
        .acls(&[(1, "digest", "bob:abc="), (5, "ip", "10.0.0.0/8")])
        .i32(2)
        .build()
}
pub fn get_children_req() -> Vec<u8> {
    Enc::req(11, 8).s("/").bool(true).build()
}
pub fn sync_req() -> Vec<u8> {
    Enc::req(12, 9).s("/app").build()
}
pub fn ping_req() -> Vec<u8> {
    Enc::req(-2, 11).build()
}
pub fn get_children2_req() -> Vec<u8> {
    Enc::req(13, 12).s("/app").bool(true).build()
}
pub fn check_req() -> Vec<u8> {
    Enc::req(14, 13).s("/app").i32(4).build()
}
pub fn multi_req() -> Vec<u8> {
    Enc::req(15, 14)
        .mh(1, -1)
        .s("/m/a")
        .buf(Some(b"1"))
        .acls(&[WORLD])
        .i32(0)
        .mh(21, -1)
        .s("/m/t")
        .buf(None)
        .acls(&[WORLD])
        .i32(6)
        .i64(5_000)
        .mh(5, -1)
        .s("/m/b")
        .buf(Some(b"22"))
        .i32(-1)
        .mh(2, -1)
        .s("/m/c")
        .i32(7)
        .mh(13, -1)
        .s("/m")
        .i32(0)
        .done()
        .build()
}
pub fn multi_empty_req() -> Vec<u8> {
    Enc::req(16, 14).done().build()
}
pub fn reconfig_req() -> Vec<u8> {
    Enc::req(17, 16)
        .s("server.4=h4:2888:3888;2181")
        .null()
        .null()
        .i64(-1)
        .build()
}
pub fn check_watches_req() -> Vec<u8> {
    Enc::req(18, 17).s("/w").i32(2).build()
}
pub fn remove_watches_req() -> Vec<u8> {
    Enc::req(19, 18).s("/w").i32(5).build()
}
pub fn delete_container_raw_req() -> Vec<u8> {
    Enc::req(0, 20).raw(b"/c").build()
}
pub fn delete_container_buf_req() -> Vec<u8> {
    Enc::req(0, 20).s("/c").build()
}
pub fn multi_read_req() -> Vec<u8> {
    Enc::req(20, 22)
        .mh(8, -1)
        .s("/r")
        .bool(false)
        .mh(4, -1)
        .s("/r/x")
        .bool(false)
        .done()
        .build()
}
pub fn auth_req() -> Vec<u8> {
    Enc::req(-4, 100)
        .i32(0)
        .s("digest")
        .buf(Some(b"alice:s3cret"))
        .build()
}
pub fn set_watches_req() -> Vec<u8> {
    Enc::req(-8, 101)
        .i64(0x1_0000_0005)
        .strings(&["/d1", "/d2"])
        .strings(&["/e"])
        .strings(&[])
        .build()
}
pub fn sasl_req() -> Vec<u8> {
    Enc::req(21, 102).buf(Some(&[0x60, 0x82, 1, 2, 3])).build()
}
pub fn get_ephemerals_req() -> Vec<u8> {
    Enc::req(22, 103).s("/eph").build()
}
pub fn get_all_children_number_req() -> Vec<u8> {
    Enc::req(23, 104).s("/app").build()
}
pub fn set_watches2_req() -> Vec<u8> {
    Enc::req(24, 105)
        .i64(0x1_0000_0009)
        .strings(&["/d"])
        .strings(&[])
        .strings(&["/c"])
        .strings(&["/p"])
        .strings(&["/pr1", "/pr2"])
        .build()
}
pub fn add_watch_req() -> Vec<u8> {
    Enc::req(25, 106).s("/tree").i32(1).build()
}
pub fn who_am_i_req() -> Vec<u8> {
    Enc::req(26, 107).build()
}
pub fn close_session_req() -> Vec<u8> {
    Enc::req(27, -11).build()
}
pub fn unknown_555_req() -> Vec<u8> {
    Enc::req(28, 555).s("/keeper/api").i32(1).build()
}

// ---- replies ----
pub fn create_rep() -> Vec<u8> {
    Enc::rep(1, 0x100, 0).s("/app").build()
}
pub fn create2_rep() -> Vec<u8> {
    Enc::rep(2, 0x101, 0)
        .s("/q/item-0000000007")
        .stat(1, SESSION)
        .build()
}
pub fn create_container_rep() -> Vec<u8> {
    Enc::rep(3, 0x102, 0).s("/c").stat(2, i64::MIN).build()
}
pub fn create_ttl_rep() -> Vec<u8> {
    Enc::rep(4, 0x103, 0).s("/t").stat(3, TTL_OWNER).build()
}
pub fn delete_rep() -> Vec<u8> {
    Enc::rep(5, 0x104, 0).build()
}
pub fn exists_rep() -> Vec<u8> {
    Enc::rep(6, 0x104, 0).stat(4, 0).build()
}
pub fn exists_nonode_rep() -> Vec<u8> {
    Enc::rep(6, 0x104, -101).build()
}
pub fn get_data_rep() -> Vec<u8> {
    Enc::rep(7, 0x104, 0).buf(Some(b"hello")).stat(5, 0).build()
}
pub fn set_data_rep() -> Vec<u8> {
    Enc::rep(8, 0x105, 0).stat(6, 0).build()
}
pub fn get_acl_rep() -> Vec<u8> {
    Enc::rep(9, 0x105, 0)
        .acls(&[WORLD, (3, "auth", "")])
        .stat(7, 0)
        .build()
}
pub fn set_acl_rep() -> Vec<u8> {
    Enc::rep(10, 0x106, 0).stat(8, 0).build()
}
pub fn get_children_rep() -> Vec<u8> {
    Enc::rep(11, 0x106, 0)
        .strings(&["app", "zookeeper"])
        .build()
}
pub fn sync_rep() -> Vec<u8> {
    Enc::rep(12, 0x106, 0).s("/app").build()
}
pub fn ping_rep() -> Vec<u8> {
    Enc::rep(-2, 0x106, 0).build()
}
pub fn get_children2_rep() -> Vec<u8> {
    Enc::rep(13, 0x106, 0).strings(&["a"]).stat(9, 0).build()
}
pub fn check_rep() -> Vec<u8> {
    Enc::rep(14, 0x107, 0).stat(0, 0).build()
}
pub fn multi_rep() -> Vec<u8> {
    Enc::rep(15, 0x108, 0)
        .mh(1, 0)
        .s("/m/a")
        .mh(15, 0)
        .s("/m/t0000000001")
        .stat(10, TTL_OWNER)
        .mh(5, 0)
        .stat(11, 0)
        .mh(2, 0)
        .mh(13, 0)
        .done()
        .build()
}
/// Aborted multi: op 2 of 4 failed with BADVERSION.
pub fn multi_failed_rep() -> Vec<u8> {
    Enc::rep(15, 0x108, 0)
        .mh(-1, 0)
        .i32(0)
        .mh(-1, -103)
        .i32(-103)
        .mh(-1, -2)
        .i32(-2)
        .mh(-1, -2)
        .i32(-2)
        .done()
        .build()
}
pub fn multi_read_rep() -> Vec<u8> {
    Enc::rep(20, 0x108, 0)
        .mh(8, 0)
        .strings(&["x", "y"])
        .mh(-1, -101)
        .i32(-101)
        .mh(4, 0)
        .buf(Some(b"data"))
        .stat(12, 0)
        .done()
        .build()
}
pub fn reconfig_rep() -> Vec<u8> {
    Enc::rep(17, 0x200, 0)
        .buf(Some(b"server.1=h1:2888:3888;2181\nversion=200"))
        .stat(13, 0)
        .build()
}
pub fn check_watches_rep() -> Vec<u8> {
    Enc::rep(18, 0x200, 0).build()
}
pub fn remove_watches_nowatcher_rep() -> Vec<u8> {
    Enc::rep(19, 0x200, -121).build()
}
pub fn auth_rep() -> Vec<u8> {
    Enc::rep(-4, 0, 0).build()
}
pub fn auth_failed_rep() -> Vec<u8> {
    Enc::rep(-4, 0, -115).build()
}
pub fn set_watches_rep() -> Vec<u8> {
    Enc::rep(-8, 0x200, 0).build()
}
pub fn sasl_rep() -> Vec<u8> {
    Enc::rep(21, 0, 0).buf(Some(&[5, 4, 3])).build()
}
/// SASL failure: err −115 and a body with a null token (must be ignored).
pub fn sasl_failed_rep() -> Vec<u8> {
    Enc::rep(21, 0, -115).null().build()
}
pub fn get_ephemerals_rep() -> Vec<u8> {
    Enc::rep(22, 0x200, 0)
        .strings(&["/eph/a", "/eph/b/c"])
        .build()
}
pub fn get_all_children_number_rep() -> Vec<u8> {
    Enc::rep(23, 0x200, 0).i32(42).build()
}
pub fn set_watches2_rep() -> Vec<u8> {
    Enc::rep(24, 0x200, 0).build()
}
pub fn add_watch_rep() -> Vec<u8> {
    Enc::rep(25, 0x200, 0).i32(0).build()
}
pub fn who_am_i_rep() -> Vec<u8> {
    Enc::rep(26, 0x200, 0)
        .i32(2)
        .s("ip")
        .s("127.0.0.1")
        .s("digest")
        .s("alice")
        .build()
}
pub fn close_session_rep() -> Vec<u8> {
    Enc::rep(27, 0x201, 0).build()
}
pub fn unknown_555_rep() -> Vec<u8> {
    Enc::rep(28, 0x201, 0).i32(7).i64(9).build()
}
/// Notification as sent by 3.4–3.8 (zxid −1).
pub fn event_34_rep() -> Vec<u8> {
    Enc::rep(-1, -1, 0).i32(3).i32(3).s("/app").build()
}
/// Notification as sent by 3.9+ (the event's zxid).
pub fn event_39_rep() -> Vec<u8> {
    Enc::rep(-1, 0x3_0000_0010, 0)
        .i32(4)
        .i32(3)
        .s("/app")
        .build()
}

// ---- handshake ----
pub fn connect_req(read_only: Option<bool>) -> Vec<u8> {
    let e = Enc::new()
        .i32(0)
        .i64(0x1_0000_0004)
        .i32(30_000)
        .i64(0)
        .buf(Some(&[0; 16]));
    match read_only {
        Some(b) => e.bool(b).build(),
        None => e.build(),
    }
}
pub fn connect_resp(read_only: Option<bool>) -> Vec<u8> {
    let e = Enc::new()
        .i32(0)
        .i32(20_000)
        .i64(SESSION)
        .buf(Some(&[7; 16]));
    match read_only {
        Some(b) => e.bool(b).build(),
        None => e.build(),
    }
}

/// Which decoder a frame is for.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Request,
    /// `decode_reply` with this request opcode.
    Reply(Option<i32>),
    /// `decode_event`.
    Event,
    ConnReq,
    ConnResp,
}

/// Which strict prefixes may decode successfully (all others: Truncated).
#[derive(Debug, Clone, Copy)]
pub enum Prefix {
    /// Every strict prefix is Truncated.
    AllTruncated,
    /// Prefixes of at least this length are valid shorter records.
    OkFrom(usize),
    /// Exactly this prefix length is a valid shorter record.
    OkAt(usize),
}

pub struct Case {
    pub name: &'static str,
    pub kind: Kind,
    pub bytes: Vec<u8>,
    pub prefix: Prefix,
}

pub fn corpus() -> Vec<Case> {
    use Kind::*;
    use Prefix::*;
    let c = |name, kind, bytes, prefix| Case {
        name,
        kind,
        bytes,
        prefix,
    };
    vec![
        c("create_req", Request, create_req(), AllTruncated),
        c(
            "create_null_data_req",
            Request,
            create_null_data_req(),
            AllTruncated,
        ),
        c("create2_req", Request, create2_req(), AllTruncated),
        c(
            "create_container_req",
            Request,
            create_container_req(),
            AllTruncated,
        ),
        c("create_ttl_req", Request, create_ttl_req(), AllTruncated),
        c("delete_req", Request, delete_req(), AllTruncated),
        c("exists_req", Request, exists_req(), AllTruncated),
        c("get_data_req", Request, get_data_req(), AllTruncated),
        c("set_data_req", Request, set_data_req(), AllTruncated),
        c("get_acl_req", Request, get_acl_req(), AllTruncated),
        c("set_acl_req", Request, set_acl_req(), AllTruncated),
        c(
            "get_children_req",
            Request,
            get_children_req(),
            AllTruncated,
        ),
        c("sync_req", Request, sync_req(), AllTruncated),
        c("ping_req", Request, ping_req(), AllTruncated),
        c(
            "get_children2_req",
            Request,
            get_children2_req(),
            AllTruncated,
        ),
        c("check_req", Request, check_req(), AllTruncated),
        c("multi_req", Request, multi_req(), AllTruncated),
        c("multi_empty_req", Request, multi_empty_req(), AllTruncated),
        c("reconfig_req", Request, reconfig_req(), AllTruncated),
        c(
            "check_watches_req",
            Request,
            check_watches_req(),
            AllTruncated,
        ),
        c(
            "remove_watches_req",
            Request,
            remove_watches_req(),
            AllTruncated,
        ),
        // Raw-path form: any body is a (shorter) path.
        c(
            "delete_container_raw_req",
            Request,
            delete_container_raw_req(),
            OkFrom(8),
        ),
        c(
            "delete_container_buf_req",
            Request,
            delete_container_buf_req(),
            OkFrom(8),
        ),
        c("multi_read_req", Request, multi_read_req(), AllTruncated),
        c("auth_req", Request, auth_req(), AllTruncated),
        c("set_watches_req", Request, set_watches_req(), AllTruncated),
        c("sasl_req", Request, sasl_req(), AllTruncated),
        c(
            "get_ephemerals_req",
            Request,
            get_ephemerals_req(),
            AllTruncated,
        ),
        c(
            "get_all_children_number_req",
            Request,
            get_all_children_number_req(),
            AllTruncated,
        ),
        c(
            "set_watches2_req",
            Request,
            set_watches2_req(),
            AllTruncated,
        ),
        c("add_watch_req", Request, add_watch_req(), AllTruncated),
        c("who_am_i_req", Request, who_am_i_req(), AllTruncated),
        c(
            "close_session_req",
            Request,
            close_session_req(),
            AllTruncated,
        ),
        // Unknown opcode: the body is opaque, any length is fine.
        c("unknown_555_req", Request, unknown_555_req(), OkFrom(8)),
        c("create_rep", Reply(Some(1)), create_rep(), AllTruncated),
        c("create2_rep", Reply(Some(15)), create2_rep(), AllTruncated),
        c(
            "create_container_rep",
            Reply(Some(19)),
            create_container_rep(),
            AllTruncated,
        ),
        c(
            "create_ttl_rep",
            Reply(Some(21)),
            create_ttl_rep(),
            AllTruncated,
        ),
        c("delete_rep", Reply(Some(2)), delete_rep(), AllTruncated),
        c("exists_rep", Reply(Some(3)), exists_rep(), AllTruncated),
        c(
            "exists_nonode_rep",
            Reply(Some(3)),
            exists_nonode_rep(),
            AllTruncated,
        ),
        c("get_data_rep", Reply(Some(4)), get_data_rep(), AllTruncated),
        c("set_data_rep", Reply(Some(5)), set_data_rep(), AllTruncated),
        c("get_acl_rep", Reply(Some(6)), get_acl_rep(), AllTruncated),
        c("set_acl_rep", Reply(Some(7)), set_acl_rep(), AllTruncated),
        c(
            "get_children_rep",
            Reply(Some(8)),
            get_children_rep(),
            AllTruncated,
        ),
        c("sync_rep", Reply(Some(9)), sync_rep(), AllTruncated),
        c("ping_rep", Reply(None), ping_rep(), AllTruncated),
        c("ping_rep_op", Reply(Some(11)), ping_rep(), AllTruncated),
        c(
            "get_children2_rep",
            Reply(Some(12)),
            get_children2_rep(),
            AllTruncated,
        ),
        // Standalone check: an empty body is accepted (header only).
        c("check_rep", Reply(Some(13)), check_rep(), OkAt(16)),
        c("multi_rep", Reply(Some(14)), multi_rep(), AllTruncated),
        c(
            "multi_failed_rep",
            Reply(Some(14)),
            multi_failed_rep(),
            AllTruncated,
        ),
        c(
            "multi_read_rep",
            Reply(Some(22)),
            multi_read_rep(),
            AllTruncated,
        ),
        c(
            "reconfig_rep",
            Reply(Some(16)),
            reconfig_rep(),
            AllTruncated,
        ),
        c(
            "check_watches_rep",
            Reply(Some(17)),
            check_watches_rep(),
            AllTruncated,
        ),
        c(
            "remove_watches_nowatcher_rep",
            Reply(Some(18)),
            remove_watches_nowatcher_rep(),
            AllTruncated,
        ),
        c("auth_rep", Reply(None), auth_rep(), AllTruncated),
        c(
            "auth_failed_rep",
            Reply(Some(100)),
            auth_failed_rep(),
            AllTruncated,
        ),
        c(
            "set_watches_rep",
            Reply(None),
            set_watches_rep(),
            AllTruncated,
        ),
        c("sasl_rep", Reply(Some(102)), sasl_rep(), AllTruncated),
        // err != 0: the body is ignored.
        c(
            "sasl_failed_rep",
            Reply(Some(102)),
            sasl_failed_rep(),
            OkFrom(16),
        ),
        c(
            "get_ephemerals_rep",
            Reply(Some(103)),
            get_ephemerals_rep(),
            AllTruncated,
        ),
        c(
            "get_all_children_number_rep",
            Reply(Some(104)),
            get_all_children_number_rep(),
            AllTruncated,
        ),
        c(
            "set_watches2_rep",
            Reply(Some(105)),
            set_watches2_rep(),
            AllTruncated,
        ),
        c(
            "add_watch_rep",
            Reply(Some(106)),
            add_watch_rep(),
            AllTruncated,
        ),
        c(
            "who_am_i_rep",
            Reply(Some(107)),
            who_am_i_rep(),
            AllTruncated,
        ),
        c(
            "close_session_rep",
            Reply(Some(-11)),
            close_session_rep(),
            AllTruncated,
        ),
        // Unknown request opcode / request not captured: opaque body.
        c(
            "unknown_555_rep",
            Reply(Some(555)),
            unknown_555_rep(),
            OkFrom(16),
        ),
        c("uncaptured_rep", Reply(None), get_data_rep(), OkFrom(16)),
        c("event_34_rep", Reply(None), event_34_rep(), AllTruncated),
        c("event_39_rep", Reply(Some(4)), event_39_rep(), AllTruncated),
        c("event_34", Event, event_34_rep(), AllTruncated),
        c("event_39", Event, event_39_rep(), AllTruncated),
        // The readOnly byte is optional.
        c(
            "connect_req_ro",
            ConnReq,
            connect_req(Some(false)),
            OkAt(44),
        ),
        c("connect_req", ConnReq, connect_req(None), AllTruncated),
        c(
            "connect_resp_ro",
            ConnResp,
            connect_resp(Some(true)),
            OkAt(36),
        ),
        c("connect_resp", ConnResp, connect_resp(None), AllTruncated),
    ]
}
