#!/usr/bin/env bash
# install-fleet.sh DEST   (the project uses DEST=.fleet; npm test calls it)
# The real fleet v1.0.0 for the fleet tests: fleetd/fleetctl from ../shared/fleet/bin (static
# binaries built unmodified from fleet's source) and Debian's etcd 3.4 (fleet speaks etcd's v2 API),
# installed by ../shared/fleet/install-etcd.sh into DEST without touching the system.
# Where ../shared/fleet is missing it says so and exits 0: the fleet tests then say loudly that
# they were skipped, and why.
set -euo pipefail
DEST=${1:?usage: install-fleet.sh DEST}
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${HOUSTON_FLEET_DIR:-$HERE/../../shared/fleet}
if [ ! -x "$SHARED/bin/fleetd" ] || [ ! -x "$SHARED/install-etcd.sh" ]; then
  echo "install-fleet.sh: no fleet at $SHARED (set HOUSTON_FLEET_DIR): the fleet tests will be SKIPPED" >&2
  exit 0
fi
mkdir -p "$DEST/bin"
cp -f "$SHARED/bin/fleetd" "$SHARED/bin/fleetctl" "$DEST/bin/"
bash "$SHARED/install-etcd.sh" "$DEST"
echo "fleet v1.0.0 and etcd in $DEST/bin; cluster recipe: $SHARED/cluster-up.sh"
