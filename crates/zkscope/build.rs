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
    // rebuild when HEAD moves: this worktree's HEAD and its branch's ref (not the whole refs
    // directory, which every other branch's commit touches); only paths that exist, since a
    // missing one would rerun this script on every build
    let mut refs = vec!["HEAD".to_string()];
    refs.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    let mut watch: Vec<PathBuf> = refs
        .iter()
        .filter_map(|r| git(&["rev-parse", "--git-path", r]).map(PathBuf::from))
        .collect();
    if let Some(dir) = git(&["rev-parse", "--git-common-dir"]) {
        watch.push(PathBuf::from(dir).join("packed-refs"));
    }
    for p in watch.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}
