# whisk: one image for every role (WHISK_ROLE=controller | invoker | standalone). Build it with `make image`
# (deploy/image.sh), which stages the build context: wheels/ (whisk and its dependencies, made by `pip wheel` from
# this checkout), tools/pip.whl (pip itself, run from its wheel) and an empty data/ folder. No registry and no
# package index is reached during the build; docs/operations.md explains the choices.
#
# BASE: whisk/base-python:3.11 (Debian's Python 3.11 made locally by config/runtimes/build.sh, no shell, no pip) or
# python:3.11-slim (WHISK_IMAGE_BASE=official, where a registry answers). Exec-form instructions only.
ARG BASE=whisk/base-python:3.11

FROM ${BASE} AS install
LABEL whisk.stage=install
COPY tools/ /tmp/tools/
COPY wheels/ /tmp/wheels/
# Installed by the image's own interpreter, so that every wheel is checked against the Python that will run it.
RUN ["python3", "/tmp/tools/pip.whl/pip", "install", "--no-index", "--find-links", "/tmp/wheels", \
     "--target", "/opt/whisk/site", "--no-warn-script-location", "--disable-pip-version-check", "whisk"]

FROM ${BASE}
COPY --from=install /opt/whisk/site /opt/whisk/site
# The data folder (sqlite store of a standalone server) belongs to the server's user; mount a volume here.
COPY --chown=10001:10001 data/ /var/lib/whisk/
ENV PYTHONPATH=/opt/whisk/site \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/whisk \
    WHISK_ROLE=standalone \
    WHISK_HOST=0.0.0.0 \
    WHISK_PORT=3233 \
    WHISK_DATA_DIR=/var/lib/whisk \
    WHISK_LOG_FORMAT=json \
    WHISK_RUNTIMES_DIR=/opt/whisk/runtimes
# The python:3.11 action environment of process:// containers (docs/runtimes.md): the staged packages, made a
# virtualenv of the image's Python and stamped. Node.js actions need docker:// (the image has no node).
COPY runtimes/ /opt/whisk/runtimes/
RUN ["python3", "-m", "whisk.runtimes.environments", "seal", "python:3.11"]
# A numeric user: the locally made base has no /etc/passwd entry to name.
USER 10001:10001
WORKDIR /var/lib/whisk
VOLUME ["/var/lib/whisk"]
# The API; 3232 is the playground of a standalone server (docs/operations.md)
EXPOSE 3233 3232
# Alive = /ping answers (readiness, with the backends, is /health: for the orchestrator's own probes).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["python3", "-c", "import os, ssl, urllib.request as r; s = 'https' if os.environ.get('WHISK_TLS_CERT') else 'http'; r.urlopen(s + '://127.0.0.1:' + os.environ.get('WHISK_PORT', '3233') + '/ping', timeout=2, context=ssl._create_unverified_context())"]
# The server drains on SIGTERM (a second one stops it at once); run with --init so that the action proxies it
# starts as child processes (WHISK_CONTAINERS=process://) are reaped.
STOPSIGNAL SIGTERM
ENTRYPOINT ["python3", "-m", "whisk"]
CMD ["serve"]
LABEL org.opencontainers.image.title="whisk" \
      org.opencontainers.image.description="An Apache OpenWhisk-compatible function-as-a-service platform" \
      org.opencontainers.image.licenses="Apache-2.0"
