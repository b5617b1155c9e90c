//! How zkscope is built and installed: what the README promises about the binary.

use std::path::Path;

fn workspace_file(p: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p))
        .unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// The section `[name]` of a TOML file, as text (up to the next section).
fn section<'a>(toml: &'a str, name: &str) -> &'a str {
    let head = format!("[{name}]\n");
    let Some(i) = toml.find(&head) else {
        panic!("no [{name}]")
    };
    let rest = &toml[i + head.len()..];
    &rest[..rest.find("\n[").unwrap_or(rest.len())]
}

/// The shipped binary is stripped; a `profiling` profile keeps the symbols.
#[test]
fn release_is_stripped_and_profiling_has_symbols() {
    let cargo = workspace_file("Cargo.toml");
    let release = section(&cargo, "profile.release");
    assert!(release.contains("strip = true"), "{release}");
    assert!(release.contains("debug = 0"), "{release}");
    let profiling = section(&cargo, "profile.profiling");
    assert!(profiling.contains("inherits = \"release\""), "{profiling}");
    assert!(profiling.contains("debug = 1"), "{profiling}");
    assert!(profiling.contains("strip = false"), "{profiling}");
    // the symbol-hungry benchmark mode builds that profile
    let bench = workspace_file("scripts/bench.sh");
    assert!(bench.contains("CARGO_PROFILE=profiling"), "bench.sh");
}

/// The README says how to install, what is needed at run time and how to capture without root.
#[test]
fn readme_install_section() {
    let readme = workspace_file("README.md");
    for needle in [
        "## Install",
        "cargo install --locked --path crates/zkscope",
        "libpcap",
        "setcap cap_net_raw,cap_net_admin+eip",
    ] {
        assert!(readme.contains(needle), "README lacks {needle:?}");
    }
}
