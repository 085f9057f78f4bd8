"""A real pypiserver on a free loopback port for the session (htpasswd auth for uploads), and
example-like Python projects to build."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from passlib.apache import HtpasswdFile

USERNAME = "forge-uploader"
PASSWORD = "pypi-Pa55word-never-logged"


@dataclass(frozen=True)
class Index:
    url: str
    packages: Path
    username: str = USERNAME
    password: str = PASSWORD

    @property
    def simple(self) -> str:
        return f"{self.url}simple/"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def pypi_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    root = tmp_path_factory.mktemp("pypiserver")
    packages = root / "packages"
    packages.mkdir()
    htpasswd = HtpasswdFile(str(root / "htpasswd"), new=True)
    htpasswd.set_password(USERNAME, PASSWORD)
    htpasswd.save()
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "pypi-server"), "run", "-i", "127.0.0.1", "-p", str(port),
         "-a", "update", "-P", str(root / "htpasswd"), "--hash-algo", "sha256", str(packages)],
        stdout=(root / "server.log").open("wb"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}simple/", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pypiserver did not start: {(root / 'server.log').read_text()}") from None
                time.sleep(0.1)
        yield Index(url, packages)
    finally:
        server.terminate()
        server.wait(timeout=10)


ProjectWriter = Callable[..., Path]


@pytest.fixture
def python_project() -> ProjectWriter:
    """``python_project(folder, name=, version=, greeting=)`` writes an example-like project."""
    return write_project


def write_project(folder: Path, *, name: str, version: str, greeting: str = "Hello") -> Path:
    """A src-layout setuptools project like the example monorepo's greeting library."""
    package = folder / "src" / "greeting"
    package.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=70.1"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "{version}"
        description = "Greetings, politely formatted"
        requires-python = ">=3.9"

        [tool.setuptools.packages.find]
        where = ["src"]
        """))
    (package / "__init__.py").write_text(f'def greet(who: str) -> str:\n    return "{greeting}, " + who + "!"\n')
    return folder


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
