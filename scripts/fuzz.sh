#!/usr/bin/env bash
# Runs one cargo-fuzz target for SECONDS, then minimises its corpus.
#
#   scripts/fuzz.sh TARGET SECONDS       e.g. scripts/fuzz.sh stream 1800
#   scripts/fuzz.sh list                 the targets
#
# Needs nightly and cargo-fuzz (`rustup toolchain install nightly`, `cargo install cargo-fuzz`).
# The run starts from the committed corpus (fuzz/corpus/TARGET) plus the seeds made from the
# fixtures (scripts/fuzz-seeds.py, into fuzz/seeds/), adds what it finds to the committed
# corpus, and `cargo fuzz cmin` then keeps a small set with the same edge coverage: commit
# fuzz/corpus/TARGET afterwards. Crashes, timeouts and out-of-memory inputs land in
# fuzz/artifacts/TARGET/ and make the script fail. One process (the machine is shared), at
# nice 10; the log with libFuzzer's final stats is fuzz/logs/TARGET.log.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
targets=(client election quorum stream pcap monitor_config)
if [ "${1:-}" = list ] || [ $# -ne 2 ]; then
    printf '%s\n' "${targets[@]}"
    [ "${1:-}" = list ] && exit 0
    echo "usage: $0 TARGET SECONDS" >&2
    exit 2
fi
target=$1 secs=$2
case " ${targets[*]} " in *" $target "*) ;; *) echo "unknown target $target" >&2; exit 2 ;; esac
case $target in
    stream | pcap) max_len=16384 ;;
    client | quorum) max_len=8192 ;;
    *) max_len=4096 ;;
esac
[ -d seeds/"$target" ] || python3 ../scripts/fuzz-seeds.py seeds >/dev/null
mkdir -p corpus/"$target" artifacts/"$target" logs
log=logs/$target.log
# -a: debug assertions (integer overflow panics, as in `cargo test`).
set +e
nice -n 10 cargo +nightly fuzz run -a "$target" corpus/"$target" seeds/"$target" -- \
    -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=1024 -max_len="$max_len" -artifact_prefix=artifacts/"$target"/ \
    2>&1 | tee "$log" | grep -E '^#[0-9]+[[:space:]]+DONE|^==|^stat::|panicked|ERROR' | tail -n 40
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
    echo "fuzzing $target failed (exit $rc): see $log and artifacts/$target/" >&2
    exit "$rc"
fi
before=$(ls corpus/"$target" | wc -l)
# Edge coverage only (no hit-count features): far fewer files, the same edges covered.
nice -n 10 cargo +nightly fuzz cmin -a "$target" corpus/"$target" -- -max_len="$max_len" \
    -use_counters=0 >>"$log" 2>&1
after=$(ls corpus/"$target" | wc -l)
# The fuzzing run's last status line (before cmin's own), and its execution count.
done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | head -n 1 || true)
runs=$(grep -E '^stat::number_of_executed_units' "$log" | head -n 1 | awk '{print $2}' || true)
echo "$target: ${secs}s, ${runs:-?} executions; ${done_line}; corpus $before -> $after files ($(du -sh corpus/"$target" | cut -f1))"
