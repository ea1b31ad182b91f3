#!/usr/bin/env bash
# Make a virtualenv holding kubesealpy, the independent implementation of the Sealed Secrets format that the
# compatibility tests decrypt our output with. Idempotent; prints the venv's python.
#   usage: setup-kubesealpy.sh [VENV_DIR]   (default: $KUBESEALPY_VENV, else target/tmp/kubesealpy-venv)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-${KUBESEALPY_VENV:-$here/../../target/tmp/kubesealpy-venv}}"
mkdir -p "$(dirname "$venv")"
# Test processes may run this concurrently: one installs, the others wait.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$venv.lock"
  flock 9
fi
if ! "$venv/bin/python" -c 'import kubesealpy' >/dev/null 2>&1; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check kubesealpy==1.0.1 >&2
fi
echo "$venv/bin/python"
