#!/usr/bin/env bash
# Re-records the real ZooKeeper 3.8 captures in fixtures/real/ (see
# fixtures/README.md). Needs root (tcpdump), a free port 2181 and Debian 12.
#
#   scripts/record-fixture.sh [OUT_DIR]      (default: fixtures/real)
#
# 1. installs the test dependencies (scripts/install-test-deps.sh);
# 2. runs the ignored test `record_real_fixtures` (tests/record_fixtures.rs):
#    starts Debian's ZooKeeper 3.8 standalone on 127.0.0.1:2181
#    (extendedTypesEnabled=true, 4lw whitelist *), captures with
#    `tcpdump -i lo|any -U --immediate-mode -B 65536 -s 0 -w … tcp port 2181`
#    while running the workloads, and writes X.pcap + X.manifest.json;
# 3. writes the pcapng copy with editcap and X.summary.json with
#    scripts/zkpcap.py (independent decoder) for the README's counts.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="$(realpath -m "${1:-fixtures/real}")"
mkdir -p "$OUT"

bash scripts/install-test-deps.sh
ZKSCOPE_RECORD_DIR="$OUT" cargo test -p zkscope --test record_fixtures -- \
    --ignored --nocapture --test-threads=1

editcap -F pcapng "$OUT/zk38-session.pcap" "$OUT/zk38-session.pcapng"
for f in zk38-session zk38-any-sll2 zk38-ipv6; do
    python3 scripts/zkpcap.py "$OUT/$f.pcap" --port 2181 --summary > "$OUT/$f.summary.json"
done
chmod 0644 "$OUT"/*
ls -l "$OUT"
capinfos -t -E -c -s "$OUT"/*.pcap "$OUT"/*.pcapng || true
