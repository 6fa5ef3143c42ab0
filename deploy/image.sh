#!/usr/bin/env bash
# Builds the whisk image (top-level Dockerfile) against $DOCKER_HOST with no registry: `make image`.
#   WHISK_IMAGE      the tag to build, default whisk/whisk:latest
#   WHISK_IMAGE_BASE local (default): the base is whisk/base-python:3.11, made here by config/runtimes/build.sh
#                    (which also builds the action runtime images an invoker with WHISK_CONTAINERS=docker:// uses);
#                    official: python:3.11-slim, pulled by the build (needs a reachable registry).
# The build context is staged in a temporary folder: `pip wheel` turns this checkout and its dependencies into
# wheels (from the package index pip is configured with, or its cache), and pip's own wheel is added to install
# them inside the image with --no-index. Only those files and the Dockerfile go to the daemon.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCKER=/usr/bin/docker                          # Debian's CLI (notes/DOCKER.md: /usr/local/bin/docker may differ)
[ -x "$DOCKER" ] || DOCKER=docker
export DOCKER_BUILDKIT=0                        # the legacy builder works offline
TAG=${WHISK_IMAGE:-whisk/whisk:latest}
BASE_KIND=${WHISK_IMAGE_BASE:-local}
PYTHON=${PYTHON:-python3}
[ -x "$REPO/.venv/bin/python" ] && PYTHON="$REPO/.venv/bin/python"
T0=$(date +%s%N)
log() { echo "image: $*"; }
elapsed() { echo "$(( ($(date +%s%N) - T0) / 1000000 )) ms"; }

"$DOCKER" version >/dev/null 2>&1 || { echo "image: no Docker daemon answers at ${DOCKER_HOST:-the default socket}" >&2; exit 1; }
case $BASE_KIND in
    local)
        WHISK_IMAGE_BASE=local bash "$REPO/config/runtimes/build.sh"
        base=whisk/base-python:3.11 ;;
    official) base=python:3.11-slim ;;
    *) echo "image: WHISK_IMAGE_BASE must be local or official, not $BASE_KIND" >&2; exit 1 ;;
esac

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/wheels" "$ctx/tools" "$ctx/data"
# A clean copy of the sources, so that a stale build/ or egg-info folder in the checkout cannot leak in.
src="$ctx/src"; mkdir -p "$src"
tar -C "$REPO" --exclude=__pycache__ --exclude='*.pyc' -cf - pyproject.toml README.md whisk | tar -C "$src" -xf -
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$ctx/wheels" "$src"
"$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: --dest "$ctx/tools" pip
mv "$ctx"/tools/pip-*.whl "$ctx/tools/pip.whl"
# The packages python actions import in the image's process:// containers (docs/runtimes.md): staged here as the
# site-packages of the python:3.11 environment, made a virtualenv and stamped inside the image (`seal`).
"$PYTHON" -m whisk.runtimes.environments stage python:3.11 "$ctx/runtimes/python-3.11/lib/python3.11/site-packages"
rm -rf "$src"
cp "$REPO/Dockerfile" "$ctx/Dockerfile"
log "context: $(ls "$ctx/wheels" | wc -l) wheels, $(du -sh "$ctx" | cut -f1) ($(elapsed))"
"$DOCKER" build --quiet --network none --build-arg "BASE=$base" -t "$TAG" "$ctx" >/dev/null
# The install stage is left untagged; drop it (and only it).
"$DOCKER" image prune -f --filter label=whisk.stage=install >/dev/null
log "built $TAG on $base: $("$DOCKER" image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1000000}') ($(elapsed))"
