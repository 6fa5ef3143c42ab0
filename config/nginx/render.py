#!/usr/bin/env python3
r"""Render whisk's nginx configuration into a folder of its own (standard library only).

    python3 config/nginx/render.py --out /tmp/whisk-nginx --https 0.0.0.0:443 --http 0.0.0.0:80 \
        --upstream 127.0.0.1:3233 [--upstream 10.0.0.2:3233 ...] --cert cert.pem --key key.pem
    nginx -p /tmp/whisk-nginx -e /tmp/whisk-nginx/error.log -c /tmp/whisk-nginx/nginx.conf

Writes OUT/nginx.conf (a whole configuration, every file it writes kept in OUT) and OUT/whisk.conf (the http-level
part, which a container's own nginx.conf can include instead). Only ${WHISK_NGINX_*} placeholders are replaced, and
every one must have a value, so nginx's own $variables pass through untouched. docs/operations.md has the rest.
"""

from __future__ import annotations

import argparse
import grp
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLACEHOLDER = re.compile(r"\$\{(WHISK_NGINX_[A-Z0-9_]+)\}")


def render(text: str, values: dict[str, str]) -> str:
    missing = sorted({name for name in PLACEHOLDER.findall(text) if name not in values})
    if missing:
        raise KeyError(f"no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def _port(listen: str) -> str:
    # The address is the first word: parameters may follow (`[::]:443 ipv6only=off`, both families).
    return listen.split()[0].rsplit(":", 1)[-1]


def _worker_user() -> str:
    """nginx started by root runs its workers as `nobody`, whose group Debian names `nogroup`."""
    if os.geteuid() != 0:
        return "# not root: the workers run as the user who started nginx"
    for group in ("nogroup", "nobody"):
        try:
            grp.getgrnam(group)
        except KeyError:
            continue
        return f"user nobody {group};"
    return "user nobody;"


def values_from(args: argparse.Namespace) -> dict[str, str]:
    out = Path(args.out).resolve()
    servers = "\n    ".join(f"server {u} max_fails=1 fail_timeout=5s;" for u in args.upstream)
    return {
        "WHISK_NGINX_PREFIX": str(out),
        "WHISK_NGINX_USER": _worker_user(),
        "WHISK_NGINX_HTTPS_LISTEN": args.https,
        "WHISK_NGINX_HTTP_LISTEN": args.http,
        "WHISK_NGINX_REDIRECT_PORT": args.redirect_port or _port(args.https),
        "WHISK_NGINX_UPSTREAM_SERVERS": servers,
        "WHISK_NGINX_CERT": str(Path(args.cert).resolve()),
        "WHISK_NGINX_KEY": str(Path(args.key).resolve()),
        "WHISK_NGINX_ACCESS_LOG": args.access_log or str(out / "access.log"),
    }


def write(out: Path, values: dict[str, str]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    # Workers (nobody, when root starts nginx) must reach the temp folders nginx makes inside the prefix.
    out.chmod(0o755)
    (out / "whisk.conf").write_text(render((HERE / "whisk.conf.template").read_text(), values))
    conf = out / "nginx.conf"
    conf.write_text(render((HERE / "nginx.conf.template").read_text(), values))
    return conf


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for nginx.conf, whisk.conf, logs, pid and temp files")
    parser.add_argument("--https", default="443", help="HTTPS listen address ([host:]port, nginx's listen parameters "
                        "may follow: '[::]:443 ipv6only=off' is both IPv6 and IPv4), default 443")
    parser.add_argument("--http", default="80", help="HTTP listen address that redirects to HTTPS, default 80")
    parser.add_argument("--redirect-port", help="the HTTPS port clients reach, default the --https port")
    parser.add_argument("--upstream", action="append", required=True,
                        help="a controller's host:port; repeat for each controller")
    parser.add_argument("--cert", required=True, help="PEM certificate (chain) file")
    parser.add_argument("--key", required=True, help="PEM private key file")
    parser.add_argument("--access-log", help="access log path (JSON lines), default OUT/access.log")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    conf = write(out, values_from(args))
    print(f"nginx -p {out.resolve()} -e {out.resolve()}/error.log -c {conf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
