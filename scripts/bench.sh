#!/usr/bin/env bash
# End-to-end benchmark of `zkscope dump -r FILE` against `tcpdump -r FILE -w /dev/null`,
# measured side by side in the same run (see shared docs/performance.md: quote ratios to
# the tcpdump reference, not absolute times).
#
# Usage: scripts/bench.sh [--sizes "1m"] [--runs 3] [--no-build]
#        scripts/bench.sh --callgrind [S]  # instructions per packet, zk-S files (20k; valgrind)
#        scripts/bench.sh --profile [N]    # callgrind profile of `dump --format json`, N=50k
#
# --callgrind counts instructions (deterministic, unlike wall time on a shared VM) of tcpdump
# (run with -Z root as root, so that callgrind can still write its output after tcpdump drops
# privileges), of both zkscope dump output formats, `count -g path` on one thread and on two
# (callgrind runs threads one at a time: the sum of every thread's instructions), and digest. --profile writes bench-data/profile/
# (callgrind.out.json, self.txt, inclusive.txt) and prints the top functions.
#
# For each size S in --sizes (20k, 100k, 1m, ... = requests of the mix) it generates once,
# cached under ./bench-data/ (gitignored):
#   bench-data/zk-S.pcap     python3 bench/gen_pcap.py -o bench-data/zk-S.pcap -n N -c 100 --paths 5000 --seed 1
#   bench-data/zk-S-cs.pcap  the same with --coalesce --split
# (zk-1m.pcap is exactly the reference input of performance.md), builds the release binary,
# then for each file runs, best of --runs (interleaved: run 1 of every command, then run 2...):
#   tcpdump -r F -w /dev/null                          (reference)
#   zkscope dump -r F --format json > /dev/null
#   zkscope dump -r F > /dev/null                      (text)
#   zkscope dump -r F --format json -q | wc -l         (line count checked against the truth)
#   zkscope count -r F -g path --threads 1|2|auto, latency -g path --threads 1, digest
#   (the performance targets; --sizes "100k 1m" shows whether peak RSS stays flat)
# and prints a markdown table: best wall time, ZooKeeper messages/s (requests + replies from
# the truth file, connect/close included), ratio to tcpdump, peak RSS (max over the runs).
# Wall time and peak RSS come from /usr/bin/time -f '%e %M' (installed with apt-get if
# missing); without it (or with BENCH_TIMER=proc), bash's clock and VmHWM polled from /proc.
# The table is also saved to bench-data/results-<date>.md. BENCH_CARGO_PROFILE=profiling uses
# (and builds) that cargo profile instead of release.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DATA=$ROOT/bench-data
# the release binary is stripped; --profile builds the `profiling` profile (release + symbols)
CARGO_PROFILE=${BENCH_CARGO_PROFILE:-release}
ZK=$ROOT/target/release/zkscope

SIZES="1m"
RUNS=3
BUILD=1
MODE=wall
PROFILE_SIZE=50k
CG_SIZE=20k
while [ $# -gt 0 ]; do
    case "$1" in
        --sizes) SIZES="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --callgrind)
            MODE=callgrind; shift
            if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+[kKmM]?$ ]]; then CG_SIZE="${1,,}"; shift; fi ;;
        --profile)
            MODE=profile; shift
            if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+[kKmM]?$ ]]; then PROFILE_SIZE="$1"; shift; fi ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

die() { echo "bench.sh: $*" >&2; exit 1; }
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs needs a positive number"
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required${2:+ ($2)}"; }
need python3
mkdir -p "$DATA"

# "20k" -> 20000, "1m" -> 1000000, "1234" -> 1234
count_of() {
    local s="${1,,}"
    case "$s" in
        *k) echo $(( ${s%k} * 1000 )) ;;
        *m) echo $(( ${s%m} * 1000000 )) ;;
        *) echo "$s" ;;
    esac
}

# gen NAME N [extra gen_pcap flags]: bench-data/zk-NAME.pcap (+ .truth.json), made once.
gen() {
    local name="$1" n="$2"; shift 2
    local out="$DATA/zk-$name.pcap"
    if [ -s "$out" ] && [ -s "$out.truth.json" ]; then
        return
    fi
    echo "generating bench-data/zk-$name.pcap (-n $n $*) ..." >&2
    # Generated in a scratch folder under its final name, then moved: an interrupted run
    # leaves no file that looks complete.
    local tmp="$DATA/.gen-$name"
    rm -rf "$tmp" && mkdir -p "$tmp"
    (cd "$tmp" && python3 "$ROOT/bench/gen_pcap.py" -o "zk-$name.pcap" \
        -n "$n" -c 100 --paths 5000 --seed 1 "$@" >&2)
    mv "$tmp/zk-$name.pcap.truth.json" "$out.truth.json"
    mv "$tmp/zk-$name.pcap" "$out"
    rmdir "$tmp"
}

gen_size() {
    local size="${1,,}" n
    n=$(count_of "$size")
    gen "$size" "$n"
    gen "$size-cs" "$n" --coalesce --split
}

truth() { # truth FILE EXPR (python expression over d)
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1.truth.json"
}

build() {
    ZK=$ROOT/target/$CARGO_PROFILE/zkscope
    if [ "$BUILD" = 1 ]; then
        need cargo
        echo "building: cargo build --profile $CARGO_PROFILE -p zkscope" >&2
        cargo build --profile "$CARGO_PROFILE" -p zkscope >&2
    fi
    [ -x "$ZK" ] || die "$ZK is missing (build it or drop --no-build)"
}

machine_note() {
    local cpu
    cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
    echo "$(nproc) CPUs${cpu:+ ($cpu)}, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# ---------------------------------------------------------------------------------------------
# callgrind modes

callgrind_ir() { # total instructions from a callgrind output file
    sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$1" | head -1
}

run_callgrind() {
    need valgrind "apt-get install valgrind"
    gen_size "$CG_SIZE"
    build
    local tmp; tmp=$(mktemp -d)
    # tcpdump run as root switches to user tcpdump after opening its files, and callgrind then
    # cannot write its output: -Z root keeps the user (a one-time setup step, not per packet).
    local tz=()
    [ "$(id -u)" = 0 ] && tz=(-Z root)
    echo "# callgrind: instructions per packet ($(date -u +%Y-%m-%d), $(machine_note))"
    echo
    echo "| file | command | instructions | per packet | × tcpdump |"
    echo "|---|---|---|---|---|"
    for f in "$DATA/zk-$CG_SIZE.pcap" "$DATA/zk-$CG_SIZE-cs.pcap"; do
        local pkts ref=""
        pkts=$(truth "$f" "d['packets']['total']")
        local i label
        for i in 0 1 2 3 4 5; do
            local -a cmd
            case $i in
                0) label="tcpdump -r F -w /dev/null"; cmd=(tcpdump "${tz[@]}" -r "$f" -w /dev/null) ;;
                1) label="zkscope dump -r F --format json"; cmd=("$ZK" dump -r "$f" --format json -q) ;;
                2) label="zkscope dump -r F"; cmd=("$ZK" dump -r "$f" -q) ;;
                3) label="zkscope count -r F -g path --threads 1"; cmd=("$ZK" count -r "$f" -g path --format json --threads 1 -q) ;;
                4) label="zkscope count -r F -g path --threads 2 (all threads)"; cmd=("$ZK" count -r "$f" -g path --format json --threads 2 -q) ;;
                5) label="zkscope digest -r F"; cmd=("$ZK" digest -r "$f" -q) ;;
            esac
            valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$tmp/cg.$i" \
                "${cmd[@]}" >/dev/null 2>"$tmp/vg.$i" || { cat "$tmp/vg.$i" >&2; die "valgrind failed: ${cmd[*]}"; }
            local ir; ir=$(callgrind_ir "$tmp/cg.$i")
            [ -n "$ref" ] || ref=$ir
            printf '| %s | `%s` | %s | %s | %s |\n' "$(basename "$f")" "$label" "$ir" \
                "$(( ir / pkts ))" "$(awk -v a="$ir" -v b="$ref" 'BEGIN{printf "%.1f", a/b}')"
        done
    done
    rm -rf "$tmp"
}

run_profile() {
    need valgrind "apt-get install valgrind"
    need callgrind_annotate
    local size="${PROFILE_SIZE,,}"
    gen "$size" "$(count_of "$size")"
    CARGO_PROFILE=profiling
    build
    local f="$DATA/zk-$size.pcap" out="$DATA/profile"
    mkdir -p "$out"
    echo "callgrind: zkscope dump -r $(basename "$f") --format json > /dev/null" >&2
    valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$out/callgrind.out.json" \
        "$ZK" dump -r "$f" --format json -q >/dev/null 2>"$out/valgrind.log"
    callgrind_annotate --inclusive=no --auto=no --threshold=100 "$out/callgrind.out.json" >"$out/self.txt"
    callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$out/callgrind.out.json" >"$out/inclusive.txt"
    local ir pkts msgs
    ir=$(callgrind_ir "$out/callgrind.out.json")
    pkts=$(truth "$f" "d['packets']['total']")
    msgs=$(truth "$f" "d['requests_total'] + d['replies_total']")
    echo "total $ir instructions: $(( ir / pkts )) per packet ($pkts packets), $(( ir / msgs )) per message ($msgs)"
    # callgrind_annotate lists file:function pairs, so a function with inlined code appears once
    # per source file: merge them (self: sum; inclusive: the largest entry).
    python3 - "$out/self.txt" "$out/inclusive.txt" <<'PY'
import re, sys
def load(path, merge):
    total, agg = None, {}
    for line in open(path):
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$", line)
        if not m:
            continue
        n, rest = int(m.group(1).replace(",", "")), m.group(2)
        if "PROGRAM TOTALS" in rest:
            total = n
            continue
        rest = re.sub(r"\s*\[[^\]]*\]\s*$", "", rest)
        fn = rest.split(":", 1)[1] if ":" in rest else rest
        agg[fn] = merge(agg.get(fn, 0), n)
    return total, sorted(agg.items(), key=lambda kv: -kv[1])
for title, path, merge, top in (("self cost, top 30", sys.argv[1], lambda a, b: a + b, 30),
                                ("inclusive cost, top 40", sys.argv[2], max, 40)):
    total, rows = load(path, merge)
    print(f"== {title} (% of all instructions) ==")
    for fn, n in rows[:top]:
        print(f"{100 * n / total:6.2f}%  {fn[:150]}")
PY
    echo "(full listings: bench-data/profile/self.txt, inclusive.txt)"
}

# ---------------------------------------------------------------------------------------------
# wall time / peak RSS

TIMER=""
setup_timer() {
    if [ "${BENCH_TIMER:-}" = proc ]; then # testing the fallback
        TIMER=proc
        return
    fi
    if [ -x /usr/bin/time ]; then
        TIMER=gnu
        return
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing GNU time (apt-get install time) ..." >&2
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null 2>&1; then
            apt-get update -qq >/dev/null 2>&1 || true
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null 2>&1 || true
        fi
    fi
    if [ -x /usr/bin/time ]; then TIMER=gnu; else TIMER=proc
        echo "note: /usr/bin/time unavailable: wall from bash, peak RSS polled from /proc (approximate)" >&2
    fi
}

# measure CMD OUTFILE -> prints "wall_s peak_rss_kb"; CMD's stdout goes to OUTFILE.
measure() {
    local cmd="$1" out="$2" tf
    tf=$(mktemp)
    if [ "$TIMER" = gnu ]; then
        /usr/bin/time -f '%e %M' -o "$tf" bash -c "$cmd" >"$out" || { rm -f "$tf"; die "failed: $cmd"; }
        tail -1 "$tf"
    else
        local t0 t1 peak=0 p h kids
        t0=$(date +%s%N)
        bash -c "$cmd" >"$out" &
        local pid=$!
        while kill -0 "$pid" 2>/dev/null; do
            kids=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
            for p in $pid $kids; do
                h=$(awk '/^VmHWM/{print $2}' "/proc/$p/status" 2>/dev/null || true)
                [ -n "$h" ] && [ "$h" -gt "$peak" ] && peak=$h
            done
            sleep 0.02
        done
        wait "$pid" || { rm -f "$tf"; die "failed: $cmd"; }
        t1=$(date +%s%N)
        awk -v a="$t0" -v b="$t1" -v m="$peak" 'BEGIN{printf "%.2f %d\n", (b-a)/1e9, m}'
    fi
    rm -f "$tf"
}

run_wall() {
    need tcpdump "apt-get install tcpdump"
    setup_timer
    local s
    for s in $SIZES; do gen_size "$s"; done
    build
    local date_utc note
    date_utc=$(date -u '+%Y-%m-%d %H:%M UTC')
    note=$(machine_note)
    local report; report=$(mktemp)
    local labels=(
        "tcpdump -r F -w /dev/null"
        "zkscope dump -r F --format json > /dev/null"
        "zkscope dump -r F > /dev/null"
        "zkscope dump -r F --format json -q | wc -l"
        "zkscope count -r F -g path --threads 1"
        "zkscope count -r F -g path --threads 2"
        "zkscope count -r F -g path (threads: auto)"
        "zkscope latency -r F -g path --threads 1"
        "zkscope digest -r F"
    )
    {
        echo "# zkscope vs tcpdump ($date_utc)"
        echo
        echo "Machine at start: $note. Best of $RUNS runs (interleaved), page cache warm;"
        echo "zkscope built from $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- crates 2>/dev/null || echo ' + uncommitted changes in crates/')."
        echo "timer: $([ "$TIMER" = gnu ] && echo "/usr/bin/time -f '%e %M'" || echo "bash clock + /proc VmHWM polling")."
        echo
        echo "| file | packets | ZK msgs | command | best wall s | runs s | ZK msgs/s | × tcpdump | peak RSS MB |"
        echo "|---|---|---|---|---|---|---|---|---|"
    } >"$report"
    local tmp; tmp=$(mktemp -d)
    for s in $SIZES; do
        s="${s,,}"
        for f in "$DATA/zk-$s.pcap" "$DATA/zk-$s-cs.pcap"; do
            local msgs pkts
            msgs=$(truth "$f" "d['requests_total'] + d['replies_total']")
            pkts=$(truth "$f" "d['packets']['total']")
            cat "$f" >/dev/null # page cache
            local cmds=(
                "exec tcpdump -r '$f' -w /dev/null 2>/dev/null"
                "exec '$ZK' dump -r '$f' --format json 2>/dev/null"
                "exec '$ZK' dump -r '$f' 2>/dev/null"
                "'$ZK' dump -r '$f' --format json -q | wc -l"
                "exec '$ZK' count -r '$f' -g path --format json --threads 1 2>/dev/null"
                "exec '$ZK' count -r '$f' -g path --format json --threads 2 2>/dev/null"
                "exec '$ZK' count -r '$f' -g path --format json 2>/dev/null"
                "exec '$ZK' latency -r '$f' -g path --format json --threads 1 2>/dev/null"
                "exec '$ZK' digest -r '$f' 2>/dev/null"
            )
            local -a best=() rss=() all=()
            local r i res w m
            for ((r = 1; r <= RUNS; r++)); do
                for i in "${!cmds[@]}"; do
                    echo "  $(basename "$f") run $r: ${labels[$i]}" >&2
                    res=$(measure "${cmds[$i]}" "$tmp/out")
                    w=${res% *}; m=${res#* }
                    all[$i]="${all[$i]:+${all[$i]} }$w"
                    if [ -z "${best[$i]:-}" ] || awk -v a="$w" -v b="${best[$i]}" 'BEGIN{exit !(a<b)}'; then
                        best[$i]=$w
                    fi
                    if [ -z "${rss[$i]:-}" ] || [ "$m" -gt "${rss[$i]}" ]; then rss[$i]=$m; fi
                    if [ "$i" = 3 ]; then
                        local lines; lines=$(tr -d ' ' <"$tmp/out")
                        [ "$lines" = "$msgs" ] || echo "WARNING: $(basename "$f"): zkscope printed $lines JSON lines, truth has $msgs messages" >&2
                    fi
                done
            done
            for i in "${!cmds[@]}"; do
                awk -v f="$(basename "$f")" -v p="$pkts" -v n="$msgs" -v c="${labels[$i]}" \
                    -v w="${best[$i]}" -v runs="${all[$i]}" -v ref="${best[0]}" -v m="${rss[$i]}" -v i="$i" '
                    function si(x) { return x >= 1e6 ? sprintf("%.2fM", x/1e6) : sprintf("%.0fk", x/1e3) }
                    BEGIN {
                        rate = (w > 0) ? si(n / w) : "-"
                        if (i == 0 && w > 0) rate = rate " equiv."
                        ratio = (ref > 0) ? sprintf("%.1f", w / ref) : "-"
                        gsub(/\|/, "\\|", c)
                        printf "| %s | %d | %d | `%s` | %.2f | %s | %s | %s | %.1f |\n", f, p, n, c, w, runs, rate, ratio, m / 1024
                    }' >>"$report"
            done
        done
    done
    rm -rf "$tmp"
    echo >>"$report"
    echo "Machine at end: load average $(cut -d' ' -f1-3 /proc/loadavg)." >>"$report"
    echo "Wall times are from /usr/bin/time (10 ms resolution): the tcpdump reference on small files is at that resolution." >>"$report"
    local saved; saved="$DATA/results-$(date -u +%Y%m%d-%H%M%S).md"
    cp "$report" "$saved" && chmod 644 "$saved"
    cat "$report"
    echo "(saved to ${saved#"$ROOT"/})" >&2
    rm -f "$report"
}

case "$MODE" in
    wall) run_wall ;;
    callgrind) run_callgrind ;;
    profile) run_profile ;;
esac
