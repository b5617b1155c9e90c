//! Build script: the git commit the binary was built from, for `--version`.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    // ZKSCOPE_GIT_COMMIT from the environment wins (builds from a tarball, packagers)
    println!("cargo:rerun-if-env-changed=ZKSCOPE_GIT_COMMIT");
    let commit = std::env::var("ZKSCOPE_GIT_COMMIT")
        .ok()
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=ZKSCOPE_GIT_COMMIT={commit}");
    // rebuild when HEAD moves (a worktree's HEAD and the shared refs both count)
    for p in [
        ["rev-parse", "--git-path", "HEAD"],
        ["rev-parse", "--git-path", "refs/heads"],
    ] {
        if let Some(path) = git(&p) {
            println!("cargo:rerun-if-changed={}", PathBuf::from(path).display());
        }
    }
    if let Some(dir) = git(&["rev-parse", "--git-common-dir"]) {
        println!(
            "cargo:rerun-if-changed={}",
            PathBuf::from(dir).join("packed-refs").display()
        );
    }
}
