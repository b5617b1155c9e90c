#!/usr/bin/env bash
# Install everything zkscope's test suite needs on a Debian 12 machine
# (Rust itself is assumed present).
#
#   * libpcap-dev      – the `pcap` crate links against libpcap
#   * zookeeper        – Debian's ZooKeeper 3.8 (jars in /usr/share/java)
#   * tcpdump          – reference captures in integration tests
#   * tshark           – optional (editcap for pcapng fixtures, verification);
#                        skip with ZKSCOPE_SKIP_TSHARK=1
#   * python3-venv     – venv with `kazoo` for the Python workloads
#   * python3-aiosmtpd – a real SMTP server for `zkscope monitor`'s email tests
#   * prometheus-alertmanager – a real Alertmanager for `zkscope monitor`'s tests
#                        (its service is not started here; tests run their own)
#   * openssl          – certificates for the monitor's STARTTLS test
#   * prometheus       – a real Prometheus scraping `zkscope serve` (and promtool,
#                        which checks /metrics and contrib/ alerting rules); its
#                        service is not needed (tests run their own)
#   * python3-prometheus-client – an OpenMetrics parser for /metrics
#   * wrk              – an HTTP load generator for `zkscope serve`'s load test
#   * systemd          – systemd-analyze checks contrib/'s unit files
#   * jq               – the README's examples pipe into it (tests/readme.rs runs them)
#   * libcap2-bin      – setcap: the README's capture-without-root recipe is tested
#   * tmux             – a real terminal for `zkscope top`'s end-to-end tests
#
# Idempotent and quick when everything is already there: apt-get update and
# apt-get install only run when a package is missing; pip only runs when the
# venv cannot import the pinned kazoo version.
#
# Environment:
#   ZKSCOPE_VENV          venv location (default /opt/zkscope-venv)
#   ZKSCOPE_SKIP_TSHARK=1 do not install tshark
set -euo pipefail

VENV="${ZKSCOPE_VENV:-/opt/zkscope-venv}"
KAZOO_VERSION="2.11.0"
export DEBIAN_FRONTEND=noninteractive

log() { printf '[install-test-deps] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -E"
    fi
fi

pkgs=(libpcap-dev zookeeper tcpdump python3-venv ca-certificates
      python3-aiosmtpd prometheus-alertmanager openssl prometheus
      python3-prometheus-client wrk systemd jq)
pkgs+=(libcap2-bin)
pkgs+=(tmux)
if [ "${ZKSCOPE_SKIP_TSHARK:-0}" != "1" ]; then
    pkgs+=(tshark)
fi

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    log "installing: ${missing[*]}"
    # tshark asks whether non-root users may capture; answer "no" up front.
    echo "wireshark-common wireshark-common/install-setuid boolean false" |
        $SUDO debconf-set-selections 2>/dev/null || true
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" >/dev/null
else
    log "apt packages already installed"
fi

# Sanity: the ZooKeeper jars and a java binary must be there.
for f in /usr/share/java/zookeeper.jar /usr/share/java/zookeeper-jute.jar \
         /usr/share/java/slf4j-simple.jar; do
    [ -f "$f" ] || { log "missing $f after installing zookeeper"; exit 1; }
done
command -v java >/dev/null || { log "java not found"; exit 1; }
command -v tcpdump >/dev/null || [ -x /usr/bin/tcpdump ] || [ -x /usr/sbin/tcpdump ] ||
    { log "tcpdump not found"; exit 1; }
[ -x /usr/bin/prometheus-alertmanager ] || { log "prometheus-alertmanager not found"; exit 1; }
for b in /usr/bin/prometheus /usr/bin/promtool /usr/bin/wrk; do
    [ -x "$b" ] || { log "$b not found"; exit 1; }
done
/usr/bin/python3 -c "import prometheus_client.openmetrics.parser" 2>/dev/null ||
    { log "python3-prometheus-client not importable"; exit 1; }
/usr/bin/python3 -c "import aiosmtpd" 2>/dev/null || { log "python3-aiosmtpd not importable"; exit 1; }
# Debian's prometheus-alertmanager ships a service on port 9093; tests start their own
# Alertmanager on free ports, so it is not needed (stopped if systemd started it).
for svc in prometheus-alertmanager prometheus prometheus-node-exporter; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
        $SUDO systemctl stop "$svc" || true
    fi
done

# The Debian package ships a ZooKeeper service; it is not needed (and on a
# machine with systemd it would hold port 2181). Tests always use free ports,
# so leave it alone apart from not starting it here.

# Python venv with kazoo. Use Debian's interpreter explicitly (a pyenv shim
# may shadow `python3` on PATH).
PY=/usr/bin/python3
if [ -x "$VENV/bin/python" ] &&
   "$VENV/bin/python" -c "import kazoo, importlib.metadata as m, sys; sys.exit(m.version('kazoo') != '$KAZOO_VERSION')" 2>/dev/null; then
    log "venv $VENV already has kazoo $KAZOO_VERSION"
else
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating venv $VENV"
        $SUDO "$PY" -m venv "$VENV"
    fi
    log "installing kazoo==$KAZOO_VERSION into $VENV"
    $SUDO "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        "kazoo==$KAZOO_VERSION"
    "$VENV/bin/python" -c "import kazoo" || { log "kazoo import failed"; exit 1; }
fi

log "ok"
