"""Small HTTP servers for tests of clients: stand-ins for services that cannot run here."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet request handler answering JSON; subclasses add ``do_GET``/``do_POST``/…"""

    def log_message(self, *_: Any) -> None:
        return None

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
