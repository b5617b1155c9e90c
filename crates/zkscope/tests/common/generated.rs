//! A `bench/gen_pcap.py` capture made once per generator version and arguments, kept in the
//! target directory (the generator is deterministic), with its truth file.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A generated capture and its ground truth.
pub struct Gen {
    pub pcap: PathBuf,
    pub truth: Value,
}

/// Generates (or reuses) the capture for `args`; `label` names its directory.
pub fn generate(label: &str, args: &[&str]) -> Gen {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/gen_pcap.py");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let src = std::fs::read(&script).expect("read bench/gen_pcap.py");
    for b in src.iter().chain(args.join(" ").as_bytes()) {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
    }
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.join(format!("{label}-gen-{h:016x}"));
    let (pcap, truth) = (dir.join("x.pcap"), dir.join("x.pcap.truth.json"));
    if !truth.exists() {
        // Generate beside it, then move it in place (another test run may race us).
        let mine = tmp.join(format!("{label}-gen-{h:016x}.{}", std::process::id()));
        std::fs::create_dir_all(&mine).expect("temp dir");
        let out = Command::new("python3")
            .arg(&script)
            .args(["-o", mine.join("x.pcap").to_str().expect("UTF-8 path")])
            .args(args)
            .output()
            .expect("run python3 bench/gen_pcap.py");
        assert!(
            out.status.success(),
            "gen_pcap.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if std::fs::rename(&mine, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&mine);
        }
    }
    let truth =
        serde_json::from_slice(&std::fs::read(truth).expect("truth file")).expect("truth JSON");
    Gen { pcap, truth }
}
