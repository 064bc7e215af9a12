#!/bin/bash
# testhost.sh - run a REAL systemd (PID 1 of its own PID/mount/UTS/IPC/cgroup/net
# namespaces) on a host whose PID 1 is not systemd, for integration tests of a D-Bus client.
#
#   testhost.sh start  NAME [IPSUFFIX]   # boot instance, wait until ready, print connect info
#   testhost.sh stop   NAME              # clean shutdown + teardown of everything it created
#   testhost.sh reboot|poweroff|poweron NAME   # the same root: off and on again, off, on
#   testhost.sh status NAME
#   testhost.sh shell  NAME [cmd...]     # run a command inside the instance (nsenter)
#
# Must run as root (real root in the initial user namespace) on Linux with overlayfs and cgroup2
# mounted either at /sys/fs/cgroup (unified) or /sys/fs/cgroup/unified (hybrid).
# Needs: systemd (the binary that gets booted), dbus (system bus inside), util-linux (unshare,
# nsenter, setpriv, pivot_root, mountpoint, flock), bsdutils (script), iproute2 (netns/veth/bridge),
# busctl (from systemd). All present on a stock Debian bookworm with systemd; nothing else to install.
#
# SAFETY: never boot systemd directly on the host's root fs. sysinit.target runs
# systemd-tmpfiles --create --remove --boot, and Debian's tmp.conf has "D /tmp" => it wipes /tmp.
# Here the instance's / is an overlay (lower = host /, upper = tmpfs) and /tmp, /run, /dev are
# private tmpfs, so nothing the instance writes reaches the host fs.
#
# Layout per instance (BASE defaults to /tmp/houston-th, override with TESTHOST_BASE):
#   $BASE/NAME/layer     tmpfs holding the overlay upper/work dirs (all writes of the instance)
#   $BASE/NAME/root      overlay: lower=/ (host root fs, never modified), upper=layer/upper
#   $BASE/NAME/root/run  tmpfs = the instance's /run  (its sockets are reachable from the host here)
#   $BASE/NAME/env       shell-sourceable connection info
set -euo pipefail

BASE=${TESTHOST_BASE:-/tmp/houston-th}   # the same default as the demo and the tests
SELF=$(readlink -f "$0")
BRIDGE=${TESTHOST_BRIDGE:-thbr0}
SUBNET=${TESTHOST_SUBNET:-10.77.0}          # bridge gets .1, instance gets .$IPSUFFIX
BOOT_TIMEOUT=${TESTHOST_BOOT_TIMEOUT:-30}
LOG_TARGET=${TESTHOST_LOG_TARGET:-journal-or-kmsg}   # "console" => manager log goes to $D/console.log
LOCK=$BASE.lock

die() { echo "ERROR: $*" >&2; exit 1; }

cgroup2_root() {
  if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then echo /sys/fs/cgroup
  elif [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then echo /sys/fs/cgroup/unified
  else die "no cgroup2 hierarchy found (need /sys/fs/cgroup or /sys/fs/cgroup/unified as cgroup2)"; fi
}

now_ms() { date +%s%3N; }

# ---------------------------------------------------------------------------------------------
# Runs as PID 1 of the new PID namespace, inside the new mount/uts/ipc/cgroup namespaces and the
# instance netns. Builds the container's API filesystems, pivots into the overlay root, execs systemd.
inner() {
  local NAME=$1 D=$BASE/$1 ROOT=$BASE/$1/root
  # /proc for the new pid namespace; /proc/sys (and sysrq-trigger if present) read-only so that
  # systemd-sysctl/binfmt etc. cannot touch global kernel state (same as systemd-nspawn does).
  mount -t proc -o nosuid,nodev,noexec proc "$ROOT/proc"
  for p in sys sysrq-trigger; do
    [ -e "$ROOT/proc/$p" ] || continue
    mount --bind "$ROOT/proc/$p" "$ROOT/proc/$p"
    mount -o remount,bind,ro "$ROOT/proc/$p"
  done
  # fresh sysfs (shows this netns' devices), read-only => udev-ish units skip themselves
  mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$ROOT/sys"
  # cgroup2 mounted inside our cgroup namespace => its root is this instance's own cgroup
  mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$ROOT/sys/fs/cgroup"
  # private minimal /dev
  mount -t tmpfs -o mode=755,nosuid,size=4m tmpfs "$ROOT/dev"
  mknod -m 666 "$ROOT/dev/null" c 1 3;    mknod -m 666 "$ROOT/dev/zero" c 1 5
  mknod -m 666 "$ROOT/dev/full" c 1 7;    mknod -m 666 "$ROOT/dev/random" c 1 8
  mknod -m 666 "$ROOT/dev/urandom" c 1 9; mknod -m 666 "$ROOT/dev/tty" c 5 0
  mkdir -p "$ROOT/dev/pts" "$ROOT/dev/shm" "$ROOT/dev/mqueue" "$ROOT/dev/hugepages"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$ROOT/dev/pts"
  ln -s pts/ptmx "$ROOT/dev/ptmx"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$ROOT/dev/shm"
  ln -s /proc/self/fd "$ROOT/dev/fd"; ln -s /proc/self/fd/0 "$ROOT/dev/stdin"
  ln -s /proc/self/fd/1 "$ROOT/dev/stdout"; ln -s /proc/self/fd/2 "$ROOT/dev/stderr"
  # /dev/console := the pty that script(1) gave us; everything printed there lands in console.log
  touch "$ROOT/dev/console"
  if tty -s; then mount --bind "$(tty)" "$ROOT/dev/console"; fi
  # private /tmp (systemd-tmpfiles --remove empties /tmp at boot!)
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$ROOT/tmp"
  cd "$ROOT"
  mkdir -p .th-oldroot
  pivot_root . .th-oldroot
  umount -l /.th-oldroot
  rmdir /.th-oldroot
  # (dbus-daemon logs "Failed to set fd limit to 65536: Operation not permitted" when the inherited
  #  hard RLIMIT_NOFILE is < 65536 and CAP_SYS_RESOURCE is missing; harmless. Raise it if we can.)
  ulimit -Hn 524288 2>/dev/null || true
  # Drop the capabilities systemd-nspawn also drops, so host-global knobs stay untouched.
  exec /usr/bin/env -i container=houston-testhost "container_host_name=$NAME" \
       PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
       /usr/bin/setpriv --bounding-set -sys_module,-sys_time,-sys_rawio,-syslog,-wake_alarm,-block_suspend,-mac_admin,-mac_override,-sys_pacct \
       /lib/systemd/systemd --system --log-target="$LOG_TARGET"
}

# ---------------------------------------------------------------------------------------------
start() {
  local NAME=$1 IPS=${2:-}
  [ "$(id -u)" = 0 ] || die "must be root"
  [[ "$NAME" =~ ^[a-z0-9][a-z0-9-]{0,9}$ ]] || die "NAME must match [a-z0-9][a-z0-9-]{0,9}"
  local D=$BASE/$NAME ROOT=$BASE/$NAME/root LAYER=$BASE/$NAME/layer
  [ -e "$D" ] && die "instance $NAME exists ($D); run: $SELF stop $NAME"
  # AF_UNIX paths are limited to 107 bytes: $ROOT/run/dbus/system_bus_socket must fit
  [ ${#ROOT} -le 80 ] || die "path $ROOT too long for unix sockets; set TESTHOST_BASE to a shorter dir"
  local CG2; CG2=$(cgroup2_root)
  local CG=$CG2/th-$NAME NS=th-$NAME
  local T0; T0=$(now_ms)
  mkdir -p "$ROOT" "$LAYER"
  : > "$D/console.log"
  trap 'echo "start of $NAME failed; clean up with: $SELF stop $NAME" >&2' ERR

  # 1. writable layer (tmpfs) + overlay root on top of the host root fs
  mount -t tmpfs -o mode=755 "th-$NAME-layer" "$LAYER"
  mkdir -p "$LAYER/upper" "$LAYER/work"
  local U=$LAYER/upper
  mkdir -p "$U/etc/systemd/system" "$U/etc/systemd/journald.conf.d"
  echo "$NAME" > "$U/etc/hostname"
  systemd-id128 new > "$U/etc/machine-id"          # own machine-id => not "first boot", own journal
  printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n' > "$U/etc/systemd/journald.conf.d/testhost.conf"
  # minimal boot target: basic.target (sysinit, sockets, timers...) + the system D-Bus
  cat > "$U/etc/systemd/system/testhost.target" <<'EOF'
[Unit]
Description=integration-test host
Requires=basic.target
Wants=dbus.service
After=basic.target dbus.service
AllowIsolate=yes
EOF
  ln -sf testhost.target "$U/etc/systemd/system/default.target"
  # mask host-enabled timers/units that make no sense in a test instance
  for u in /etc/systemd/system/timers.target.wants/*.timer; do
    [ -e "$u" ] && ln -sf /dev/null "$U/etc/systemd/system/$(basename "$u")"
  done
  for u in systemd-tmpfiles-clean.timer getty@tty1.service console-getty.service; do
    ln -sf /dev/null "$U/etc/systemd/system/$u"
  done
  mount -t overlay -o "lowerdir=/,upperdir=$U,workdir=$LAYER/work" "th-$NAME-root" "$ROOT"
  # the instance's /run, mounted here in the host mount ns so its sockets are reachable from the host
  mount -t tmpfs -o mode=755,nosuid,nodev "th-$NAME-run" "$ROOT/run"

  # 2. network namespace + veth onto a host bridge
  local NETENTER=()
  if [ "${TESTHOST_NONET:-0}" != 1 ]; then
    exec 9>"$LOCK"; flock 9       # serialise bridge creation / IP picking for parallel starts
    if [ -z "$IPS" ]; then
      IPS=11; while grep -qx "$SUBNET.$IPS" "$BASE"/*/ip 2>/dev/null; do IPS=$((IPS + 1)); done
    fi
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
      ip link add "$BRIDGE" type bridge
      ip addr add "$SUBNET.1/24" dev "$BRIDGE"
      ip link set "$BRIDGE" up
    fi
    echo "$SUBNET.$IPS" > "$D/ip"
    exec 9>&-
    ip netns add "$NS"
    ip link add "th-$NAME" type veth peer name eth0 netns "$NS"
    ip link set "th-$NAME" master "$BRIDGE" up
    ip -n "$NS" link set lo up
    ip -n "$NS" addr add "$SUBNET.$IPS/24" dev eth0
    ip -n "$NS" link set eth0 up
    ip -n "$NS" route add default via "$SUBNET.1"
    NETENTER=(nsenter "--net=/run/netns/$NS")
  fi
  # name lookups inside go to the copied resolv.conf, which nothing answers: anything resolving its
  # own hostname would stall ~10 s. Give the host its own /etc/hosts.
  printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n%s %s\n' "$( [ -f "$D/ip" ] && cat "$D/ip" || echo 127.0.1.1)" "$NAME" > "$ROOT/etc/hosts"

  # 3. own cgroup (becomes the cgroup-namespace root = systemd's "/" inside)
  mkdir -p "$CG"
  echo "$CG" > "$D/cgroup"

  boot_instance "$NAME" "$CG" "$T0" "${NETENTER[@]}"
}

# Steps 4-5 of start, and all of a reboot: launch the namespace's systemd on the existing root and
# wait for it. boot_instance NAME CGROUP T0 [nsenter --net=...]
boot_instance() {
  local NAME=$1 CG=$2 T0=$3; shift 3
  local NETENTER=("$@") D=$BASE/$NAME ROOT=$BASE/$NAME/root NS=th-$NAME
  # 4. launch under script(1) (a pty => systemd gets a real /dev/console, logged to console.log);
  #    __launch -> unshare (new pid/mount/uts/ipc ns) -> __cgroup (PID 1 joins the instance cgroup,
  #    new cgroup ns) -> __inner (API filesystems, pivot_root) -> exec systemd
  setsid script -qfec "$(printf '%q ' "$SELF" __launch "$NAME" "$CG" "${NETENTER[@]}")" "$D/console.log" \
    </dev/null >/dev/null 2>&1 &
  # host pid of the namespace's PID 1 (= systemd after exec) is the child of unshare
  local SPID="" UPID=""
  for _ in $(seq 500); do
    [ -z "$UPID" ] && UPID=$(cat "$D/unshare.pid" 2>/dev/null || true)
    [ -n "$UPID" ] && SPID=$(awk '{print $1}' "/proc/$UPID/task/$UPID/children" 2>/dev/null || true)
    [ -n "$SPID" ] && break
    sleep 0.01
  done
  [ -n "$SPID" ] || die "unshare child did not appear; see $D/console.log"
  echo "$SPID" > "$D/pid"

  # 5. wait until the manager is up and reachable on the system bus inside the instance
  local SYSBUS="unix:path=$ROOT/run/dbus/system_bus_socket" PRIV="unix:path=$ROOT/run/systemd/private"
  local state="" deadline=$(( $(date +%s) + BOOT_TIMEOUT )) TPRIV=""
  while :; do
    kill -0 "$SPID" 2>/dev/null || die "instance died during boot; see $D/console.log"
    if [ -z "$TPRIV" ] && [ -S "$ROOT/run/systemd/private" ]; then TPRIV=$(now_ms); fi
    if [ -S "$ROOT/run/dbus/system_bus_socket" ]; then
      state=$(busctl --address="$SYSBUS" get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 \
                org.freedesktop.systemd1.Manager SystemState 2>/dev/null | awk '{print $2}' | tr -d '"') || true
      case "$state" in running|degraded) break;; esac
    fi
    [ "$(date +%s)" -lt "$deadline" ] || die "timeout waiting for boot (state='$state'); see $D/console.log"
    sleep 0.05
  done
  local T1; T1=$(now_ms)
  cat > "$D/env" <<EOF
TESTHOST_NAME=$NAME
TESTHOST_PID=$SPID
TESTHOST_ROOT=$ROOT
TESTHOST_NETNS=${NETENTER:+$NS}
TESTHOST_IP=$(cat "$D/ip" 2>/dev/null || true)
DBUS_SYSTEM_BUS_ADDRESS=$SYSBUS
TESTHOST_PRIVATE_ADDRESS=$PRIV
TESTHOST_BOOT_MS=$((T1 - T0))
TESTHOST_PRIVATE_SOCKET_MS=$(( ${TPRIV:-$T1} - T0 ))
EOF
  echo "instance $NAME is up (SystemState=$state) in $((T1 - T0)) ms"
  echo "  systemd host PID : $SPID   ($SELF shell $NAME <cmd>  ==  nsenter -t $SPID -a <cmd>)"
  echo "  system bus       : DBUS_SYSTEM_BUS_ADDRESS=$SYSBUS"
  echo "  manager p2p sock : $PRIV   (peer-to-peer, no bus daemon)"
  echo "  unit dir (host)  : $ROOT/etc/systemd/system  == /etc/systemd/system inside"
  echo "  runtime units    : $ROOT/run/systemd/system  == /run/systemd/system inside"
  if [ ${#NETENTER[@]} -gt 0 ]; then
    echo "  network          : netns $NS, eth0 $(cat "$D/ip")/24, bridge $BRIDGE ($SUBNET.1)"
  fi
  echo "  env file         : $D/env   (set -a; . $D/env; set +a)"
}


# ---------------------------------------------------------------------------------------------
# Shuts the instance's systemd down (poweroff) and waits for the namespace to end.
poweroff_instance() {
  local D=$BASE/$1 SPID UPID
  SPID=$(cat "$D/pid" 2>/dev/null || true); UPID=$(cat "$D/unshare.pid" 2>/dev/null || true)
  # only signal SPID if it is still the child of our unshare (guards against PID reuse)
  if [ -n "$SPID" ] && [ -n "$UPID" ] && [ "$(awk '{print $4}' "/proc/$SPID/stat" 2>/dev/null)" = "$UPID" ]; then
    # clean shutdown: SIGRTMIN+4 == "systemctl poweroff" for a system manager; in a PID namespace
    # systemd-shutdown finally calls reboot(2), which just ends the namespace.
    kill -s RTMIN+4 "$SPID" || true
    for _ in $(seq 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SPID" 2>/dev/null; then
      echo "graceful poweroff timed out, SIGKILL to namespace PID 1 ($SPID)" >&2
      kill -KILL "$SPID" || true     # kills every process of the pid namespace
    fi
  fi
  # unshare exits right after its child; it may linger as a zombie until the host's PID 1 reaps it
  if [ -n "$UPID" ]; then
    for _ in $(seq 50); do
      { [ -e "/proc/$UPID" ] && [ "$(awk '{print $3}' "/proc/$UPID/stat" 2>/dev/null)" != Z ]; } || break
      sleep 0.1
    done
  fi
}

# A reboot: poweroff, then boot the same root again (its overlay layer is the host's disk and
# survives; /run is volatile and starts empty), same address and network namespace.
reboot_instance() {
  local NAME=$1 D=$BASE/$1
  [ -f "$D/env" ] || die "no instance $NAME"
  poweroff_instance "$NAME"
  poweron_instance "$NAME"
}

# A host that loses power (every process of it killed at once, nothing shut down cleanly) and
# stays off until `poweron`.
poweroff_only() {
  local NAME=$1 D=$BASE/$1 SPID UPID
  [ -f "$D/env" ] || die "no instance $NAME"
  SPID=$(cat "$D/pid" 2>/dev/null || true); UPID=$(cat "$D/unshare.pid" 2>/dev/null || true)
  if [ -n "$SPID" ] && [ -n "$UPID" ] && [ "$(awk '{print $4}' "/proc/$SPID/stat" 2>/dev/null)" = "$UPID" ]; then
    kill -KILL "$SPID" || true
    for _ in $(seq 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
  fi
  poweroff_instance "$NAME"   # reaps what is left
  touch "$D/off"
}

# Boots a host that is off again (the second half of a reboot).
poweron_instance() {
  local NAME=$1 D=$BASE/$1 ROOT=$BASE/$1/root
  [ -f "$D/env" ] || die "no instance $NAME"
  rm -f "$D/off"
  local T0; T0=$(now_ms)
  if mountpoint -q "$ROOT/run"; then umount -l "$ROOT/run"; fi
  mount -t tmpfs -o mode=755,nosuid,nodev "th-$NAME-run" "$ROOT/run"
  local CG; CG=$(cat "$D/cgroup")
  for _ in $(seq 50); do
    find "$CG" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ -z "$(find "$CG" -mindepth 1 -type d 2>/dev/null)" ] && break; sleep 0.1
  done
  rm -f "$D/pid" "$D/unshare.pid"
  local NETENTER=()
  [ -e "/run/netns/th-$NAME" ] && NETENTER=(nsenter "--net=/run/netns/th-$NAME")
  boot_instance "$NAME" "$CG" "$T0" "${NETENTER[@]}"
}

# ---------------------------------------------------------------------------------------------
stop() {
  local NAME=$1 D=$BASE/$1 ROOT=$BASE/$1/root LAYER=$BASE/$1/layer
  [ -d "$D" ] || { echo "no instance $NAME"; return 0; }
  local T0; T0=$(now_ms)
  poweroff_instance "$NAME"
  local T1; T1=$(now_ms)
  if mountpoint -q "$ROOT/run"; then umount -l "$ROOT/run"; fi
  if mountpoint -q "$ROOT"; then umount -l "$ROOT"; fi
  if mountpoint -q "$LAYER"; then umount -l "$LAYER"; fi
  local CG; CG=$(cat "$D/cgroup" 2>/dev/null || true)
  if [ -n "$CG" ] && [ -d "$CG" ]; then
    for _ in $(seq 50); do
      find "$CG" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [ -d "$CG" ] || break; sleep 0.1
    done
    if [ -d "$CG" ]; then echo "WARNING: could not remove cgroup $CG" >&2; fi
  fi
  ip link del "th-$NAME" 2>/dev/null || true
  ip netns del "th-$NAME" 2>/dev/null || true
  rm -rf --one-file-system "$D"
  # remove the bridge when the last instance is gone
  exec 9>"$LOCK"; flock 9
  if [ -z "$(ls -A "$BASE" 2>/dev/null)" ] && ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link del "$BRIDGE"
  fi
  exec 9>&-
  echo "instance $NAME stopped and removed in $(( $(now_ms) - T0 )) ms (poweroff $((T1 - T0)) ms)"
}

status() {
  local D=$BASE/$1
  [ -f "$D/env" ] || { echo "no instance $1"; return 1; }
  # shellcheck disable=SC1091
  . "$D/env"
  busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 \
    org.freedesktop.systemd1.Manager SystemState
}

shell() {
  local NAME=$1; shift
  local SPID; SPID=$(cat "$BASE/$NAME/pid")
  # the caller's TMPDIR names a directory of this machine, not of the instance (podman fails on it)
  exec nsenter -t "$SPID" -a env -u TMPDIR "${@:-/bin/bash}"
}

launch() {   # __launch NAME CGROUP [nsenter --net=...]
  local NAME=$1 CG=$2; shift 2
  echo $$ > "$BASE/$NAME/unshare.pid"
  exec "$@" unshare --pid --fork --kill-child --mount --uts --ipc --propagation private \
    "$SELF" __cgroup "$NAME" "$CG"
}

enter_cgroup() {   # __cgroup NAME CGROUP: runs as PID 1 of the new pid ns
  # Only the namespace's PID 1 moves into the instance cgroup (the unshare parent stays outside),
  # then a new cgroup namespace rooted there is created (unshare(2) without fork) and we go on.
  echo 0 > "$2/cgroup.procs"
  exec unshare --cgroup "$SELF" __inner "$1"
}

case "${1:-}" in
  start)   shift; start "$@";;
  stop)    shift; stop "$@";;
  reboot)  shift; reboot_instance "$@";;
  poweroff) shift; poweroff_only "$@";;
  poweron) shift; poweron_instance "$@";;
  status)  shift; status "$@";;
  shell)   shift; shell "$@";;
  __launch) shift; launch "$@";;
  __cgroup) shift; enter_cgroup "$@";;
  __inner) shift; inner "$@";;
  *) echo "usage: $0 start NAME [IPSUFFIX] | stop NAME | reboot NAME | poweroff NAME | poweron NAME | status NAME | shell NAME [cmd...]" >&2; exit 2;;
esac
