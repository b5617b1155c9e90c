//! A real Prometheus (Debian's `prometheus` package) scrapes the daemon's /metrics every
//! second; its query API returns the counters and a histogram quantile, and every query of
//! the shipped dashboard and every alerting rule evaluates. promtool checks the classic text
//! exposition and the rules; python3-prometheus-client parses the OpenMetrics one.
//! Skipped (with a message) when those tools are not installed.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{free_port, get, replayed_all, start, try_get, urlencode, wait_for};
use zkscope_analysis::zkstats::StatsConfig;

const CAPTURES: [&str; 6] = [
    "dump.pcap",
    "auth.pcap",
    "fire_watches.pcap",
    "get_children_with_four_letter.pcap",
    "multi.pcap",
    "getdata_watches.pcap",
];

fn contrib(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../contrib")
        .join(name)
}

fn have(bin: &str) -> bool {
    Path::new(bin).exists()
}

struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start_prometheus(target: SocketAddr) -> Prometheus {
    let dir = std::env::temp_dir().join(format!(
        "zkscope-prom-{}-{}",
        std::process::id(),
        target.port()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let rules = contrib("zkscope-alerts.yml");
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: zkscope\n    static_configs:\n      - targets: ['{target}']\n",
        rules.display()
    );
    std::fs::write(dir.join("prometheus.yml"), cfg).expect("config");
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let child = Command::new("/usr/bin/prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let p = Prometheus {
        child,
        addr,
        _dir: TempDir(dir),
    };
    wait_for(60, "Prometheus ready", || {
        try_get(addr, "/-/ready").filter(|r| r.status == 200)
    });
    p
}

/// Runs an instant query; the `result` array when the query succeeded.
fn query(p: &Prometheus, q: &str) -> Option<Vec<serde_json::Value>> {
    let r = try_get(p.addr, &format!("/api/v1/query?query={}", urlencode(q)))?;
    let v: serde_json::Value = serde_json::from_str(&r.body).ok()?;
    if v["status"] != "success" {
        panic!("query {q} failed: {}", r.body);
    }
    v["data"]["result"].as_array().cloned()
}

fn scalar(p: &Prometheus, q: &str) -> Option<f64> {
    let r = query(p, q)?;
    let v = r.first()?["value"][1].as_str()?.parse().ok()?;
    Some(v)
}

#[test]
fn prometheus_scrapes_and_answers() {
    if !have("/usr/bin/prometheus") || !have("/usr/bin/promtool") {
        eprintln!("skipped: prometheus/promtool not installed (scripts/install-test-deps.sh)");
        return;
    }
    let shared = replayed_all(&CAPTURES, &StatsConfig::default());
    let addr = start(shared);
    let prom = start_prometheus(addr);
    // Scraped, and more than twice (rates need two samples).
    wait_for(60, "three scrapes", || {
        scalar(&prom, "count_over_time(up{job=\"zkscope\"}[1m])").filter(|n| *n >= 3.0)
    });
    assert_eq!(scalar(&prom, "up{job=\"zkscope\"}"), Some(1.0));
    assert_eq!(
        scalar(
            &prom,
            "zkscope_requests_total{op=\"exists\",result=\"NONODE\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        scalar(&prom, "sum(zkscope_requests_total{op=\"exists\"})"),
        Some(5.0)
    );
    // exists took 361, 490, 531, 777 and 923 µs: 2 in (0, 0.5 ms], 3 in (0.5 ms, 1 ms]. The
    // median's rank 2.5 interpolates to 0.5 ms + 0.5/3 × 0.5 ms.
    let q = scalar(
        &prom,
        "histogram_quantile(0.5, sum by (le) (zkscope_request_duration_seconds_bucket{op=\"exists\"}))",
    )
    .expect("a quantile");
    assert!((q - 0.000_583_333).abs() < 1e-9, "{q}");

    // Every dashboard query returns data.
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(contrib("zkscope-dashboard.json")).expect("dashboard"),
    )
    .expect("dashboard JSON");
    let mut exprs = Vec::new();
    for p in dash["panels"].as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                exprs.push(e.to_string());
            }
        }
    }
    assert!(exprs.len() > 20);
    for e in &exprs {
        let q = e
            .replace("$instance", ".*")
            .replace("$__rate_interval", "1m");
        let r = query(&prom, &q).unwrap_or_else(|| panic!("no answer to {q}"));
        assert!(!r.is_empty(), "no data for dashboard query {q}");
    }
    // Every alerting rule was loaded and evaluates without error.
    let rules = wait_for(30, "rules evaluated", || {
        let r = try_get(prom.addr, "/api/v1/rules")?;
        let v: serde_json::Value = serde_json::from_str(&r.body).ok()?;
        let rules: Vec<serde_json::Value> = v["data"]["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        rules
            .iter()
            .all(|r| {
                r["lastEvaluation"]
                    .as_str()
                    .is_some_and(|t| !t.starts_with("0001"))
            })
            .then_some(rules)
    });
    assert_eq!(rules.len(), 6);
    for r in &rules {
        assert_eq!(r["health"], "ok", "{r}");
    }
    // promtool on the rules file and on the classic text exposition.
    let out = Command::new("/usr/bin/promtool")
        .arg("check")
        .arg("rules")
        .arg(contrib("zkscope-alerts.yml"))
        .output()
        .expect("promtool");
    assert!(out.status.success(), "{out:?}");
    let text = get(addr, "/metrics", None);
    let mut child = Command::new("/usr/bin/promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.body.as_bytes()).expect("write");
    }
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {out:?}"
    );
}

#[test]
fn openmetrics_parses_with_the_python_client() {
    if Command::new("/usr/bin/python3")
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .status()
        .map_or(true, |s| !s.success())
    {
        eprintln!("skipped: python3-prometheus-client not installed");
        return;
    }
    let shared = replayed_all(&CAPTURES, &StatsConfig::default());
    let addr = start(shared);
    let om = get(addr, "/metrics", Some("application/openmetrics-text"));
    assert!(om.content_type.starts_with("application/openmetrics-text"));
    let script = "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\nfams = list(p(sys.stdin.read()))\nnames = {f.name for f in fams}\nassert 'zkscope_requests' in names and 'zkscope_request_duration_seconds' in names, names\nprint(len(fams))\n";
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(om.body.as_bytes()).expect("write");
    }
    let out = child.wait_with_output().expect("python3");
    assert!(out.status.success(), "{out:?}");
    // A truncated exposition (no `# EOF`) is rejected: the parser is strict.
    let cut = om.body.trim_end_matches("# EOF\n");
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\nlist(p(sys.stdin.read()))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(cut.as_bytes())?;
            c.wait()
        })
        .expect("python3");
    assert!(!out.success());
}
