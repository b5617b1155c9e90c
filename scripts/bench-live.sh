#!/usr/bin/env bash
# Live capture benchmark: zkscope and tcpdump capture the same tcpreplay replay on `lo`.
#
# Usage (root): scripts/bench-live.sh [--size 100k] [--runs 1] [--pps N] [--no-build]
#                                     [--zkscope-args "..."]   (ZKSCOPE_BIN=path: that binary)
#
# gen_pcap writes 10.x addresses; load tests only put loopback addresses on the wire, so the
# capture is first rewritten into 127.0.0.0/8 (tcprewrite --pnat=10.0.0.0/8:127.0.0.0/8
# --fixcsum, cached as bench-data/zk-S-lo.pcap). While it runs, an `iptables -t raw -A
# PREROUTING` DROP rule for those addresses keeps the kernel from answering the replayed
# segments with resets (libpcap sees packets before the raw table); a trap removes it.
# Then, for each run: `zkscope count -i lo -g type --format json` and `tcpdump -i lo -w
# /dev/null` start (same BPF filter), `tcpreplay --topspeed -i lo` (or --pps N) replays the
# file, both captures are stopped with SIGINT once the replay ended and the kernel buffers had
# time to drain, and the script prints the replay rate, each tool's kernel drops, and
# zkscope's request/reply counts (handshakes included) against the truth file. Every packet
# tcpreplay sends on `lo` is captured twice (going out, coming back in): both tools receive
# twice the file's packets; zkscope drops the second copy as an exact duplicate.
#
# Needs tcpreplay (Debian package `tcpreplay`, for tcpreplay and tcprewrite), iptables,
# tcpdump: scripts/install-bench-deps.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DATA=$ROOT/bench-data
SIZE=100k
RUNS=1
PPS=""
BUILD=1
ZK_ARGS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --size) SIZE="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --pps) PPS="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --zkscope-args) ZK_ARGS="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-live.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
die() { echo "bench-live.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (live capture, iptables)"
for t in tcpreplay tcprewrite iptables tcpdump python3; do
    command -v "$t" >/dev/null 2>&1 || die "$t is missing (scripts/install-bench-deps.sh)"
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs needs a positive number"

count_of() {
    local s="${1,,}"
    case "$s" in
        *k) echo $(( ${s%k} * 1000 )) ;;
        *m) echo $(( ${s%m} * 1000000 )) ;;
        *) echo "$s" ;;
    esac
}

mkdir -p "$DATA"
SRC=$DATA/zk-${SIZE,,}.pcap
LO=$DATA/zk-${SIZE,,}-lo.pcap
if ! [ -s "$SRC" ] || ! [ -s "$SRC.truth.json" ]; then
    echo "generating $SRC ..." >&2
    (cd "$DATA" && python3 "$ROOT/bench/gen_pcap.py" -o "$(basename "$SRC")" \
        -n "$(count_of "$SIZE")" -c 100 --paths 5000 --seed 1 >&2)
fi
if ! [ -s "$LO" ] || [ "$LO" -ot "$SRC" ]; then
    echo "rewriting 10.0.0.0/8 into 127.0.0.0/8: $LO" >&2
    tcprewrite --pnat=10.0.0.0/8:127.0.0.0/8 --fixcsum -i "$SRC" -o "$LO.tmp"
    mv "$LO.tmp" "$LO"
fi
truth() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($1)" "$SRC.truth.json"; }
PKTS=$(truth "d['packets']['total']")
REQS=$(truth "d['requests_total']")
REPS=$(truth "d['replies_total']")

ZK=${ZKSCOPE_BIN:-$ROOT/target/release/zkscope}
if [ "$BUILD" = 1 ] && [ -z "${ZKSCOPE_BIN:-}" ]; then
    cargo build --release -p zkscope >&2
fi
[ -x "$ZK" ] || die "$ZK is missing"

TMP=$(mktemp -d)
RULE=(PREROUTING -s 127.0.0.0/8 -d 127.0.0.0/8 -p tcp --dport 2181 -j DROP)
RULE2=(PREROUTING -s 127.0.0.0/8 -d 127.0.0.0/8 -p tcp --sport 2181 -j DROP)
ZPID=""; TPID=""
cleanup() {
    iptables -t raw -D "${RULE[@]}" 2>/dev/null || true
    iptables -t raw -D "${RULE2[@]}" 2>/dev/null || true
    [ -n "$ZPID" ] && kill -INT "$ZPID" 2>/dev/null || true
    [ -n "$TPID" ] && kill -INT "$TPID" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
iptables -t raw -A "${RULE[@]}"
iptables -t raw -A "${RULE2[@]}"

FILTER="tcp port 2181"
wait_for() { # wait_for FILE PATTERN: until FILE contains PATTERN (30 s at most)
    local i
    for ((i = 0; i < 300; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    die "timed out waiting for '$2' in $1: $(cat "$1")"
}

echo "# live capture on lo: $(basename "$LO") ($PKTS packets, $REQS requests, $REPS replies), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "zkscope: $ZK count -i lo -g type --format json $ZK_ARGS; tcpdump -i lo -w /dev/null '$FILTER'"
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| run | replay pkts/s | zkscope received | zkscope kernel drops | zkscope requests/replies (truth $REQS/$REPS) | tcpdump received | tcpdump kernel drops |"
echo "|---|---|---|---|---|---|---|"
for ((r = 1; r <= RUNS; r++)); do
    # shellcheck disable=SC2086
    "$ZK" count -i lo -g type --format json $ZK_ARGS >"$TMP/zk.out" 2>"$TMP/zk.err" &
    ZPID=$!
    tcpdump -i lo -w /dev/null "$FILTER" 2>"$TMP/td.err" &
    TPID=$!
    wait_for "$TMP/zk.err" "listening on"
    wait_for "$TMP/td.err" "listening on"
    rate=()
    [ -n "$PPS" ] && rate=(--pps="$PPS") || rate=(--topspeed)
    tcpreplay "${rate[@]}" -i lo "$LO" >"$TMP/replay.out" 2>&1 || { cat "$TMP/replay.out" >&2; die "tcpreplay failed"; }
    # The replay is over: give both captures time to read what the kernel buffered (a bench,
    # not a test: nothing is asserted on this), then stop them.
    sleep 2
    kill -INT "$ZPID" "$TPID"
    wait "$ZPID" || true
    wait "$TPID" || true
    ZPID=""; TPID=""
    pps=$(sed -n 's/.*Rated: [0-9.]* Bps, [0-9.]* Mbps, \([0-9.]*\) pps.*/\1/p' "$TMP/replay.out" | head -1)
    zrecv=$(sed -n 's/^capture *received \([0-9]*\), dropped by kernel \([0-9]*\).*/\1/p' "$TMP/zk.err")
    zdrop=$(sed -n 's/^capture *received \([0-9]*\), dropped by kernel \([0-9]*\).*/\2/p' "$TMP/zk.err")
    # requests and replies, handshakes included (as the truth file counts them)
    # (the summary counts pings apart: "N requests (+P pings, ...)"; the truth includes them)
    zmsg=$(python3 -c '
import re, sys
for line in open(sys.argv[1]):
    m = re.match(r"messages\s+(\d+) requests(?: \(\+(\d+) pings[^)]*\))?, (\d+) replies, \d+ watch events, (\d+) connects, (\d+) connect replies", line)
    if m:
        req, pings, rep, con, conr = (int(g or 0) for g in m.groups())
        print(f"{req + pings + con}/{rep + conr}")
' "$TMP/zk.err")
    trecv=$(sed -n 's/^\([0-9]*\) packets received by filter.*/\1/p' "$TMP/td.err")
    tdrop=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$TMP/td.err")
    echo "| $r | ${pps:-?} | ${zrecv:-?} | ${zdrop:-?} | ${zmsg:-?} | ${trecv:-?} | ${tdrop:-?} |"
    if [ -z "$zmsg" ]; then
        echo "zkscope stderr:" >&2
        cat "$TMP/zk.err" >&2
    fi
done
