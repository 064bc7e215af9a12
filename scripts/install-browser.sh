#!/usr/bin/env bash
# Installs Debian's chromium (for the Consul UI browser test) unless it is there already.
# playwright-core drives it (npm devDependency); no browser is ever downloaded by a test tool.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ]; then echo "install-browser.sh: chromium is missing and installing it needs root (apt-get install chromium)" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
command -v chromium >/dev/null 2>&1 || { echo "install-browser.sh: chromium did not install" >&2; exit 1; }
echo "installed $(chromium --version 2>/dev/null | head -1)"
