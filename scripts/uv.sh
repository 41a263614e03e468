#!/usr/bin/env bash
# Run the uv that pyproject.toml's [tool.uv] required-version names, installing it first into
# .tools/uv (pip, from the package index) when neither PATH nor .tools has that exact version.
# Usage: scripts/uv.sh <uv arguments>, e.g. `scripts/uv.sh lock`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "uv.sh: the lab needs Python 3.11 or newer as python3 on PATH" >&2
  exit 1
fi
wanted=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["tool"]["uv"]["required-version"].removeprefix("=="))')
tool=.tools/uv

version_of() { "$1" --version 2>/dev/null | cut -d' ' -f2; }

if command -v uv >/dev/null && [[ $(version_of uv) == "$wanted" ]]; then
  uv=uv
else
  uv=$tool/bin/uv
  if [[ ! -x $uv || $(version_of "$uv") != "$wanted" ]]; then
    echo "uv.sh: installing uv $wanted into $tool" >&2
    python3 -m venv --clear "$tool"
    "$tool/bin/pip" install --quiet --disable-pip-version-check "uv==$wanted"
  fi
fi

# Never download a Python: the project runs on the python3 this machine has (>= 3.11).
export UV_PYTHON_DOWNLOADS=never
exec "$uv" "$@"
