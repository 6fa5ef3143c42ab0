"""The floor of the side-by-side benchmark: a minimal aiohttp server answering `POST /run` with its JSON body.

It is what any HTTP function server costs at least (one request parsed, one JSON body decoded and encoded), so
each platform's overhead is measured against it. Run as its own process, as the platforms are:

    python -m bench._floor --port 8080
"""

from __future__ import annotations

import argparse

from aiohttp import web


async def run(request: web.Request) -> web.Response:
    return web.json_response(await request.json())


def main() -> None:
    p = argparse.ArgumentParser(description="A minimal aiohttp server answering POST /run with its JSON body.")
    p.add_argument("--port", type=int, required=True, help="loopback port to listen on")
    args = p.parse_args()
    app = web.Application()
    app.router.add_post("/run", run)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
