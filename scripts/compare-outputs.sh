#!/usr/bin/env bash
# Byte-for-byte comparison of zkscope's output between a git revision and the working tree:
# a refactoring that must not change behaviour runs this against the commit it started from.
#
# Usage: scripts/compare-outputs.sh [REV] [--release] [--gen-requests N] [--keep]
#   REV             the revision to compare with (default: HEAD)
#   --release       build release binaries (default: debug, faster to build)
#   --gen-requests  requests of the gen_pcap capture added to the fixtures (default 20000; 0: none)
#   --keep          keep the scratch folder (outputs of both binaries) for inspection
#
# It exports REV with `git archive` into a scratch folder and builds its `zkscope` binary in a
# target dir of its own ($COMPARE_REV_TARGET, default target/compare-rev, kept between runs),
# seeded on first use from the workspace's target dir without the workspace crates (cargo
# cannot tell two source trees of the same crates apart in one target dir: their artifacts and
# fingerprints have the same names). The working tree builds as usual. Then, on every capture
# under fixtures/ and on a gen_pcap capture, it runs:
#   dump (text, --show, --format json, --unpaired, -p), count/latency with several -g mixes
#   (text and json), digest (text, --format json, --protocol auto), elections (text, json),
#   and dump --protocol auto|fle|zab (also with the ports the zktraffic captures use),
# and diffs stdout, stderr and the exit code of each run. Exit status 0 when all are identical.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

REV=HEAD
PROFILE=debug
GEN=20000
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --release) PROFILE=release; shift ;;
        --gen-requests) GEN="$2"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "compare-outputs.sh: unknown argument $1" >&2; exit 2 ;;
        *) REV="$1"; shift ;;
    esac
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/zkscope-compare.XXXXXX")
cleanup() { if [ "$KEEP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
flag=()
[ "$PROFILE" = release ] && flag=(--release)

REV_TARGET=${COMPARE_REV_TARGET:-$TARGET/compare-rev}

build() { # build SRC_DIR TARGET_DIR OUT_BINARY
    (cd "$1" && CARGO_TARGET_DIR="$2" cargo build -q "${flag[@]}" -p zkscope --bin zkscope)
    cp "$2/$PROFILE/zkscope" "$3"
}

echo "building $REV ($(git rev-parse --short "$REV")) and the working tree ($PROFILE)..." >&2
# Both binaries are named zkscope (clap prints its own name in usage lines).
mkdir -p "$WORK/rev-src" "$WORK/old" "$WORK/new"
git archive "$REV" | tar -x -C "$WORK/rev-src"
if [ ! -d "$REV_TARGET/$PROFILE" ] && [ -d "$TARGET/$PROFILE/deps" ]; then
    echo "seeding $REV_TARGET/$PROFILE with the dependencies of $TARGET/$PROFILE..." >&2
    mkdir -p "$REV_TARGET/$PROFILE"
    for d in deps build .fingerprint; do
        [ -d "$TARGET/$PROFILE/$d" ] && cp -r "$TARGET/$PROFILE/$d" "$REV_TARGET/$PROFILE/"
    done
    rm -rf "$REV_TARGET/$PROFILE/.fingerprint"/zkscope* "$REV_TARGET/$PROFILE/deps"/*zkscope*
fi
build "$WORK/rev-src" "$REV_TARGET" "$WORK/old/zkscope"
build "$ROOT" "$TARGET" "$WORK/new/zkscope"

captures=()
while IFS= read -r f; do captures+=("$f"); done < <(find fixtures -name '*.pcap' -o -name '*.pcapng' | sort)
if [ "$GEN" != 0 ]; then
    echo "generating a gen_pcap capture of $GEN requests..." >&2
    GEN_PCAP=${GEN_PCAP:-$ROOT/bench/gen_pcap.py}
    [ -f "$GEN_PCAP" ] || GEN_PCAP=/work/shared/bench/gen_pcap.py
    python3 "$GEN_PCAP" -o "$WORK/gen.pcap" -n "$GEN" -c 100 --paths 5000 --seed 1 \
        --coalesce --split >/dev/null
    captures+=("$WORK/gen.pcap")
fi

# One line per run: the arguments after `-r FILE` (a tab separates them; none contain one).
runs_for() {
    local f="$1"
    cat <<'EOF'
dump
dump	--show
dump	--format	json
dump	--unpaired
dump	--unpaired	--format	json
dump	-p	--date
dump	--slow	1ms
count	-g	op,error
count	-g	path	--format	json
count	-g	path,type,client	--aggregation-depth	2	--fold-sequential
count	-g	session,auth,server	--format	csv
latency	-g	type
latency	-g	client,op	--format	json
latency	-g	path	--sort-by	p99	--top	10
digest
digest	--format	json
digest	--protocol	auto
digest	--protocol	auto	--format	json
elections
elections	--format	json
dump	--protocol	auto
dump	--protocol	auto	--format	json
dump	--protocol	fle
dump	--protocol	zab
dump	--group-by	path	--count-requests	50
EOF
    case "$(basename "$f")" in
        zab_*)
            printf 'dump\t--protocol\tzab\t--port\t20022\n'
            printf 'dump\t--protocol\tzab\t--port\t20022\t--format\tjson\n'
            printf 'dump\t--protocol\tzab\t--port\t20022\t--show\n' ;;
        omni.pcap)
            printf 'dump\t--protocol\tfle\t--port\t2783\t--port\t2784\t--port\t2785\n'
            printf 'dump\t--protocol\tzab\t--port\t2780\t--port\t2781\t--port\t2782\t--format\tjson\n'
            printf 'dump\t--protocol\tauto\t--show\n'
            printf 'elections\t--fle-port\t2783\t--zab-port\t2780\n'
            printf 'elections\t--protocol\tauto\n' ;; # a usage error
    esac
}

total=0
differ=0
for f in "${captures[@]}"; do
    echo "  $f" >&2
    while IFS=$'\t' read -r -a args; do
        total=$((total + 1))
        for side in old new; do
            set +e
            "$WORK/$side/zkscope" "${args[0]}" -r "$f" "${args[@]:1}" \
                >"$WORK/$side.out" 2>"$WORK/$side.err" </dev/null
            echo "exit $?" >>"$WORK/$side.err"
            set -e
        done
        if ! cmp -s "$WORK/old.out" "$WORK/new.out" || ! cmp -s "$WORK/old.err" "$WORK/new.err"; then
            differ=$((differ + 1))
            echo "DIFFERENT: zkscope ${args[0]} -r $f ${args[*]:1}"
            diff <(cat "$WORK/old.out" "$WORK/old.err") <(cat "$WORK/new.out" "$WORK/new.err") | head -20 || true
        fi
    done < <(runs_for "$f")
done
# --help of every command must not change either.
for cmd in "" dump count latency digest elections monitor; do
    total=$((total + 1))
    if ! cmp -s <("$WORK/old/zkscope" $cmd --help 2>&1) <("$WORK/new/zkscope" $cmd --help 2>&1); then
        differ=$((differ + 1))
        echo "DIFFERENT: zkscope $cmd --help"
        diff <("$WORK/old/zkscope" $cmd --help 2>&1) <("$WORK/new/zkscope" $cmd --help 2>&1) | head -20 || true
    fi
done
echo "compare-outputs: $total runs on ${#captures[@]} captures, $differ different"
[ "$differ" = 0 ]
