#!/usr/bin/env bash
# Prepare this checkout: .venv with the project installed, and the binaries the native stack
# runs (Prometheus, Alertmanager, nginx), and wrk for the benchmarks. Safe to re-run: it only
# does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
stamp=$venv/.installed-pyproject.sha256

if [[ ! -x $venv/bin/python ]]; then
  echo "setup: creating $venv"
  python3 -m venv "$venv"
fi

# Reinstall only when the dependencies may have changed.
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -f $stamp || $(<"$stamp") != "$wanted" ]]; then
  echo "setup: installing the project and its dependencies into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -e '.[dev]'
  echo "$wanted" >"$stamp"
fi

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
