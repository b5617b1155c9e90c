#!/usr/bin/env bash
# Installs what the benchmarks need besides the test dependencies: valgrind (bench.sh
# --callgrind/--profile), GNU time (wall time and peak RSS), tcpreplay (tcpreplay and
# tcprewrite) and iptables (bench-live.sh). Idempotent: apt-get only runs for missing packages.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -E"; fi
missing=()
for p in valgrind time tcpreplay iptables tcpdump; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "[install-bench-deps] installing: ${missing[*]}" >&2
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "[install-bench-deps] already installed" >&2
fi
