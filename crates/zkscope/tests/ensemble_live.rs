//! A real 3-server ZooKeeper 3.8 ensemble on loopback (free ports), captured live by
//! `zkscope dump --protocol auto -i lo` (all TCP, no --port) and by tcpdump (issue 3).
//!
//! The ensemble elects a leader; a client writes through a follower; the leader is killed
//! with SIGKILL; the survivors elect a new one; the old leader restarts and rejoins. Checked:
//! the leaders `zkscope elections` reports, phase by phase, are what each server's `srvr`
//! said; every client write is one PROPOSAL and one COMMIT on each follower connection; the
//! ensemble's election, quorum and client ports were discovered from the traffic.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::*;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Modes by myid from `srvr` (servers that do not answer within a few tries are left out:
/// one `srvr` can time out on a loaded machine).
fn modes(ens: &ZkEnsemble) -> BTreeMap<u32, String> {
    ens.servers
        .iter()
        .filter_map(|s| {
            let mode = (0..5).find_map(|i| {
                if i > 0 {
                    std::thread::sleep(Duration::from_millis(300));
                }
                s.mode()
            })?;
            Some((s.myid()?, mode))
        })
        .collect()
}

/// Waits until member `id`'s `srvr` says `mode` (a learner says so once it has its UPTODATE).
fn wait_mode(ens: &ZkEnsemble, id: u32, mode: &str) {
    let ok = wait_for(Duration::from_secs(60), || {
        (ens.server(id).mode().as_deref() == Some(mode)).then_some(())
    });
    assert!(
        ok.is_some(),
        "member {id} is not {mode}\n{}",
        ens.server(id).log_tail(20)
    );
}

fn leader_of(m: &BTreeMap<u32, String>) -> Option<i64> {
    m.iter()
        .find(|(_, mode)| mode.as_str() == "leader")
        .map(|(id, _)| i64::from(*id))
}

#[test]
fn live_ensemble_failover() {
    if use_oracle() {
        eprintln!("skipped: the oracle decoder has no election/quorum support");
        return;
    }
    let dir = TempDir::new("ens-live");
    let pcap = dir.join("lo.pcap");
    let tcpdump = Tcpdump::start("lo", "tcp", &pcap);
    let live = ZkscopeLive::auto(&["--include-pings"]);
    let live_story = ZkscopeLive::start(&["elections", "-i", "lo", "--format", "json"]);

    // Phase 1: the ensemble elects.
    let mut ens = ZkEnsemble::start(3, ZkOpts::new().standalone_enabled(false));
    let first = ens.wait_leader(Duration::from_secs(60));
    let modes1 = modes(&ens);
    assert_eq!(leader_of(&modes1), Some(i64::from(first)), "{modes1:?}");

    // A client writes through a follower.
    let follower = (1..=3).find(|&id| id != first).unwrap_or(1);
    let prefix = format!("/zkscope-ens-{}", std::process::id());
    let cli = java_cli(
        &ens.server(follower).addr(),
        &[
            &format!("create {prefix} a"),
            &format!("set {prefix} b"),
            &format!("create {prefix}/c x"),
            &format!("delete {prefix}/c"),
        ],
    );
    assert!(cli.status.success(), "{}", cli.stderr);
    // The client had its replies from its follower: the other follower's last COMMIT may still
    // sit in the leader's send queue, which the SIGKILL below would drop.
    ens.wait_synced(follower, Duration::from_secs(60));

    // Phase 2: SIGKILL the leader; the survivors elect another.
    let t_kill = now();
    ens.kill(first);
    let second = wait_for(Duration::from_secs(60), || {
        ens.leader_id().filter(|&l| l != first)
    })
    .expect("no new leader after the kill");
    // The leader serves before its follower has its UPTODATE: wait for that too, so the
    // failover round is over (UPTODATE captured) before the old leader comes back.
    let survivor = (1..=3).find(|&id| id != first && id != second).unwrap_or(1);
    wait_mode(&ens, survivor, "follower");
    let modes2 = modes(&ens);

    // Phase 3: the old leader restarts and finds the new one (it serves once it has its
    // UPTODATE: the rejoin round is complete in the capture).
    let t_restart = now();
    ens.start_member(first);
    let modes3 = modes(&ens);
    assert_eq!(modes3.get(&first).map(String::as_str), Some("follower"));
    assert_eq!(leader_of(&modes3), Some(i64::from(second)), "{modes3:?}");

    let out = live.stop();
    let story_out = live_story.stop();
    let (file, stats) = tcpdump.stop_with_stats();
    assert!(out.bad_lines.is_empty(), "{:?}", out.bad_lines);

    // The ensemble's endpoints.
    let mut fle_ports = BTreeSet::new();
    let mut zab_ports = BTreeSet::new();
    let mut client_ports = BTreeSet::new();
    for s in &ens.servers {
        fle_ports.insert(s.election_port().unwrap_or(0));
        zab_ports.insert(s.quorum_port().unwrap_or(0));
        client_ports.insert(s.client_port());
    }
    let ours = |m: &Value| {
        [s(m, "src"), s(m, "dst"), s(m, "endpoint"), s(m, "server")]
            .iter()
            .any(|a| {
                let p = port_of(a);
                fle_ports.contains(&p) || zab_ports.contains(&p) || client_ports.contains(&p)
            })
    };
    let msgs: Vec<&Value> = out.messages.iter().filter(|m| ours(m)).collect();

    // Ports discovered with no --port: every election, quorum and client port.
    let discovered: BTreeSet<(String, u16)> = msgs
        .iter()
        .filter(|m| s(m, "type") == "Discovered" && s(m, "endpoint").starts_with("127.0.0.1:"))
        .map(|m| (s(m, "role").to_string(), port_of(s(m, "endpoint"))))
        .collect();
    for (role, ports) in [
        ("fle", &fle_ports),
        ("zab", &zab_ports),
        ("client", &client_ports),
    ] {
        for p in ports {
            assert!(
                discovered.contains(&(role.to_string(), *p)),
                "{role} port {p} not discovered: {discovered:?}\n{}",
                tail(&out.stderr, 12)
            );
        }
    }
    // All three protocols decoded, nothing undecodable on our connections.
    let count = |proto: &str, ty: &str| {
        msgs.iter()
            .filter(|m| s(m, "proto") == proto && s(m, "type") == ty)
            .count()
    };
    assert!(
        count("fle", "Notification") >= 4,
        "{}",
        tail(&out.stderr, 12)
    );
    assert!(count("fle", "Initial") >= 2);
    assert!(count("zab", "FollowerInfo") >= 3);
    assert!(count("zab", "UpToDate") >= 3);
    assert!(count("zab", "Ping") > 0);
    assert!(count("client", "CreateRequest") >= 2);
    assert_eq!(
        msgs.iter()
            .filter(|m| s(m, "type") == "Undecodable")
            .count(),
        0
    );

    // Every write: one PROPOSAL and one COMMIT per follower connection of the leader.
    let writes: BTreeMap<i64, String> = msgs
        .iter()
        .filter(|m| {
            s(m, "proto") == "zab"
                && s(m, "type") == "Proposal"
                && s(m, "path").starts_with(&prefix)
        })
        .filter_map(|m| Some((m["zxid"].as_i64()?, s(m, "txn_op").to_string())))
        .collect();
    let ops: Vec<&str> = writes.values().map(String::as_str).collect();
    assert_eq!(ops, ["create", "setData", "create", "delete"], "{writes:?}");
    let leader_zab = ens.server(first).quorum_port().unwrap_or(0);
    for zxid in writes.keys() {
        let mut per_conn: BTreeMap<(i64, &str), usize> = BTreeMap::new();
        for m in msgs.iter().filter(|m| {
            s(m, "proto") == "zab"
                && m["zxid"].as_i64() == Some(*zxid)
                && port_of(s(m, "src")) == leader_zab
        }) {
            *per_conn
                .entry((m["conn"].as_i64().unwrap_or(-1), s(m, "type")))
                .or_insert(0) += 1;
        }
        let conns: BTreeSet<i64> = per_conn.keys().map(|k| k.0).collect();
        assert_eq!(conns.len(), 2, "two followers: {per_conn:?}");
        for c in conns {
            assert_eq!(
                per_conn.get(&(c, "Proposal")),
                Some(&1),
                "{zxid:#x}: {per_conn:?}"
            );
            assert_eq!(
                per_conn.get(&(c, "Commit")),
                Some(&1),
                "{zxid:#x}: {per_conn:?}"
            );
        }
    }

    // The story, from the tcpdump file (filtered to this ensemble's ports: other tests may
    // run ZooKeeper on this loopback too).
    let ports: Vec<String> = fle_ports
        .iter()
        .chain(&zab_ports)
        .chain(&client_ports)
        .map(|p| format!("port {p}"))
        .collect();
    let filter = ports.join(" or ");
    let f = file.to_str().unwrap_or_default();
    let run = zkscope(&["elections", "-r", f, "-f", &filter, "--format", "json"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let rounds: Value = serde_json::from_slice(&run.stdout).expect("JSON array of rounds");
    let rounds = rounds.as_array().cloned().unwrap_or_default();
    let text = zkscope(&["elections", "-r", f, "-f", &filter]);
    let story = String::from_utf8_lossy(&text.stdout).into_owned();
    let phase = |from: f64, to: f64| -> Vec<Option<i64>> {
        rounds
            .iter()
            .filter(|r| r["start_ts"].as_f64().is_some_and(|t| t >= from && t < to))
            .map(|r| r["leader"].as_i64())
            .collect()
    };
    let check_phases = |rounds: &[Value], what: &str| {
        let phase = |from: f64, to: f64| -> Vec<Option<i64>> {
            rounds
                .iter()
                .filter(|r| r["start_ts"].as_f64().is_some_and(|t| t >= from && t < to))
                .map(|r| r["leader"].as_i64())
                .collect()
        };
        let (p1, p2, p3) = (
            phase(0.0, t_kill),
            phase(t_kill, t_restart),
            phase(t_restart, f64::MAX),
        );
        let ctx = format!(
            "{what}: srvr {modes1:?} / {modes2:?} / {modes3:?}; rounds {p1:?} {p2:?} {p3:?}"
        );
        assert!(!p1.is_empty() && !p2.is_empty() && !p3.is_empty(), "{ctx}");
        assert!(p1.iter().all(|l| *l == leader_of(&modes1)), "{ctx}");
        assert!(p2.iter().all(|l| *l == leader_of(&modes2)), "{ctx}");
        assert!(p3.iter().all(|l| *l == leader_of(&modes3)), "{ctx}");
    };
    // `zkscope elections -i lo` (live, all TCP) tells the same story, unless another
    // ensemble was electing on this loopback meanwhile.
    let foreign = out
        .messages
        .iter()
        .any(|m| matches!(s(m, "proto"), "fle" | "zab") && !ours(m));
    let live_rounds: Value =
        serde_json::from_str(story_out.bad_lines.first().map_or("[]", String::as_str))
            .expect("live elections: a JSON array");
    if !foreign {
        check_phases(live_rounds.as_array().map_or(&[], Vec::as_slice), "live");
    }
    check_phases(&rounds, "file");
    let p1 = phase(0.0, t_kill);
    let p2 = phase(t_kill, t_restart);
    let p3 = phase(t_restart, f64::MAX);
    let ctx = format!(
        "srvr: {modes1:?} / {modes2:?} / {modes3:?}\nrounds: {p1:?} {p2:?} {p3:?}\n{story}\ntcpdump: {stats:?}"
    );
    assert!(!p1.is_empty() && !p2.is_empty() && !p3.is_empty(), "{ctx}");
    assert!(p1.iter().all(|l| *l == leader_of(&modes1)), "{ctx}");
    assert!(p2.iter().all(|l| *l == leader_of(&modes2)), "{ctx}");
    assert!(p3.iter().all(|l| *l == leader_of(&modes3)), "{ctx}");
    // The failover round: the two survivors, settled, and the followers' UPTODATE timed.
    let failover = rounds
        .iter()
        .find(|r| {
            r["start_ts"]
                .as_f64()
                .is_some_and(|t| t >= t_kill && t < t_restart)
        })
        .cloned()
        .unwrap_or_default();
    let looking: Vec<i64> = failover["looking"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    assert_eq!(looking.len(), 2, "{ctx}");
    assert!(!looking.contains(&i64::from(first)), "{ctx}");
    assert!(failover["end_ts"].as_f64() >= failover["start_ts"].as_f64());
    assert_eq!(
        failover["uptodate"].as_array().map(Vec::len),
        Some(1),
        "{ctx}"
    );
    // The old leader's return is a round of its own that finds the existing leader.
    let rejoin = rounds
        .iter()
        .find(|r| r["start_ts"].as_f64().is_some_and(|t| t >= t_restart))
        .cloned()
        .unwrap_or_default();
    assert_eq!(rejoin["kind"], "rejoin", "{ctx}");
    assert_eq!(rejoin["looking"], serde_json::json!([first]), "{ctx}");

    // The same capture read from the file, all TCP, decodes the same quorum traffic.
    let d = zkscope_dump_file(&file, &["--protocol", "auto"]);
    assert!(d.success, "{}", d.stderr);
    let from_file = d
        .messages
        .iter()
        .filter(|m| ours(m) && s(m, "proto") == "zab" && s(m, "type") == "Proposal")
        .count();
    let live_props = count("zab", "Proposal");
    assert!(
        from_file >= live_props,
        "file {from_file} vs live {live_props}"
    );
}
