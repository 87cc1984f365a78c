#!/usr/bin/env bash
# Make the Python virtualenv with kubernetes-validate (scripts/kubernetes/venv), pinned in
# requirements.txt; tests/deploy_kubernetes.rs validates deploy/kubernetes/ with it.
# Idempotent: does nothing when the venv already has the pinned version. python3 with the
# venv module is installed by scripts/celery/setup.sh, which test.sh runs first.
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
want="$(sed -n 's/^kubernetes-validate==//p' requirements.txt)"
if [ -x venv/bin/kubernetes-validate ] && [ "$(venv/bin/kubernetes-validate --version 2>/dev/null)" = "$want" ]; then
  echo "kubernetes/setup.sh: venv ready (kubernetes-validate $want)"
  exit 0
fi
"$PY" -m venv venv
venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
echo "kubernetes/setup.sh: venv ready (kubernetes-validate $(venv/bin/kubernetes-validate --version))"
