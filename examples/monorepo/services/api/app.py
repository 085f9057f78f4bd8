"""The orders API: a tiny HTTP service (standard library only)."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "1.2.0"
ORDERS = {"1001": {"id": "1001", "item": "widget", "quantity": 3}}


def route(path: str) -> tuple[int, dict[str, object]]:
    """The status and JSON body for a GET of ``path``."""
    if path == "/health":
        return 200, {"status": "ok", "version": VERSION}
    if path.startswith("/orders/"):
        order = ORDERS.get(path.removeprefix("/orders/"))
        return (200, order) if order else (404, {"error": "no such order"})
    return 404, {"error": "not found"}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = route(self.path)
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def main(port: int = 8080) -> None:
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
