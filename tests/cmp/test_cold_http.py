"""The cold path's HTTP/1.1 client against loopback servers that answer as registries and blob
stores may: chunked bodies, redirects to another host, kept-alive and closed connections, answers
over the limit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from forge_core.adapters.cmp_cold import Config, Limits, _Connection, _Doubt, _Registry

BODY = b"x" * 70_000


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str | None]]
    other: str = ""

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(BODY), 30_000):
                chunk = BODY[start:start + 30_000]
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/away":
            self.send_response(307)
            self.send_header("Location", f"http://{self.other}/chunked")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(BODY)
            self.close_connection = True
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

    def log_message(self, *_args: object) -> None:
        pass


def config(folder: Path, registry: str = "") -> Config:
    return Config(registry=registry, layout_dir=folder, cache_dir=folder, insecure=(), timeout=5,
                  limits=Limits(1, 1, 1), credentials=None)


@pytest.fixture
def servers() -> Iterator[tuple[str, str, list[tuple[str, str | None]]]]:
    seen: list[tuple[str, str | None]] = []
    started = []
    for _ in range(2):
        handler = type("H", (Handler,), {"seen": seen})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append((server, handler))
    (first, first_handler), (second, _) = started
    first_handler.other = f"127.0.0.1:{second.server_address[1]}"
    yield f"127.0.0.1:{first.server_address[1]}", f"127.0.0.1:{second.server_address[1]}", seen
    for server, _ in started:
        server.shutdown()
        server.server_close()


def test_bodies_by_length_chunks_and_close_on_one_kept_alive_connection(servers: tuple[str, str, list]) -> None:
    address, _, seen = servers
    connection = _Connection("http", address, config(Path("/nonexistent")))
    for path in ("/plain", "/chunked", "/plain", "/close", "/plain"):
        status, _headers, body = connection.get(path, {}, len(BODY))
        assert (status, body) == (200, BODY), path
    connection.close()
    assert [path for path, _ in seen] == ["/plain", "/chunked", "/plain", "/close", "/plain"]


def test_an_answer_over_the_limit_is_a_doubt(servers: tuple[str, str, list]) -> None:
    address, _, _ = servers
    for path in ("/plain", "/chunked"):
        with pytest.raises(_Doubt):
            _Connection("http", address, config(Path("/nonexistent"))).get(path, {}, len(BODY) - 1)


def test_credentials_do_not_follow_a_redirect_to_another_host(servers: tuple[str, str, list], tmp_path: Path) -> None:
    address, other, seen = servers
    registry = _Registry(config(tmp_path, address), "mono/api")
    registry.authorization = "Basic c2VjcmV0"
    status, _, body = registry._send(f"http://{address}/away", {}, len(BODY), to_registry=True)
    registry.close()
    assert (status, body) == (200, BODY)
    assert seen == [("/away", "Basic c2VjcmV0"), ("/chunked", None)]
    assert other != address
