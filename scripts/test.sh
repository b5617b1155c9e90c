#!/usr/bin/env bash
# The test command: installs test dependencies, then runs
#   cargo fmt --all -- --check
#   cargo clippy --workspace --all-targets -- -D warnings
#   cargo test --workspace
# Every step runs even if an earlier one failed; exits non-zero if any did.
#
# Debug profile on purpose: on 2 cores it compiles much faster than release
# and the integration tests mostly wait on ZooKeeper JVMs, not on zkscope.
# Integration tests start ZooKeeper and capture on `lo`: run as root.
#
# Environment: CARGO_TEST_ARGS (extra args after `cargo test --workspace`),
# ZKSCOPE_TEST_DECODER (see crates/zkscope/tests/real_zk.rs).
set -uo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

bash scripts/install-test-deps.sh || { echo "install-test-deps.sh failed" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
    echo "warning: not root: live-capture integration tests will fail" >&2
fi

failed=()
step() {
    local name="$1"; shift
    echo "==> $name: $*"
    local t0=$SECONDS
    if "$@"; then
        echo "==> $name: ok ($((SECONDS - t0)) s)"
    else
        echo "==> $name: FAILED ($((SECONDS - t0)) s)"
        failed+=("$name")
    fi
}

step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
# shellcheck disable=SC2086
step test cargo test --workspace ${CARGO_TEST_ARGS:-}

if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED steps: ${failed[*]}"
    exit 1
fi
echo "all steps passed"
