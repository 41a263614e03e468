#!/usr/bin/env bash
# Prepare this checkout: .venv installed from uv.lock, the binaries the native stack runs
# (Prometheus, Alertmanager, nginx), wrk for the benchmarks and docker-compose to validate the
# compose file. Safe to re-run: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# .venv holds exactly what uv.lock names: the project (editable), its `grafana` extra and the
# `dev` group. uv does nothing when it already matches, and refuses (--locked) when
# pyproject.toml has changed since uv.lock was written: run `make lock` then.
scripts/uv.sh sync --locked --all-extras --quiet

# nginx lives in /usr/sbin, which is not on every user's PATH.
found() { PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null; }

missing_binaries() {
  local missing=()
  found prometheus || missing+=(prometheus)
  found promtool || missing+=(promtool)
  found prometheus-alertmanager || found alertmanager || missing+=(alertmanager)
  found amtool || missing+=(amtool)
  found nginx || missing+=(nginx)
  found wrk || missing+=(wrk)
  found docker-compose || missing+=(docker-compose)
  found chromium || missing+=(chromium)
  echo "${missing[@]}"
}

missing=$(missing_binaries)
if [[ -z $missing ]]; then
  exit 0
fi

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "setup: missing on PATH: $missing" >&2
  echo "setup: install them, e.g. on Debian/Ubuntu as root:" >&2
  echo "  apt-get install --no-install-recommends prometheus prometheus-alertmanager nginx-light wrk docker-compose chromium" >&2
  exit 1
fi

echo "setup: installing the stack's binaries with apt ($missing missing)"
apt-get update -qq
packages=(prometheus prometheus-alertmanager)
# Newer Debian releases fold nginx-light into nginx.
if apt-cache show nginx-light >/dev/null 2>&1; then packages+=(nginx-light); else packages+=(nginx); fi
found docker-compose || packages+=(docker-compose)
# The load tool of `make bench`.
found wrk || packages+=(wrk)
# The headless browser the oncall page's test renders it in.
found chromium || packages+=(chromium)
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"

# The packages start system services on the lab's own ports (9090, 9093, 80); obslab runs its
# own copies, so stop those when systemd runs them.
if [[ -d /run/systemd/system ]]; then
  for unit in prometheus prometheus-alertmanager nginx; do
    if systemctl is-enabled --quiet "$unit" 2>/dev/null; then
      echo "setup: stopping and disabling the system's $unit service (obslab runs its own)"
      systemctl disable --now --quiet "$unit"
    fi
  done
fi

missing=$(missing_binaries)
if [[ -n $missing ]]; then
  echo "setup: still missing after apt-get install: $missing" >&2
  exit 1
fi
