#!/usr/bin/env bash
# Builds the action runtime images against $DOCKER_HOST with no registry (`make images`):
#   whisk/action-python-v3.11:latest   the project's Python proxy (whisk/runtimes/python/) on Python 3.11
#   whisk/action-nodejs-v20:latest     the project's Node.js proxy (whisk/runtimes/nodejs/) on Node.js 20
#   whisk/relay:latest                 the unix-socket relay for images that only listen on 8080 (relay/relay.py)
# WHISK_IMAGE_BASE=local (default) makes the base images here (docs/testing.md, Base images):
#   python: `mmdebstrap --variant=extract` of Debian's python3 from the host's own apt sources, piped into
#           `docker import`; when no mirror answers, a copy of the host's /usr/bin/python3.11 and its stdlib.
#   nodejs: a copy of the host's node v20 binary and the libraries `ldd` lists (Debian bookworm's nodejs is v18,
#           and the kind is nodejs:20); without a host node 20, Debian's nodejs via mmdebstrap, with a warning.
# WHISK_IMAGE_BASE=official builds FROM python:3.11-slim and node:20-slim instead (needs a reachable registry).
# WHISK_IMAGE_METHOD=host skips mmdebstrap and copies the host's python (no mirror at all).
# The images hold no user: the invoker runs each container as a numeric, unprivileged uid of its own, on a read-only
# root with a tmpfs at /tmp, so every file here is readable by all and the proxies write only under /tmp.
# The action images carry the packages of their kind's environment in runtimes.json (what OpenWhisk's runtime images
# bundle), installed by whisk.runtimes.environments into $WHISK_IMAGE_CACHE/packages/<kind>-<hash> once (wheels for
# cp311 manylinux x86_64; npm packages) and copied in: site-packages for Python, /opt/whisk-env/node_modules (NODE_PATH)
# for Node.js.
# Every image carries the label whisk.inputs=<hash of its inputs>; an image whose label matches is not rebuilt.
# Base root file systems are cached as tar files in $WHISK_IMAGE_CACHE (default ~/.cache/whisk/rootfs), so a new
# daemon (each test session starts its own) only imports them.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DOCKER=/usr/bin/docker                        # Debian's CLI; /usr/local/bin/docker may be a newer client
[ -x "$DOCKER" ] || DOCKER=docker
export DOCKER_BUILDKIT=0                      # the legacy builder works offline (docs/testing.md, Base images)
BASE=${WHISK_IMAGE_BASE:-local}
METHOD=${WHISK_IMAGE_METHOD:-auto}
CACHE=${WHISK_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/whisk/rootfs}
RECIPE=1                                      # bump to force new base images
PY=python3.11
# The Python that runs whisk.runtimes.environments (stdlib only, but its `stage` needs pip): the checkout's .venv.
RUNNER=${WHISK_PYTHON:-$REPO/.venv/bin/python}
[ -x "$RUNNER" ] || RUNNER=python3
T0=$(date +%s%N)

log() { echo "images: $*"; }
die() { echo "images: $*" >&2; exit 1; }
short_hash() { sha256sum | cut -c1-16; }
label_of() { "$DOCKER" image inspect -f '{{index .Config.Labels "whisk.inputs"}}' "$1" 2>/dev/null || true; }
elapsed() { echo "$(( ($(date +%s%N) - T0) / 1000000 )) ms"; }

"$DOCKER" version >/dev/null 2>&1 || die "no Docker daemon answers at ${DOCKER_HOST:-the default socket}"
mkdir -p "$CACHE"

apt_sources() {
    local f
    for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
        [ -s "$f" ] && { echo "$f"; return 0; }
    done
    return 1
}
codename() { . /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}"; }

# mmdebstrap_rootfs OUT PACKAGES [EXTRACT-HOOK]: a Debian root file system as a tar, from the host's apt sources
# (passing the sources file as the mirror keeps the mirror's address out of every file here).
mmdebstrap_rootfs() {
    local out=$1 packages=$2 hook=${3:-} src
    command -v mmdebstrap >/dev/null || return 1
    src=$(apt_sources) || return 1
    [ "$(codename)" = bookworm ] || return 1  # the kinds are python:3.11 and nodejs:20: bookworm's versions
    local args=(--quiet --variant=extract --format=tar --include="$packages"
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
        --dpkgopt='path-exclude=/usr/share/locale/*')
    [ -n "$hook" ] && args+=(--extract-hook="$hook")
    mmdebstrap "${args[@]}" bookworm "$out.part" "$src" && mv "$out.part" "$out"
}

# copy_libs ROOT FILE...: the shared libraries FILE... need, copied from the host into ROOT.
copy_libs() {
    local root=$1; shift
    for f in "$@"; do ldd "$f" 2>/dev/null || true; done \
        | awk '$2=="=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}' | sort -u \
        | while read -r lib; do mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; done
    # the dynamic loader is looked up by its absolute path in each binary
}

host_python_rootfs() {
    local out=$1 root py
    py=$(readlink -f /usr/bin/$PY 2>/dev/null) || return 1
    [ -x "$py" ] && [ -d /usr/lib/$PY ] || return 1    # a Debian- or Ubuntu-layout system python only
    root=$(mktemp -d); mkdir -p "$root/tmp" "$root/usr/bin"; chmod 1777 "$root/tmp"
    tar -C / --exclude=usr/lib/$PY/test --exclude=usr/lib/$PY/idlelib --exclude=usr/lib/$PY/tkinter \
        --exclude=usr/lib/$PY/ensurepip --exclude=usr/lib/$PY/lib2to3 --exclude=usr/lib/$PY/site-packages \
        --exclude=usr/lib/$PY/dist-packages -cf - usr/lib/$PY | tar -C "$root" -xf -
    cp -a "$py" "$root/usr/bin/"; ln -sf "$(basename "$py")" "$root/usr/bin/python3"
    copy_libs "$root" "$py" "$root"/usr/lib/$PY/lib-dynload/*.so
    tar -C "$root" -cf "$out.part" . && mv "$out.part" "$out"; rm -rf "$root"
}

host_node_rootfs() {
    local out=$1 root node
    node=$(readlink -f "$(command -v node 2>/dev/null)" 2>/dev/null) || return 1
    root=$(mktemp -d); mkdir -p "$root/tmp" "$root/usr/bin"; chmod 1777 "$root/tmp"
    cp -a "$node" "$root/usr/bin/node"
    copy_libs "$root" "$node"
    tar -C "$root" -cf "$out.part" . && mv "$out.part" "$out"; rm -rf "$root"
}

host_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# import_base TAG KEY MAKER [ENV...]: import the cached rootfs for KEY (made by MAKER when absent) as TAG.
import_base() {
    local tag=$1 key=$2 maker=$3; shift 3
    local tar="$CACHE/$key.tar" changes=(-c "LABEL whisk.inputs=$key")
    local env; for env in "$@"; do changes+=(-c "ENV $env"); done
    if [ ! -s "$tar" ]; then
        log "making $tag root file system ($maker)"
        (flock 9; [ -s "$tar" ] || "$maker" "$tar") 9>"$CACHE/.lock" || { rm -f "$tar.part"; return 1; }
    fi
    "$DOCKER" import "${changes[@]}" "$tar" "$tag" >/dev/null || return 1
    log "imported $tag ($(du -h "$tar" | cut -f1) root file system, key $key, $(elapsed))"
}

python_base() {
    local tag=whisk/base-python:3.11 src mm host have
    have=$(label_of $tag)
    src=$(apt_sources 2>/dev/null || true)
    mm=$( { echo "python-mmdebstrap $RECIPE $(codename)"; [ -n "$src" ] && cat "$src"; } | short_hash)
    host=$( { echo "python-host $RECIPE"; sha256sum "$(readlink -f /usr/bin/$PY 2>/dev/null || echo /dev/null)"; } \
        | short_hash)
    mm=python-mm-$mm; host=python-host-$host
    [ "$METHOD" = host ] && mm=$host
    if [ -n "$have" ] && { [ "$have" = "$mm" ] || [ "$have" = "$host" ]; }; then
        log "$tag is up to date"; return
    fi
    # compileall halves the container cold start, and --customize-hook does not run for extract (docs/testing.md).
    make_mm() { mmdebstrap_rootfs "$1" python3 "chroot \"\$1\" /usr/bin/$PY -m compileall -q /usr/lib/$PY >/dev/null"; }
    { [ "$METHOD" != host ] && import_base $tag $mm make_mm PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1; } \
        || import_base $tag $host host_python_rootfs PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
        || die "cannot make $tag: no Debian mirror answered and no /usr/bin/$PY; try WHISK_IMAGE_BASE=official"
}

nodejs_base() {
    local tag=whisk/base-nodejs:20 key have
    have=$(label_of $tag)
    if [ "$(host_node_major)" = 20 ]; then
        key=$( { echo "nodejs-host $RECIPE"; sha256sum "$(readlink -f "$(command -v node)")"; } | short_hash)
        key=nodejs-host-$key
        [ "$have" = "$key" ] && { log "$tag is up to date"; return; }
        import_base $tag $key host_node_rootfs && return
    fi
    echo "images: WARNING: no node v20 on this host; $tag gets Debian's nodejs (v18) for kind nodejs:20" >&2
    key=nodejs-mm-$( { echo "nodejs-mmdebstrap $RECIPE $(codename)"; cat "$(apt_sources)"; } | short_hash)
    [ "$have" = "$key" ] && { log "$tag is up to date"; return; }
    make_mm() { mmdebstrap_rootfs "$1" nodejs; }
    import_base $tag $key make_mm || die "cannot make $tag; try WHISK_IMAGE_BASE=official"
}

# packages KIND: the folder of KIND's environment packages, staged once per list of packages (see the top).
packages() {
    local kind=$1 hash dir
    hash=$(cd "$REPO" && "$RUNNER" -m whisk.runtimes.environments hash "$kind") || die "cannot read the manifest"
    dir="$CACHE/packages/${kind//:/-}-$hash"
    if [ ! -f "$dir/.staged" ]; then
        log "installing the $kind packages into $dir" >&2
        mkdir -p "$CACHE/packages"
        (cd "$REPO" && "$RUNNER" -m whisk.runtimes.environments stage "$kind" "$dir.part") >&2 \
            || die "cannot install the $kind packages (runtimes.json)"
        rm -rf "$dir"; mv "$dir.part" "$dir"; touch "$dir/.staged"
    fi
    echo "$dir"
}

# layer TAG DOCKERFILE-DIR BASE-IMAGE SOURCE...: build TAG from DIR/Dockerfile with the files in a clean context (the
# repository itself is too big to send as one), unless its inputs are unchanged. A SOURCE folder goes to proxy/, a
# NAME=FOLDER to NAME/, a file beside the Dockerfile.
layer() {
    local tag=$1 dir=$2 base=$3; shift 3
    local ctx base_id key named=()
    ctx=$(mktemp -d)
    cp "$HERE/$dir/Dockerfile" "$ctx/"
    for src in "$@"; do
        if [[ $src == *=* ]]; then          # a staged folder: its path (with its inputs' hash) stands for its content
            named+=("$src")
        elif [ -d "$src" ]; then
            mkdir -p "$ctx/proxy"
            tar -C "$src" --exclude=__pycache__ --exclude='*.pyc' --exclude=node_modules --exclude=constraints.txt \
                -cf - . \
                | tar -C "$ctx/proxy" -xf -
        else
            cp "$src" "$ctx/"
        fi
    done
    # Containers run as an unprivileged uid of their own (whisk/containers/docker/security.py): whatever the umask of
    # the checkout, the files in the image must be readable (and folders searchable) by any user, and writable by none.
    chmod -R a+rX,go-w "$ctx"
    if [ "$BASE" = official ]; then
        base_id=$base                                   # pulled by the build; the tag stands for its inputs
    else
        base_id=$("$DOCKER" image inspect -f '{{.Id}}' "$base")
    fi
    key=$( { echo "$base_id"; printf '%s\n' "${named[@]}"
             tar -C "$ctx" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - .; } \
        | short_hash)
    if [ "$(label_of "$tag")" = "$key" ]; then
        log "$tag is up to date"; rm -rf "$ctx"; return
    fi
    for src in "${named[@]}"; do cp -a "${src#*=}" "$ctx/${src%%=*}"; done
    chmod -R a+rX,go-w "$ctx"                           # the staged packages too, whatever made them
    "$DOCKER" build --quiet --build-arg "BASE=$base" "${BUILD_ARGS[@]}" --label "whisk.inputs=$key" -t "$tag" "$ctx" \
        >/dev/null \
        || { rm -rf "$ctx"; die "docker build of $tag failed"; }
    rm -rf "$ctx"
    log "built $tag (key $key, $(elapsed))"
}

for f in "$REPO/whisk/runtimes/python/proxy.py" "$REPO/whisk/runtimes/nodejs/proxy.js"; do
    [ -f "$f" ] || die "missing $f"
done
case $BASE in
    local)
        python_base; nodejs_base
        py_base=whisk/base-python:3.11; node_base=whisk/base-nodejs:20 ;;
    official)
        py_base=python:3.11-slim; node_base=node:20-slim ;;
    *) die "WHISK_IMAGE_BASE must be local or official, not $BASE" ;;
esac
py_packages=$(packages python:3.11); node_packages=$(packages nodejs:20)
BUILD_ARGS=()
# python:3.11-slim's own Python reads /usr/local/lib/python3.11/site-packages; Debian's, dist-packages
[ "$BASE" = official ] && BUILD_ARGS=(--build-arg SITE_PACKAGES=/usr/local/lib/python3.11/site-packages)
layer whisk/action-python-v3.11:latest python $py_base "$REPO/whisk/runtimes/python" "site-packages=$py_packages"
BUILD_ARGS=()
layer whisk/action-nodejs-v20:latest nodejs $node_base "$REPO/whisk/runtimes/nodejs" \
    "node_modules=$node_packages/node_modules"
layer whisk/relay:latest relay $py_base "$HERE/relay/relay.py"
# Images replaced by a rebuild are left untagged; drop them.
"$DOCKER" image prune -f --filter label=whisk.inputs >/dev/null
log "done in $(elapsed)"
