"""A blackbox action image's server for the tests: knows nothing of whisk, serves /init and /run on port 8080.

Standard library only. It answers /run with what it got and a little about where it runs, and prints one line
and the sentinels per activation, as a runtime that is "native" to OpenWhisk does.
"""

import json
import os
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
state = {"init": None}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path == "/init":
            state["init"] = body.get("value", {})
            self.answer(200, {"ok": True})
            return
        value = body.get("value", {})
        print("blackbox ran with", json.dumps(value), flush=True)
        result = {"blackbox": True, "value": value, "code": (state["init"] or {}).get("code"),
                  "proxy_socket": os.environ.get("WHISK_PROXY_SOCKET")}
        if value.get("call"):       # the API host, as the environment names it
            api_host = ((state["init"] or {}).get("env") or {}).get("__OW_API_HOST") or os.environ["__OW_API_HOST"]
            try:
                with urllib.request.urlopen(api_host + value["call"], timeout=10) as answer:
                    result["called"] = {"url": api_host, "status": answer.status, "body": json.load(answer)}
            except OSError as exc:
                result["called"] = {"url": api_host, "error": repr(exc)}
        if value.get("no_sentinels"):
            self.answer(200, result)
            return
        print(SENTINEL, flush=True)
        print(SENTINEL, file=sys.stderr, flush=True)
        self.answer(200, result)

    def answer(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


HTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
