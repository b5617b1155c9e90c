//! Dynamic reconfiguration of a real 3-server ZooKeeper 3.8 ensemble (`reconfigEnabled`),
//! captured live by `zkscope dump --protocol auto -i lo` (issue 3): a follower is removed and
//! added back; both reconfigs show up as a reconfig PROPOSAL carrying the new configuration
//! and a COMMITANDACTIVATE naming the designated leader.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use support::*;

#[test]
fn reconfig_remove_and_add() {
    if use_oracle() {
        eprintln!("skipped: the oracle decoder has no quorum support");
        return;
    }
    let live = ZkscopeLive::auto(&[]);
    let ens = ZkEnsemble::start(
        3,
        ZkOpts::new()
            .standalone_enabled(false)
            .reconfig_enabled()
            .cfg("skipACL=yes"),
    );
    let leader = ens.wait_leader(Duration::from_secs(60));
    let f = (1..=3).rev().find(|&id| id != leader).unwrap_or(1);
    let fs = ens.server(f);
    let (q, e, c) = (
        fs.quorum_port().unwrap_or(0),
        fs.election_port().unwrap_or(0),
        fs.client_port(),
    );
    let addr = ens.server(leader).addr();
    let removed = java_cli(&addr, &[&format!("reconfig -remove {f}")]);
    assert!(removed.status.success(), "{}", removed.stderr);
    ens.wait_synced(leader, Duration::from_secs(60));
    let added = java_cli(
        &addr,
        &[&format!(
            "reconfig -add server.{f}=127.0.0.1:{q}:{e}:participant;{c}"
        )],
    );
    assert!(added.status.success(), "{}", added.stderr);
    ens.wait_synced(leader, Duration::from_secs(60));
    let out = live.stop();

    let zab_ports: BTreeSet<u16> = ens.servers.iter().filter_map(|s| s.quorum_port()).collect();
    let msgs: Vec<&Value> = out
        .messages
        .iter()
        .filter(|m| {
            s(m, "proto") == "zab"
                && (zab_ports.contains(&port_of(s(m, "src")))
                    || zab_ports.contains(&port_of(s(m, "dst"))))
        })
        .collect();
    let reconfigs: Vec<&&Value> = msgs
        .iter()
        .filter(|m| s(m, "type") == "Proposal" && s(m, "txn_op") == "reconfig")
        .collect();
    let sizes: BTreeSet<usize> = reconfigs
        .iter()
        .filter_map(|m| m["config_servers"].as_array().map(Vec::len))
        .collect();
    let ctx = format!(
        "{} quorum messages; reconfig proposals {reconfigs:?}\n{}",
        msgs.len(),
        tail(&out.stderr, 10)
    );
    // Removing leaves 2 servers, adding back makes 3 again.
    assert_eq!(sizes, BTreeSet::from([2, 3]), "{ctx}");
    for m in &reconfigs {
        assert_eq!(s(m, "path"), "/zookeeper/config", "{ctx}");
        assert!(m["config_version"].is_i64(), "{ctx}");
    }
    let activations: Vec<&&Value> = msgs
        .iter()
        .filter(|m| s(m, "type") == "CommitAndActivate")
        .collect();
    assert!(activations.len() >= 2, "{ctx}");
    for m in &activations {
        assert_eq!(
            m["designated_leader"].as_i64(),
            Some(i64::from(leader)),
            "{ctx}"
        );
        // Each activation commits a reconfig proposal's zxid.
        assert!(
            reconfigs.iter().any(|p| p["zxid"] == m["zxid"]),
            "{m}\n{ctx}"
        );
    }
}
