"""The plugin's fixtures: the session's pypiserver (from :mod:`forge_pypi.testing`), example-like
projects, and a flaky proxy in front of the index."""

from __future__ import annotations

import http.server
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from forge_pypi.testing import PASSWORD, USERNAME, Index, ProjectWriter, pypi_index, write_project

__all__ = ["PASSWORD", "USERNAME", "Index", "pypi_index", "write_project"]  # the session-scoped index fixture


@pytest.fixture
def python_project() -> ProjectWriter:
    """``python_project(folder, name=, version=, greeting=)`` writes an example-like project."""
    return write_project


@dataclass
class FlakyIndex:
    """A loopback proxy in front of the index that answers the first ``failures`` uploads 503."""

    url: str
    failures: int = 0
    refused: int = 0


@pytest.fixture
def flaky_index(pypi_index: Index) -> Iterator[FlakyIndex]:
    state = FlakyIndex(url="")

    class Proxy(http.server.BaseHTTPRequestHandler):
        def _forward(self, body: bytes | None) -> None:
            kept = ("authorization", "content-type", "accept")
            headers = {k: v for k, v in self.headers.items() if k.lower() in kept}
            upstream = urllib.request.Request(f"{pypi_index.url.rstrip('/')}{self.path}", data=body, headers=headers,
                                              method=self.command)
            try:
                with urllib.request.urlopen(upstream, timeout=30) as response:
                    status, payload, kind = response.status, response.read(), response.headers.get("Content-Type", "")
            except urllib.error.HTTPError as error:
                status, payload, kind = error.code, error.read(), error.headers.get("Content-Type", "")
            self._answer(status, payload, kind)

        def _answer(self, status: int, payload: bytes, kind: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._forward(None)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if state.failures > 0:
                state.failures -= 1
                state.refused += 1
                self._answer(503, b"index restarting")
                return
            self._forward(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
