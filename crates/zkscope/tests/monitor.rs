//! `zkscope monitor` against real components: Apache ZooKeeper 3.8 (Debian's package), a real
//! SMTP server (python3-aiosmtpd: plain, STARTTLS+AUTH, and one that refuses), a real
//! Alertmanager (prometheus-alertmanager) and a local HTTP server for the webhook and Slack.
//!
//! Failover and ZooKeeper restarts are in `monitor_cluster.rs`.

mod monitor_support;
mod support;

use monitor_support::*;
use serde_json::Value;
use std::fs;
use std::time::Duration;
use support::{free_port, run_with_timeout, TempDir, ZkOpts, ZkServer};

fn check_config(text: &str) -> (i32, String, String) {
    let dir = TempDir::new("mcfg");
    let p = dir.join("monitor.yaml");
    fs::write(&p, text).unwrap();
    let mut cmd = std::process::Command::new(support::zkscope_bin());
    cmd.args(["monitor", "--check-config", "-f"]).arg(&p);
    let out = run_with_timeout(cmd, None, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&*p.to_string_lossy(), "F");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).replace(&*p.to_string_lossy(), "F"),
        stderr,
    )
}

#[test]
fn check_config_accepts_zk_monitor_yaml_and_rejects_broken_files() {
    // zk_monitor's sample config, as is (hipchat is warned about: the service is gone)
    let (code, out, err) = check_config(
        "/services/path/to/service:\n  alerter: {email: [on-call-team@yourcompany.com], hipchat: {room: Engineering, token: crazytoken}}\n  cancel_timeout: 10\n  children: 1\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "F: OK: 1 path(s), 1 alert target(s) (email), 1 warning(s)"
    );
    assert!(err.contains("warning: F:2:"), "{err}");
    assert!(err.contains("HipChat"), "{err}");

    // a wrong value: file, line, column and reason; exit code 2
    let (code, _, err) = check_config("/a:\n  children: 1\n/b:\n  children: lots\n");
    assert_eq!(code, 2);
    assert!(
        err.contains("error: F:4:13: /b: children must be a non-negative integer, got \"lots\""),
        "{err}"
    );

    // malformed YAML
    let (code, _, err) = check_config("/a: {children: 1\n/b: 2\n");
    assert_eq!(code, 2);
    assert!(
        err.contains("error: F:") && err.contains("invalid YAML"),
        "{err}"
    );

    // unknown keys are warnings (with a suggestion), not errors
    let (code, out, err) = check_config("/a:\n  children: 1\n  cancel_timout: 5\n");
    assert_eq!(code, 0, "{err}");
    // (the other warning: /a has no alerter)
    assert!(out.contains("2 warning(s)"), "{out}");
    assert!(
        err.contains("warning: F:3:3: unknown key `cancel_timout` in /a, ignored (did you mean `cancel_timeout`?)"),
        "{err}"
    );

    // --strict: a misspelt key is an error (such a check could never alert)
    let typo = "/a:\n  childern: 1\n";
    let (code, _, _) = check_config(typo);
    assert_eq!(code, 0);
    let dir = TempDir::new("mcfg-strict");
    let p = dir.join("monitor.yaml");
    fs::write(&p, typo).unwrap();
    let mut cmd = std::process::Command::new(support::zkscope_bin());
    cmd.args(["monitor", "--check-config", "--strict", "-f"])
        .arg(&p);
    let out = run_with_timeout(cmd, None, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error: ")
            && err.contains(":2:3: unknown key `childern` in /a (did you mean `children`?)"),
        "{err}"
    );

    // ${ENV}: an unset variable is an error at its line
    let (code, _, err) =
        check_config("/a:\n  children: 1\n  alerter:\n    webhook: '${ZKSCOPE_TEST_UNSET_HOOK}'\n");
    assert_eq!(code, 2);
    assert!(
        err.contains("F:4:") && err.contains("ZKSCOPE_TEST_UNSET_HOOK is not set"),
        "{err}"
    );

    // a missing file
    let mut cmd = std::process::Command::new(support::zkscope_bin());
    cmd.args([
        "monitor",
        "--check-config",
        "-f",
        "/nonexistent/monitor.yaml",
    ]);
    let out = run_with_timeout(cmd, None, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config"));
}

/// Short flags mean one thing in every command: monitor's primary names are long, under
/// headings; zk_monitor's spellings (`-f/--file`, `-c`, `-p/--port`, `-l`, `-s`) still work.
#[test]
fn monitor_flags_are_long_and_zk_monitor_spellings_still_work() {
    let mut cmd = std::process::Command::new(support::zkscope_bin());
    cmd.args(["monitor", "--help"]);
    let out = run_with_timeout(cmd, None, Duration::from_secs(30));
    let help = String::from_utf8_lossy(&out.stdout);
    for want in [
        "--config <FILE>",
        "--http-port <HTTP_PORT>",
        "--cluster-name <CLUSTER_NAME>",
        "ZooKeeper:",
        "Cluster:",
        "HTTP:",
        "Logging:",
        "-z, --zookeeper",
    ] {
        assert!(help.contains(want), "{want:?} missing:\n{help}");
    }
    for clash in ["-f,", "-c,", "-p,", "--port <", "--file"] {
        assert!(!help.contains(clash), "{clash:?} shown:\n{help}");
    }
    let dir = TempDir::new("mflags");
    let p = dir.join("m.yaml");
    fs::write(&p, "/a: {children: 1}\n").unwrap();
    for (flag, rest) in [
        ("--config", &["--cluster-name", "x", "--http-port", "1"][..]),
        (
            "-f",
            &["-c", "x", "-p", "1", "-l", "warn", "-s", "local0"][..],
        ),
        ("--file", &["--cluster_name", "x", "--port", "1"][..]),
    ] {
        let mut cmd = std::process::Command::new(support::zkscope_bin());
        cmd.args(["monitor", "--check-config", flag])
            .arg(&p)
            .args(rest);
        let out = run_with_timeout(cmd, None, Duration::from_secs(30));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{flag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Closed stdout or stderr (`… 2>&1 | true`): the usual exit code, no panic (101).
#[test]
fn monitor_tolerates_closed_pipes() {
    let dir = TempDir::new("mpipe");
    let good = dir.join("m.yaml");
    fs::write(&good, "/a: {children: 1}\n").unwrap();
    for (config, code) in [
        (good.as_path(), 0),
        (std::path::Path::new("/nonexistent/m.yaml"), 2),
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = std::process::Command::new(support::zkscope_bin());
        cmd.args(["monitor", "--check-config", "--config"])
            .arg(config)
            .stdout(writer.try_clone().unwrap())
            .stderr(writer);
        let status = cmd.status().unwrap();
        assert_eq!(status.code(), Some(code), "{config:?}");
    }
}

/// ZooKeeper unreachable: the agent keeps retrying, /health says so (503); once a server
/// comes up on that port, the agent connects and /health turns 200.
#[test]
fn unreachable_zookeeper_is_retried_and_reported() {
    let dir = TempDir::new("m-unreach");
    let cfg = dir.join("m.yaml");
    fs::write(&cfg, "/present: {exists: true}\n").unwrap();
    let port = free_port();
    let zk_addr = format!("127.0.0.1:{port}");
    // zk_monitor's --syslog FACILITY: RFC 3164 datagrams (local0 + info = <134>); the first
    // is sent when the agent listens (a debug binary on a loaded machine may take a while)
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let syslog_addr = syslog.local_addr().unwrap().to_string();
    let agent = Agent::start(
        "solo",
        &cfg,
        &zk_addr,
        &[
            "--session-timeout",
            "4s",
            "-s",
            "local0",
            "--syslog-address",
            &syslog_addr,
        ],
    );
    let mut buf = [0u8; 2048];
    let n = syslog.recv(&mut buf).expect("a syslog datagram");
    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(line.starts_with("<134>zkscope-monitor["), "{line}");
    assert!(line.contains("listening on http://127.0.0.1:"), "{line}");
    eventually(
        Duration::from_secs(30),
        "/health = 503 after a failed attempt",
        &[&agent],
        || {
            agent.health().is_some_and(|(c, h)| {
                c == 503
                    && h["reason"]
                        .as_str()
                        .unwrap_or("")
                        .contains("cannot connect")
            })
        },
    );
    let (_, h) = agent.health().unwrap();
    assert_eq!(h["status"], "unhealthy");
    assert!(
        h["reason"]
            .as_str()
            .unwrap_or("")
            .contains("cannot connect"),
        "{h}"
    );
    let st = agent.status().unwrap();
    assert_eq!(st["zookeeper"]["connected"], false);
    assert_eq!(st["monitor"]["compliance"]["/present"]["state"], "Unknown");

    let _zk = ZkServer::standalone(ZkOpts::new().client_port(port));
    agent.wait_healthy(Duration::from_secs(30));
    // (the 4 s session may be renewed on a loaded machine: the gauge is read until it says so)
    eventually(
        Duration::from_secs(30),
        "/present checked, connected in /metrics",
        &[&agent],
        || {
            agent.status().is_some_and(|s| {
                s["monitor"]["compliance"]["/present"]["message"] == "node does not exist"
            }) && agent
                .metrics()
                .contains("zkscope_monitor_zookeeper_connected 1")
        },
    );
}

/// A refused connection and a name that does not resolve are named as such on /health and in
/// the log, not as a "timeout" at the end of the session timeout; rules not checked yet are
/// -1 in /metrics, as documented.
#[test]
fn unreachable_zookeeper_cause_and_unknown_rules() {
    let dir = TempDir::new("m-cause");
    let cfg = dir.join("m.yaml");
    fs::write(&cfg, "/present: {exists: true}\n").unwrap();
    // a port nobody listens on (a session timeout longer than every wait below)
    let refused = format!("127.0.0.1:{}", free_port());
    for (zk, cause) in [
        (refused.as_str(), "Connection refused"),
        ("nosuch.invalid:2181", "cannot resolve nosuch.invalid"),
    ] {
        let agent = Agent::start("cause", &cfg, zk, &["--session-timeout", "10m"]);
        eventually(
            Duration::from_secs(30),
            &format!("/health names the cause ({cause})"),
            &[&agent],
            || {
                agent.health().is_some_and(|(c, h)| {
                    c == 503 && h["reason"].as_str().unwrap_or("").contains(cause)
                })
            },
        );
        let log = agent.log();
        assert!(log.contains(cause), "{log}");
        assert!(!log.contains(": timeout"), "{log}");
        let m = agent.metrics();
        assert!(
            m.contains("zkscope_monitor_rule_compliant{rule=\"/present\",path=\"/present\"} -1"),
            "{m}"
        );
        assert!(m.contains("zkscope_monitor_zookeeper_connected 0"), "{m}");
    }
}

/// contrib/'s systemd unit: valid (`systemd-analyze verify`, its commands exist and parse) and
/// hardened (`systemd-analyze security` exposure at most 2 of 10).
#[test]
fn systemd_unit_is_valid_and_hardened() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../contrib/monitor/zkscope-monitor.service");
    let unit = fs::read_to_string(&src).unwrap();
    let dir = TempDir::new("m-unit");
    let bin = support::zkscope_bin();
    let p = dir.join("zkscope-monitor.service");
    fs::write(
        &p,
        unit.replace("/usr/local/bin/zkscope", &bin.to_string_lossy()),
    )
    .unwrap();
    for args in [
        vec!["verify".to_string()],
        vec![
            "security".to_string(),
            "--offline=yes".to_string(),
            "--threshold=20".to_string(),
        ],
    ] {
        let mut cmd = std::process::Command::new("systemd-analyze");
        cmd.args(&args).arg(&p);
        let out = run_with_timeout(cmd, None, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "systemd-analyze {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // the flags the unit passes exist
    let cfg = dir.join("m.yaml");
    fs::write(&cfg, "/a: {children: 1}\n").unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStartPre="))
        .unwrap()
        .replace("/etc/zkscope/monitor.yaml", &cfg.to_string_lossy());
    let mut words = exec.split_whitespace();
    words.next();
    let mut cmd = std::process::Command::new(&bin);
    cmd.args(words);
    let out = run_with_timeout(cmd, None, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{exec}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn by_path<'a>(hits: &'a [Hit], path: &str) -> Vec<&'a Hit> {
    hits.iter().filter(|h| h.body["path"] == path).collect()
}

fn kinds(hits: &[&Hit]) -> Vec<String> {
    hits.iter()
        .map(|h| h.body["kind"].as_str().unwrap_or("?").to_string())
        .collect()
}

fn subjects(mails: &[Value], to: &str) -> Vec<String> {
    mails
        .iter()
        .filter(|m| {
            m["to"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == to))
        })
        .map(|m| {
            m["data"]
                .as_str()
                .unwrap_or("")
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// One agent, every alerter, real receivers: a rule out of spec gives exactly one FIRING and
/// one RESOLVED notification on every channel; a violation cured within cancel_timeout gives
/// none; a webhook answering 500 is retried; an SMTP server that refuses is retried, counted,
/// and does not hold up the other alerters; STARTTLS + AUTH with a password from `${ENV}`.
#[test]
fn alerts_reach_real_receivers_once_per_incident() {
    let zk = ZkServer::standalone(ZkOpts::new());
    let hook = Hook::start();
    let smtp = Smtpd::start("accept");
    let refusing = Smtpd::start("refuse");
    let tls = Smtpd::start("tls");
    let am = Alertmanager::start(&hook.url("/am"));
    let dir = TempDir::new("m-e2e");
    let cfg = dir.join("m.yaml");
    fs::write(
        &cfg,
        format!(
            r##"
monitor:
  check_interval: 5s
  retry: {{attempts: 3, initial_backoff: 200ms, max_backoff: 500ms}}
smtp: {{host: 127.0.0.1, port: {smtp}, from: zk-monitor@example.com}}
routes:
  all:
    email: [oncall@example.com]
    slack:
      - {{webhook: "{slack}", channel: "#ops"}}
      - {{token: xoxb-test, channel: "#zk", api_url: "{slackapi}"}}
    webhook: {{url: "{webhook}", headers: {{X-Token: t0k}}}}
    alertmanager: {{url: "{am}", resend_interval: 2s, labels: {{env: test}}}}
  refused:
    email: {{to: [ops@example.com], smtp: {{port: {refused}}}}}
/svc/a:
  children: 1
  alerter: {{routes: [all, refused]}}
/svc/b:
  children: 1
  cancel_timeout: 60s
  alerter: {{route: all}}
/svc/tls:
  exists: true
  alerter:
    email:
      to: [tls@example.com]
      smtp: {{host: localhost, port: {tls}, starttls: required, username: alerts,
             password: "${{ZKSCOPE_TEST_SMTP_PASS}}", ca_file: "{ca}"}}
"##,
            smtp = smtp.port,
            slack = hook.url("/slack"),
            slackapi = hook.url("/slackapi"),
            webhook = hook.url("/webhook"),
            am = am.url(),
            refused = refusing.port,
            tls = tls.port,
            ca = tls.cert().display(),
        ),
    )
    .unwrap();
    mkdirs(&zk.addr(), &["/svc"]);
    hook.fail_next("/webhook", 1);
    // nothing here needs a short session; a spurious expiry on a loaded machine would make the
    // agent's next session re-send what was in flight (delivery is at least once), and every
    // count below is exact
    let agent = Agent::start_env(
        "e2e",
        &cfg,
        &zk.addr(),
        &["--session-timeout", "20s"],
        &[("ZKSCOPE_TEST_SMTP_PASS", "s3cret")],
    );
    agent.wait_healthy(Duration::from_secs(30));
    // /svc/b is PENDING (cancel_timeout 60 s): cure it well within
    eventually(Duration::from_secs(30), "/svc/b pending", &[&agent], || {
        agent.alert_state("/svc/b").as_deref() == Some("PENDING")
    });
    mkdirs(&zk.addr(), &["/svc/b/x"]);
    eventually(
        Duration::from_secs(30),
        "/svc/b back to OK",
        &[&agent],
        || agent.alert_state("/svc/b").as_deref() == Some("OK"),
    );

    // /svc/a fired at once (cancel_timeout 0) on every channel
    eventually(
        Duration::from_secs(30),
        "firing everywhere",
        &[&agent],
        || {
            by_path(&hook.hits("/webhook"), "/svc/a").len() == 1
                && hook.hits("/slack").iter().any(|h| {
                    h.body["text"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("(:exclamation:) /svc/a is in Error"))
                })
                && subjects(&smtp.mails(), "oncall@example.com").len() == 1
                && am.alerts().iter().any(|a| a["labels"]["path"] == "/svc/a")
                && !subjects(&tls.mails(), "tls@example.com").is_empty()
                // Alertmanager notifies after group_wait (a resolve before it would be silent)
                && hook.hits("/am").iter().any(|h| {
                    h.body["status"] == "firing" && h.body["commonLabels"]["path"] == "/svc/a"
                })
        },
    );
    let st = agent.status().unwrap();
    assert_eq!(
        st["monitor"]["compliance"]["/svc/a"]["alert_state"],
        "FIRING"
    );
    assert_eq!(
        st["monitor"]["compliance"]["/svc/a"]["message"],
        "0 children is less than minimum 1"
    );
    assert_eq!(st["dispatcher"]["alerting"], true);
    assert_eq!(st["cluster"]["leader"], "e2e");
    assert_eq!(st["cluster"]["agents"], serde_json::json!(["e2e"]));
    let active = am.alerts();
    let a = active
        .iter()
        .find(|a| a["labels"]["path"] == "/svc/a")
        .unwrap();
    assert_eq!(a["labels"]["alertname"], "ZnodeOutOfSpec");
    assert_eq!(a["labels"]["env"], "test");
    assert_eq!(a["status"]["state"], "active");
    let webhook_hits = hook.hits("/webhook");
    let wh = by_path(&webhook_hits, "/svc/a")[0];
    assert_eq!(wh.body["status"], "firing");
    assert!(wh.headers.to_ascii_lowercase().contains("x-token: t0k"));
    // the STARTTLS server got the mail over TLS, authenticated with the ${ENV} password
    let tm = &tls.mails()[0];
    assert_eq!(tm["tls"], true);
    assert_eq!(tm["auth"], "alerts");

    // the refusing SMTP server: 3 attempts, counted, given up; the others were not held up
    eventually(
        Duration::from_secs(30),
        "refused email given up",
        &[&agent],
        || {
            metric(
            &agent.metrics(),
            "zkscope_monitor_alerts_failed_total{alerter=\"email\",target=\"route:refused:email\",kind=\"firing\"}",
        ) == Some(1.0)
        },
    );
    let m = agent.metrics();
    assert_eq!(
        metric(
            &m,
            "zkscope_monitor_send_errors_total{alerter=\"email\",target=\"route:refused:email\"}"
        ),
        Some(3.0),
        "{m}"
    );
    // the webhook's first answer was 500: retried once, delivered once
    assert_eq!(
        metric(
            &m,
            "zkscope_monitor_send_errors_total{alerter=\"webhook\",target=\"route:all:webhook\"}"
        ),
        Some(1.0),
        "{m}"
    );
    assert!(
        m.contains("zkscope_monitor_rule_compliant{rule=\"/svc/a\",path=\"/svc/a\"} 0"),
        "{m}"
    );
    assert!(m.contains("zkscope_monitor_leader 1"), "{m}");

    // recovery
    mkdirs(&zk.addr(), &["/svc/a/x", "/svc/tls"]);
    let t = Duration::from_secs(30);
    eventually(t, "webhook resolved", &[&agent], || {
        by_path(&hook.hits("/webhook"), "/svc/a").len() == 2
    });
    eventually(t, "slack resolved", &[&agent], || {
        hook.hits("/slack").len() == 2 && hook.hits("/slackapi").len() == 2
    });
    eventually(t, "email resolved", &[&agent], || {
        subjects(&smtp.mails(), "oncall@example.com").len() == 2
    });
    eventually(t, "TLS email resolved", &[&agent], || {
        subjects(&tls.mails(), "tls@example.com").len() == 2
    });
    eventually(
        t,
        "alert no longer active in Alertmanager",
        &[&agent],
        || !am.alerts().iter().any(|a| a["labels"]["path"] == "/svc/a"),
    );
    eventually(t, "Alertmanager notified the resolve", &[&agent], || {
        hook.hits("/am")
            .iter()
            .any(|h| h.body["status"] == "resolved" && h.body["commonLabels"]["path"] == "/svc/a")
    });
    // Alertmanager re-posts every 2 s while firing; give any duplicate time to show up
    std::thread::sleep(Duration::from_secs(3));

    let webhook = hook.hits("/webhook");
    assert_eq!(
        kinds(&by_path(&webhook, "/svc/a")),
        vec!["firing", "resolved"],
        "webhook: {webhook:?}"
    );
    assert!(
        by_path(&webhook, "/svc/b").is_empty(),
        "cured within cancel_timeout: {webhook:?}"
    );
    let slack: Vec<String> = hook
        .hits("/slack")
        .iter()
        .map(|h| h.body["text"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(slack.len(), 2, "{slack:?}");
    assert_eq!(slack[1], "(:+1:) /svc/a is in OK - All checks pass.");
    // zk_monitor's Slack config (token + channel): chat.postMessage with the bot token
    let api = hook.hits("/slackapi");
    assert_eq!(api.len(), 2, "{api:?}");
    assert_eq!(api[0].body["channel"], "#zk");
    assert!(api[0]
        .headers
        .to_ascii_lowercase()
        .contains("authorization: bearer xoxb-test"));
    assert_eq!(
        subjects(&smtp.mails(), "oncall@example.com"),
        vec![
            "[FIRING] /svc/a: 0 children is less than minimum 1",
            "[RESOLVED] /svc/a is back in spec"
        ]
    );
    let resolved_mail = smtp
        .mails()
        .iter()
        .filter_map(|m| m["data"].as_str().map(String::from))
        .find(|d| d.contains("[RESOLVED]"))
        .unwrap();
    assert!(resolved_mail.contains("In-Reply-To: "), "{resolved_mail}");
    // Alertmanager notified its own receiver once firing, once resolved
    let am_hits: Vec<String> = hook
        .hits("/am")
        .iter()
        .filter(|h| h.body["commonLabels"]["path"] == "/svc/a")
        .map(|h| h.body["status"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(am_hits, vec!["firing", "resolved"], "{am_hits:?}");
    let st = agent.status().unwrap();
    assert_eq!(
        st["monitor"]["compliance"]["/svc/a"]["alert_state"],
        "RESOLVED"
    );
    assert_eq!(st["monitor"]["compliance"]["/svc/a"]["state"], "OK");
    // resolved incidents are not kept in ZooKeeper (the record goes once every target,
    // the refusing SMTP server's retries included, is settled)
    eventually(
        t,
        "the resolved incident's record removed",
        &[&agent],
        || children(&zk.addr(), "/zk_monitor/zkmonitor/incidents").is_some_and(|c| c.is_empty()),
    );
}

/// `--zookeeper-user/--zookeeper-pass` are used (zk_monitor parsed and ignored them): a node
/// readable only with the digest credentials is checked by the agent that has them, and is
/// reported unreadable by one without.
#[test]
fn digest_credentials_are_used() {
    let zk = ZkServer::standalone(ZkOpts::new());
    zk_auth_create(&zk.addr(), "/secret", b"ok");
    let dir = TempDir::new("m-auth");
    let cfg = dir.join("m.yaml");
    fs::write(&cfg, "/secret: {data: '^ok$'}\n").unwrap();
    let with = Agent::start(
        "with-creds",
        &cfg,
        &zk.addr(),
        &[
            "--zookeeper-user",
            "alerts",
            "--zookeeper-pass",
            "pw",
            "-c",
            "authed",
        ],
    );
    // the authenticated agent creates the shared prefix first: it must stay open to agents
    // with other credentials (a creator-only /zk_monitor would lock them out of their cluster)
    eventually(
        Duration::from_secs(30),
        "the authenticated agent leads its cluster",
        &[&with],
        || {
            with.status()
                .is_some_and(|s| s["cluster"]["is_leader"] == true)
        },
    );
    let without = Agent::start("no-creds", &cfg, &zk.addr(), &["-c", "anon"]);
    eventually(
        Duration::from_secs(30),
        "both checked /secret and lead their clusters",
        &[&with, &without],
        || {
            let s1 = with
                .status()
                .map(|s| s["monitor"]["compliance"]["/secret"]["state"].clone());
            let Some(s2) = without.status() else {
                return false;
            };
            let m = s2["monitor"]["compliance"]["/secret"]["message"].clone();
            s1 == Some(Value::from("OK"))
                && m.as_str().unwrap_or("").contains("not authorized")
                && s2["cluster"]["is_leader"] == true
        },
    );
    // the authenticated agent's cluster nodes carry its credentials' ACL
    let acl_scheme = zk_acl_scheme(&zk.addr(), "/zk_monitor/authed/agents");
    assert_eq!(acl_scheme.as_deref(), Some("digest"));
    // ... and the shared prefix above the clusters stays open
    let prefix_scheme = zk_acl_scheme(&zk.addr(), "/zk_monitor");
    assert_eq!(prefix_scheme.as_deref(), Some("world"));
}

/// The scheme of the first ACL entry of `path`, read authenticated (None when it cannot be
/// read).
fn zk_acl_scheme(connect: &str, path: &str) -> Option<String> {
    let p = path.to_string();
    zk_authed(connect, |c| async move {
        c.get_acl(&p)
            .await
            .map(|(acls, _)| acls.first().map(|a| a.scheme().to_string()))
            .ok()
            .flatten()
    })
}

/// Like `monitor_support::zk`, authenticated as alerts:pw.
fn zk_authed<T, F, Fut>(connect: &str, f: F) -> T
where
    F: FnOnce(zookeeper_client::Client) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = zookeeper_client::Client::connector()
            .with_auth("digest", b"alerts:pw")
            .connect(connect)
            .await
            .expect("connect with auth");
        f(c).await
    })
}

fn zk_auth_create(connect: &str, path: &str, data: &[u8]) {
    let (p, d) = (path.to_string(), data.to_vec());
    zk_authed(connect, |c| async move {
        c.create(
            &p,
            &d,
            &zookeeper_client::CreateMode::Persistent
                .with_acls(zookeeper_client::Acls::creator_all()),
        )
        .await
        .expect("create /secret");
    });
}

/// One-shot watches (as against servers before 3.6), glob paths expanded as nodes appear, a
/// chroot in the connect string, and a session that expires (the agent is stopped longer than
/// the session timeout): the agent opens a new session, re-checks, carries on its firing
/// incident without re-alerting and still sends the resolve. The periodic re-check is 60 s:
/// every change here is seen through watches.
#[test]
fn oneshot_watches_globs_chroot_and_session_expiry() {
    let zk = ZkServer::standalone(ZkOpts::new());
    let hook = Hook::start();
    mkdirs(&zk.addr(), &["/chroot/svc"]);
    let dir = TempDir::new("m-expiry");
    let cfg = dir.join("m.yaml");
    fs::write(
        &cfg,
        format!(
            "monitor: {{watch_mode: oneshot, check_interval: 60s}}\n\
             defaults: {{alerter: {{webhook: \"{}\"}}}}\n\
             /svc/*/members: {{children: 1}}\n\
             /svc/single: {{exists: true}}\n",
            hook.url("/webhook")
        ),
    )
    .unwrap();
    let connect = format!("{}/chroot", zk.addr());
    // the session must outlive every stall of a loaded machine until the test stops the agent
    // on purpose (a spurious expiry would be one session too many)
    let agent = Agent::start("expiry", &cfg, &connect, &["--session-timeout", "10s"]);
    agent.wait_healthy(Duration::from_secs(30));
    let hits_for = |p: &str| kinds(&by_path(&hook.hits("/webhook"), p));
    eventually(
        Duration::from_secs(30),
        "/svc/single fires",
        &[&agent],
        || hits_for("/svc/single") == ["firing"],
    );
    let st = agent.status().unwrap();
    assert_eq!(st["zookeeper"]["watch_mode"], "oneshot");
    let session = st["zookeeper"]["session_id"].clone();

    // a new node matching the glob: found through the child watch on /svc
    mkdirs(&zk.addr(), &["/chroot/svc/x/members"]);
    eventually(
        Duration::from_secs(30),
        "/svc/x/members fires",
        &[&agent],
        || hits_for("/svc/x/members") == ["firing"],
    );
    mkdirs(&zk.addr(), &["/chroot/svc/x/members/m1"]);
    eventually(
        Duration::from_secs(30),
        "/svc/x/members resolves",
        &[&agent],
        || hits_for("/svc/x/members") == ["firing", "resolved"],
    );

    // stop the agent past its session timeout: the session expires. Not before the agent has
    // recorded in ZooKeeper that its notifications were delivered: delivery is at least once,
    // the next leader (the agent's next session) re-sends what is still in an outbox (the hook
    // got the resolve a moment before the agent hears back and writes it down).
    let agents_dir = "/chroot/zk_monitor/zkmonitor/agents";
    eventually(
        Duration::from_secs(30),
        "the agent's node, its deliveries recorded",
        &[&agent],
        || {
            children(&zk.addr(), agents_dir).is_some_and(|a| a == ["expiry"])
                && incidents_settled(
                    &zk.addr(),
                    "/chroot/zk_monitor/zkmonitor/incidents",
                    &["/svc/single"],
                )
        },
    );
    let sessions = metric(&agent.metrics(), "zkscope_monitor_zookeeper_sessions_total")
        .expect("sessions_total");
    agent.signal("STOP");
    // the server expires the session (its ephemeral agent node goes): only then resume (an
    // unreadable list is not an empty one)
    let expired = support::wait_for(Duration::from_secs(60), || {
        children(&zk.addr(), agents_dir)
            .is_some_and(|a| a.is_empty())
            .then_some(())
    });
    agent.signal("CONT");
    assert!(
        expired.is_some(),
        "the stopped agent's session never expired"
    );
    eventually(Duration::from_secs(30), "a new session", &[&agent], || {
        agent.status().is_some_and(|s| {
            s["zookeeper"]["connected"] == true
                && s["zookeeper"]["session_id"] != session
                && s["cluster"]["is_leader"] == true
        })
    });
    assert_eq!(
        metric(&agent.metrics(), "zkscope_monitor_zookeeper_sessions_total"),
        Some(sessions + 1.0)
    );
    std::thread::sleep(Duration::from_secs(2));
    // the firing incident was carried on, not re-alerted
    assert_eq!(hits_for("/svc/single"), ["firing"]);
    assert_eq!(agent.alert_state("/svc/single").as_deref(), Some("FIRING"));
    // watches work in the new session
    mkdirs(&zk.addr(), &["/chroot/svc/single"]);
    eventually(
        Duration::from_secs(30),
        "/svc/single resolves",
        &[&agent],
        || hits_for("/svc/single") == ["firing", "resolved"],
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(hits_for("/svc/single"), ["firing", "resolved"]);
    assert_eq!(hits_for("/svc/x/members"), ["firing", "resolved"]);
    // the cluster's nodes live under the chroot
    assert!(children(&zk.addr(), "/chroot/zk_monitor/zkmonitor")
        .is_some_and(|c| c.contains(&"agents".to_string())));
}

/// `--zookeeper-tls`: the agent reaches ZooKeeper on its secureClientPort (Netty, PEM
/// keystore), verifying the server's certificate with `--zookeeper-ca`.
#[test]
fn zookeeper_tls() {
    let certs = TempDir::new("zk-tls");
    let (cert, key) = self_signed(&certs);
    let keystore = certs.join("server.pem");
    let pem = fs::read_to_string(&key).unwrap() + &fs::read_to_string(&cert).unwrap();
    fs::write(&keystore, pem).unwrap();
    let secure_port = free_port();
    // the Netty server needs all of netty on the boot class path
    let opts = ZkOpts::new().netty_boot_classpath();
    let zk = ZkServer::standalone(
        opts.cfg(&format!("secureClientPort={secure_port}"))
            .cfg("serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory")
            .cfg(&format!("ssl.keyStore.location={}", keystore.display()))
            .cfg("ssl.keyStore.type=PEM")
            .cfg(&format!(
                "ssl.trustStore.location={}",
                certs.join("ca.pem").display()
            ))
            .cfg("ssl.trustStore.type=PEM")
            .cfg("ssl.clientAuth=none"),
    );
    mkdirs(&zk.addr(), &["/tls/ok"]);
    let dir = TempDir::new("m-tls");
    let cfg = dir.join("m.yaml");
    fs::write(&cfg, "/tls: {children: 1}\n").unwrap();
    let ca = certs.join("ca.pem");
    let agent = Agent::start(
        "tls",
        &cfg,
        &format!("127.0.0.1:{secure_port}"),
        &["--zookeeper-tls", "--zookeeper-ca", ca.to_str().unwrap()],
    );
    agent.wait_healthy(Duration::from_secs(30));
    eventually(
        Duration::from_secs(30),
        "/tls checked over TLS",
        &[&agent],
        || {
            agent
                .status()
                .is_some_and(|s| s["monitor"]["compliance"]["/tls"]["state"] == "OK")
        },
    );
    // without the CA the server's certificate is not trusted: no session
    let untrusted = Agent::start(
        "untrusted",
        &cfg,
        &format!("127.0.0.1:{secure_port}"),
        &["--zookeeper-tls", "-c", "other"],
    );
    eventually(
        Duration::from_secs(30),
        "the untrusted agent reports its failed TLS connection",
        &[&untrusted],
        || {
            untrusted.health().is_some_and(|(code, body)| {
                code == 503
                    && body["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("cannot connect (TLS)"))
            })
        },
    );
    assert!(!untrusted
        .status()
        .is_some_and(|s| s["zookeeper"]["connected"] == true));
}

/// `repeat_interval` reminders and flap damping, end to end: a firing incident is re-notified
/// while it lasts (same incident) and resolved once; a node that flaps faster than its
/// `cancel_timeout` fires once (damped: without it every short spell would be cancelled and
/// nothing would ever fire) and resolves once, only after its changes age out of the window.
#[test]
fn repeat_reminders_and_flap_damping() {
    let zk = ZkServer::standalone(ZkOpts::new());
    let hook = Hook::start();
    mkdirs(&zk.addr(), &["/rep", "/flap"]);
    let dir = TempDir::new("m-repeat");
    let cfg = dir.join("m.yaml");
    fs::write(
        &cfg,
        format!(
            "defaults: {{alerter: {{webhook: \"{}\"}}}}\n\
             /rep: {{children: 1, repeat_interval: 2s}}\n\
             /flap: {{exists: true, cancel_timeout: 10s, flap: {{window: 20s, threshold: 4}}}}\n",
            hook.url("/webhook")
        ),
    )
    .unwrap();
    let agent = Agent::start("repeat", &cfg, &zk.addr(), &[]);
    agent.wait_healthy(Duration::from_secs(30));
    let hits_for = |p: &str| {
        by_path(&hook.hits("/webhook"), p)
            .into_iter()
            .cloned()
            .collect::<Vec<_>>()
    };

    // /rep has no child: it fires, then reminds every 2 s (a loaded test may look only after
    // a third reminder: "at least two")
    eventually(
        Duration::from_secs(30),
        "/rep fired and reminded twice",
        &[&agent],
        || {
            let k = kinds(&hits_for("/rep").iter().collect::<Vec<_>>());
            k.len() >= 3 && k[0] == "firing" && k[1..].iter().all(|x| x == "repeat")
        },
    );
    mkdirs(&zk.addr(), &["/rep/c"]);
    eventually(Duration::from_secs(30), "/rep resolved", &[&agent], || {
        hits_for("/rep")
            .last()
            .is_some_and(|h| h.body["kind"] == "resolved")
    });
    let rep = hits_for("/rep");
    let k = kinds(&rep.iter().collect::<Vec<_>>());
    assert_eq!(k.first().map(String::as_str), Some("firing"), "{k:?}");
    assert!(k[1..k.len() - 1].iter().all(|x| x == "repeat"), "{k:?}");
    let ids: std::collections::BTreeSet<String> = rep
        .iter()
        .map(|h| h.body["incident"]["id"].to_string())
        .collect();
    assert_eq!(ids.len(), 1, "one incident: {rep:?}");

    // /flap: each missing spell (about a second; a few on a loaded machine) is much shorter
    // than cancel_timeout (10 s): were the first one longer, the incident would fire and then
    // be resolved by the first good spell (not flapping yet), and fire again. The agent is
    // made to see every change before the next.
    let seen = |ok: bool| {
        eventually(
            Duration::from_secs(30),
            "the agent saw the change",
            &[&agent],
            || {
                agent
                    .status()
                    .is_some_and(|s| (s["monitor"]["compliance"]["/flap"]["state"] == "OK") == ok)
            },
        )
    };
    let flap_start = std::time::Instant::now();
    for _ in 0..4 {
        delete(&zk.addr(), "/flap");
        seen(false);
        std::thread::sleep(Duration::from_millis(300));
        mkdirs(&zk.addr(), &["/flap"]);
        seen(true);
        std::thread::sleep(Duration::from_millis(300));
    }
    delete(&zk.addr(), "/flap");
    seen(false);
    std::thread::sleep(Duration::from_millis(300));
    mkdirs(&zk.addr(), &["/flap"]);
    seen(true);
    let stable_since = std::time::Instant::now();
    eprintln!("5 flap cycles took {:?}", flap_start.elapsed());
    // damped: the pending incident (opened by the second violation: the first good spell came
    // before the 4th change and cancelled the first) was not cancelled by the good spells, so
    // it fires at cancel_timeout after that violation, while the node is in spec again
    eventually(Duration::from_secs(30), "/flap fired", &[&agent], || {
        !hits_for("/flap").is_empty()
    });
    // in spec, but still flapping: it stays firing (until the 4th-last change ages out of the
    // 20 s window, about 15 s after the last change)
    let st = agent.status().unwrap();
    assert_eq!(
        st["monitor"]["compliance"]["/flap"]["flapping"], true,
        "{st}"
    );
    assert_eq!(st["monitor"]["compliance"]["/flap"]["state"], "OK", "{st}");
    assert_eq!(
        agent.alert_state("/flap").as_deref(),
        Some("FIRING"),
        "{st}"
    );
    // resolved once, when the changes have aged out of the 20 s window
    eventually(Duration::from_secs(60), "/flap resolved", &[&agent], || {
        hits_for("/flap").len() >= 2
    });
    let waited = stable_since.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let flap = hits_for("/flap");
    assert_eq!(
        kinds(&flap.iter().collect::<Vec<_>>()),
        ["firing", "resolved"],
        "{flap:?}"
    );
    assert!(
        waited >= Duration::from_secs(3),
        "resolved while still flapping ({waited:?} after the last change)"
    );
}

/// A ZooKeeper restart within the session timeout: the agent reconnects with the same session
/// and re-adds its persistent watches (zookeeper-client 0.11 does not re-register them);
/// changes afterwards are seen through those watches (the periodic re-check is 10 minutes
/// away, it cannot be what sees them).
#[test]
fn persistent_watches_survive_a_reconnect() {
    let mut zk = ZkServer::standalone(ZkOpts::new());
    mkdirs(&zk.addr(), &["/w"]);
    let dir = TempDir::new("m-reconnect");
    let cfg = dir.join("m.yaml");
    fs::write(
        &cfg,
        "monitor: {check_interval: 10m}\n/w: {children: 1}\n/x: {exists: true}\n",
    )
    .unwrap();
    // a session that outlives a restart of the JVM on a loaded machine
    let agent = Agent::start("reconnect", &cfg, &zk.addr(), &["--session-timeout", "30s"]);
    agent.wait_healthy(Duration::from_secs(30));
    let checked = |s: &Value, p: &str| s["monitor"]["compliance"][p]["checked_at"].clone();
    let mut before = Value::Null;
    eventually(
        Duration::from_secs(30),
        "/w and /x checked",
        &[&agent],
        || {
            agent.status().is_some_and(|s| {
                before = checked(&s, "/w");
                s["zookeeper"]["watch_mode"] == "persistent"
                    && s["monitor"]["compliance"]["/w"]["state"] == "Error"
                    && s["monitor"]["compliance"]["/x"]["state"] == "Error"
            })
        },
    );
    let session = agent.status().unwrap()["zookeeper"]["session_id"].clone();
    zk.restart();
    // the full re-check after the reconnect comes after the watches were added again
    eventually(
        Duration::from_secs(60),
        "reconnected and re-checked",
        &[&agent],
        || {
            agent
                .status()
                .is_some_and(|s| s["zookeeper"]["connected"] == true && checked(&s, "/w") != before)
        },
    );
    let same = agent.status().unwrap()["zookeeper"]["session_id"] == session;
    eprintln!("same session after the restart: {same}");
    mkdirs(&zk.addr(), &["/w/c", "/x"]);
    eventually(
        Duration::from_secs(30),
        "/w and /x seen in spec through their watches",
        &[&agent],
        || {
            agent.status().is_some_and(|s| {
                s["monitor"]["compliance"]["/w"]["state"] == "OK"
                    && s["monitor"]["compliance"]["/x"]["state"] == "OK"
            })
        },
    );
}
