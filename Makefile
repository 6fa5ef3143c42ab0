# make run   — start the standalone platform (creates .venv and installs whisk first)
# make test  — install what the tests need (Python, npm and Debian packages) and run the whole suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test venv test-deps clean help images runtimes sandbox

help:
	@echo "make run    start standalone whisk (WHISK_PORT, WHISK_DATA_DIR, ... configure it; see README)"
	@echo "make test   install the test dependencies and run the whole suite"
	@echo "make images build the action runtime images against DOCKER_HOST (no registry needed)"
	@echo "make runtimes install the packages actions can import (.runtimes/, docs/runtimes.md); run and test do it"
	@echo "make image  build the whisk image (Dockerfile; WHISK_IMAGE tag) against DOCKER_HOST"
	@echo "make venv   create .venv and install whisk with its dev dependencies (run and test do it)"
	@echo "make test-deps install what the tests need beyond Python (.ci/deps.sh) and the action environments"
	@echo "make sandbox install bwrap for the process:// sandbox when missing, as root (run does it)"
	@echo "make clean  remove .venv, .runtimes, tests/node/node_modules and build leftovers"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The action environments of the process:// backend (docs/runtimes.md): quick when up to date.
runtimes: $(STAMP)
	$(PY) -m whisk.runtimes.environments install

run: $(STAMP) sandbox runtimes
	$(VENV)/bin/whisk

# bwrap for the process:// sandbox (docs/architecture.md): installed when missing and root; otherwise whisk refuses
# to start untrusted code and says what to do.
sandbox:
	@command -v bwrap >/dev/null || if [ "$$(id -u)" = 0 ]; then \
		echo "run: apt-get install bubblewrap (the sandbox of process:// containers)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bubblewrap >/dev/null; \
	else echo "run: bwrap is missing: as root, apt-get install bubblewrap (or WHISK_TRUST_ALL_CODE=true if all code is trusted)"; fi

# Everything the suite needs beyond Python: each backend's installer is idempotent and quick when present.
test-deps: $(STAMP)
	bash .ci/deps.sh
	$(PY) -m whisk.runtimes.environments install

test: test-deps
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

# The runtime images for WHISK_CONTAINERS=docker://, built with no registry (config/runtimes/README.md); the Docker
# tests build them into their own daemon.
images:
	bash config/runtimes/build.sh

# The whisk image (top-level Dockerfile, every role) against DOCKER_HOST, no registry: deploy/image.sh stages wheels
# of this checkout and builds on the locally made base (WHISK_IMAGE_BASE=official: python:3.11-slim instead).
.PHONY: image
image: $(STAMP)
	bash deploy/image.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache tests/node/node_modules .runtimes
