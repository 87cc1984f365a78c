#!/usr/bin/env bash
# Make the Python virtualenv for a real Celery worker (scripts/celery/venv): celery and
# redis from PyPI, versions pinned in requirements.txt. Idempotent: does nothing when the
# venv already has them. A topology with `[workers] kind = "celery"` uses it.
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
if ! command -v "$PY" >/dev/null 2>&1 || ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
  # Debian splits venv/ensurepip into python3-venv.
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    echo "celery/setup.sh: installing python3 and python3-venv"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 python3-venv >/dev/null
    PY=python3
  else
    echo "celery/setup.sh: $PY with the venv module is missing (install python3 and python3-venv)" >&2
    exit 1
  fi
fi
if [ -x venv/bin/python ] && venv/bin/python -c 'import celery, redis' 2>/dev/null; then
  echo "celery/setup.sh: venv ready ($(venv/bin/python -c 'import celery; print("celery", celery.__version__)'))"
  exit 0
fi
"$PY" -m venv venv
venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
echo "celery/setup.sh: venv ready ($(venv/bin/python -c 'import celery; print("celery", celery.__version__)'))"
