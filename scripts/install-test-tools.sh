#!/usr/bin/env bash
# Installs what the test suite needs beyond the servers, when it is missing. Idempotent.
# - Headless Chromium (Debian's `chromium`): report.html's layout is checked in a real
#   browser at a reader's window width (src/report/browser_tests.rs).
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
  echo "install-test-tools: chromium is present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-test-tools: need root (or sudo) to install: ${need[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-test-tools: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "install-test-tools: done"
