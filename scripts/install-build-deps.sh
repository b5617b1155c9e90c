#!/usr/bin/env bash
# What building zkscope needs beyond Rust: libpcap's headers (the `pcap` crate links libpcap).
# Idempotent; run as root on Debian/Ubuntu.
set -euo pipefail
if ! dpkg-query -W -f='${Status}' libpcap-dev 2>/dev/null | grep -q "install ok installed"; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends libpcap-dev >/dev/null
fi
