//! Smoke test of the ensemble harness (support::ZkEnsemble): three
//! participants on free ports elect a leader, serve a workload through a
//! follower, survive the leader's crash and take the old leader back.
//! Does not need the zkscope binary.

mod support;

use std::time::Duration;
use support::*;

#[test]
fn ensemble_of_three_elects_and_recovers() {
    let mut ens = ZkEnsemble::start(3, ZkOpts::new().standalone_enabled(false));
    let leader = ens.wait_leader(Duration::from_secs(60));
    // One leader and two followers (polled: one `srvr` can time out on a loaded machine).
    let mut modes: Vec<Option<String>> = Vec::new();
    let formed = wait_for(Duration::from_secs(60), || {
        modes = ens.servers.iter().map(|s| s.mode()).collect();
        let count = |m: &str| modes.iter().filter(|x| x.as_deref() == Some(m)).count();
        (count("leader") == 1 && count("follower") == 2).then_some(())
    });
    assert!(formed.is_some(), "modes: {modes:?}");
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let port = ens.server(follower).client_port();
    let all_ports = ens.client_ports();
    assert_eq!(all_ports.len(), 3);
    assert!(ens
        .servers
        .iter()
        .all(|s| s.quorum_port().is_some() && s.election_port().is_some()));

    let m = kazoo(
        "crud.py",
        &["127.0.0.1", &port.to_string(), "--prefix", "/ens"],
    );
    assert!(m["ops"].as_array().is_some_and(|o| o.len() > 10), "{m}");

    ens.kill(leader);
    let new_leader = wait_for(Duration::from_secs(60), || {
        ens.leader_id().filter(|&id| id != leader)
    })
    .expect("no new leader after killing the old one");
    assert_ne!(new_leader, leader);
    ens.start_member(leader);
    let rejoined = wait_for(Duration::from_secs(60), || {
        ens.server(leader).mode().filter(|m| m == "follower")
    });
    assert!(rejoined.is_some(), "old leader did not rejoin as follower");
    let m = kazoo(
        "crud.py",
        &[
            "127.0.0.1",
            &ens.server(leader).client_port().to_string(),
            "--prefix",
            "/ens2",
        ],
    );
    assert!(m["session"].as_str().is_some_and(|s| s.starts_with("0x")));
}
