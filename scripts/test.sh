#!/usr/bin/env bash
# The test command: installs test dependencies, then runs
#   cargo fmt --all -- --check
#   cargo clippy --workspace --all-targets -- -D warnings
#   cargo test --workspace --no-fail-fast (failed tests run once more, alone: see below)
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

# The test step runs every test binary (--no-fail-fast). Tests that fail are run once more,
# alone: the integration tests drive real JVMs, libpcap and child processes on a shared 2-core
# machine, and one that passes alone is reported as FLAKY (loudly, listed at the end) instead of
# failing the run. A decoder bug fails both times. Every FLAKY line is a test race to fix: see
# NOTES.md, "Working in this repo". ZKSCOPE_NO_RERUN=1 turns the second run off.
test_log="$(mktemp)"
trap 'rm -f "$test_log"' EXIT
flaky=()
run_tests() {
    # shellcheck disable=SC2086
    cargo test --workspace --no-fail-fast ${CARGO_TEST_ARGS:-} 2>&1 | tee "$test_log"
    [ "${PIPESTATUS[0]}" -eq 0 ] && return 0
    mapfile -t names < <(sed -n 's/^---- \(.*\) stdout ----$/\1/p' "$test_log" | sort -u)
    if [ "${ZKSCOPE_NO_RERUN:-0}" = 1 ] || [ "${#names[@]}" -eq 0 ] || [ "${#names[@]}" -gt 3 ]; then
        return 1
    fi
    echo "==> test: ${#names[@]} failed: ${names[*]}; running them once more, alone"
    local n rc
    for n in "${names[@]}"; do
        # shellcheck disable=SC2086
        cargo test --workspace ${CARGO_TEST_ARGS:-} -- --exact "$n" --test-threads=1 >"$test_log" 2>&1
        rc=$?
        if [ "$rc" -ne 0 ] || ! grep -qFx "test $n ... ok" "$test_log"; then
            tail -n 80 "$test_log"
            echo "==> test: $n failed again"
            return 1
        fi
        echo "==> test: $n passed alone"
        flaky+=("$n")
    done
    return 0
}

step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
step test run_tests
if [ "${#flaky[@]}" -gt 0 ]; then
    echo "==> FLAKY (failed, then passed alone; a race to fix): ${flaky[*]}"
fi

if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED steps: ${failed[*]}"
    exit 1
fi
echo "all steps passed"
