#!/usr/bin/env bash
# npm run demo: installs Consul if needed, builds, then runs the local demo (scripts/demo.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-consul.sh .consul >/dev/null
node scripts/build.mjs >/dev/null
exec node --import tsx scripts/demo.ts "$@"
