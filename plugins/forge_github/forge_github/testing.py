"""A GitHub stand-in for tests: the commit status endpoints, on a loopback port.

``POST /repos/{owner}/{repo}/statuses/{sha}`` stores a status (201) after checking the token and
the body as GitHub does; ``GET /repos/{owner}/{repo}/commits/{sha}/statuses`` lists them, newest
first. ``stop()`` closes the port (GitHub is down); ``start()`` opens the same port again.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from forge_core.testing.http import JsonHandler

POST_STATUS = re.compile(r"^/repos/([^/]+/[^/]+)/statuses/([0-9a-f]{7,64})$")
GET_STATUSES = re.compile(r"^/repos/([^/]+/[^/]+)/commits/([0-9a-f]{7,64})/statuses$")
STATES = {"error", "failure", "pending", "success"}


@dataclass
class GithubStandIn:
    token: str | None = None
    port: int = 0
    statuses: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def received(self, repository: str, sha: str) -> list[dict[str, Any]]:
        """The statuses of a commit in the order they arrived."""
        return list(self.statuses.get((repository, sha), []))

    def start(self) -> GithubStandIn:
        if not self.port:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> GithubStandIn:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _handler(stand_in: GithubStandIn) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(JsonHandler):

        def _authorised(self) -> bool:
            if stand_in.token is None:
                return True
            accepted = (f"Bearer {stand_in.token}", f"token {stand_in.token}")
            if self.headers.get("Authorization") in accepted:
                return True
            self._reply(401, {"message": "Bad credentials"})
            return False

        def do_POST(self) -> None:
            match = POST_STATUS.match(self.path)
            if not match:
                self._reply(404, {"message": "Not Found"})
                return
            if not self._authorised():
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            except ValueError:
                self._reply(400, {"message": "Problems parsing JSON"})
                return
            if not isinstance(body, dict) or body.get("state") not in STATES:
                invalid = [{"field": "state", "code": "invalid"}]
                self._reply(422, {"message": "Validation Failed", "errors": invalid})
                return
            status = {
                "state": body["state"], "context": body.get("context", "default"),
                "description": body.get("description"), "target_url": body.get("target_url"),
            }
            with lock:
                stored = stand_in.statuses.setdefault((match[1], match[2]), [])
                status["id"] = len(stored) + 1
                stored.append(status)
            self._reply(201, status)

        def do_GET(self) -> None:
            match = GET_STATUSES.match(self.path)
            if not match:
                self._reply(404, {"message": "Not Found"})
                return
            if self._authorised():
                self._reply(200, list(reversed(stand_in.received(match[1], match[2]))))

    return Handler
