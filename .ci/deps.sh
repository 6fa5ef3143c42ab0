#!/usr/bin/env bash
# Installs the non-Python test dependencies; each step is skipped when already present.
set -euo pipefail
cd "$(dirname "$0")/.."
apt_install() {
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    if ((${#missing[@]})); then
        echo "deps: apt-get install ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}
command -v node >/dev/null || apt_install nodejs npm
# curl: the web action tests check that an answer reads exactly as the action made it with a client nobody here wrote.
command -v curl >/dev/null || apt_install curl
# The official OpenWhisk JavaScript client, to prove compatibility with a client nobody here wrote; playwright-core
# drives Debian's chromium (below) in the playground tests (it downloads no browser of its own).
if [ ! -d tests/node/node_modules/openwhisk ] || [ ! -d tests/node/node_modules/playwright-core ]; then
    echo "deps: npm install (tests/node)"
    (cd tests/node && npm install --no-audit --no-fund --loglevel=error)
fi
# The official Go client of OpenWhisk (what `wsk` and wskdeploy are built on), for tests/clients/test_openwhisk_go.py,
# which builds its driver from the module cache only: the modules go.sum names are fetched here, when go is installed.
if command -v go >/dev/null; then
    echo "deps: go mod download (tests/clients/goclient)"
    (cd tests/clients/goclient && go mod download)
fi
# pouchdb-server stands in for CouchDB in the store tests (docs/testing.md); --in-memory needs no install scripts.
if [ ! -x .ci/work/pouchdb/node_modules/.bin/pouchdb-server ]; then
    echo "deps: npm install pouchdb-server (.ci/work/pouchdb)"
    mkdir -p .ci/work/pouchdb
    (cd .ci/work/pouchdb && npm install --no-audit --no-fund --loglevel=error --ignore-scripts --no-save pouchdb-server@4.2.0)
fi
# openwhisk-composer's compose and deploy, for the conductor-action tests (tests/clients/test_composer.py): a client
# nobody here wrote, whose conductor code needs the runtime's bundled `openwhisk` module.
if [ ! -x .ci/work/composer/node_modules/.bin/compose ]; then
    echo "deps: npm install openwhisk-composer (.ci/work/composer)"
    mkdir -p .ci/work/composer
    (cd .ci/work/composer && npm install --no-audit --no-fund --loglevel=error --no-save openwhisk-composer@0.12.0)
fi
# The Serverless Framework with its OpenWhisk provider plugin (tests/clients/test_serverless_openwhisk.py): another
# client nobody here wrote. Framework 2: osls 4, the open framework that followed 3, refuses the plugin's options.
sls=.ci/work/serverless/node_modules
if [ ! -x $sls/.bin/serverless ] || [ ! -d $sls/serverless-openwhisk ]; then
    echo "deps: npm install serverless with serverless-openwhisk (.ci/work/serverless)"
    mkdir -p .ci/work/serverless
    (cd .ci/work/serverless && npm install --no-audit --no-fund --loglevel=error --no-save serverless@2.72.4 \
        serverless-openwhisk@0.18.4)
fi
# Docker for the docker:// backend's tests (docs/testing.md, Docker): the test session starts its own dockerd, and
# config/runtimes/build.sh makes the runtime base images with mmdebstrap from the host's apt sources.
apt_install docker.io mmdebstrap
# bubblewrap: the sandbox of process:// containers (whisk/containers/process/sandbox.py); setpriv comes with util-linux.
apt_install bubblewrap
# nginx for the TLS front tests (config/nginx/): the tests start it themselves on loopback ports; openssl makes the
# self-signed certificate (config/nginx/make-cert.sh).
apt_install nginx openssl
# A browser for the playground tests (headless, driven by playwright-core), and Prometheus with promtool for the
# monitoring tests (deploy/prometheus/): the tests start both themselves on loopback and stop them.
prometheus_was_missing=0
dpkg -s prometheus >/dev/null 2>&1 || prometheus_was_missing=1
apt_install chromium prometheus
# Where an init system runs, the package starts its own service on :9090; nothing here uses it, so one this script
# installed is stopped and disabled again.
if ((prometheus_was_missing)) && command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    echo "deps: stop the prometheus service the package started (the tests start their own)"
    systemctl disable --now prometheus >/dev/null
fi
# Apache Kafka for the bus tests and the cluster benchmarks: the broker's jars from Maven Central (.ci/kafka/pom.xml)
# into .ci/work/kafka/libs; tests/support/kafka_broker.py runs it with the JDK (KRaft, one node, loopback).
command -v java >/dev/null || apt_install openjdk-17-jre-headless
command -v mvn >/dev/null || apt_install maven
kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' .ci/kafka/pom.xml)
if [ ! -f ".ci/work/kafka/libs/kafka_2.13-$kafka_version.jar" ]; then
    echo "deps: Apache Kafka $kafka_version from Maven Central (mvn dependency:copy-dependencies -> .ci/work/kafka/libs)"
    rm -rf .ci/work/kafka/libs
    mvn -B -ntp -Dstyle.color=never -f .ci/kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$PWD/.ci/work/kafka/libs" | grep -E '^\[(INFO|ERROR)\] (Copying|BUILD|Failed|---)|ERROR' || true
    test -f ".ci/work/kafka/libs/kafka_2.13-$kafka_version.jar" || { echo "deps: Kafka $kafka_version not installed" >&2; exit 1; }
fi
