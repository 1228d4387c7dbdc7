#!/usr/bin/env bash
# Make sure a headless Chromium exists for the HTML report's browser test (packages/experiments).
# Debian's package is the one this project uses (the npm registry and Debian's archive are all a
# fresh machine can reach; playwright's own browser download is not available). Idempotent.
set -euo pipefail
browser="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ -x "$browser" ]; then exit 0; fi
echo "ensure-chromium: $browser not found; installing Debian's chromium" >&2
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif command -v sudo > /dev/null && sudo -n true 2> /dev/null; then
  SUDO="sudo -n"
else
  echo "ensure-chromium: need root (or passwordless sudo) to apt-get install chromium;" \
    "or set CHROMIUM_PATH to an existing Chromium" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium > /dev/null
[ -x "$browser" ] || { echo "ensure-chromium: install finished but $browser is missing" >&2; exit 1; }
