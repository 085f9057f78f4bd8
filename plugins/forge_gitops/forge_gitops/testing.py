"""Test kit: a GitOps remote over HTTP, served by ``git http-backend`` (CGI) behind a small
threaded ``http.server`` on 127.0.0.1 and a free port, with optional basic auth::

    from forge_gitops.testing import gitops_remote, gitops_remote_token  # in a conftest.py

The bare repository has an initial commit on ``main``, refuses non-fast-forward pushes and
deletions (a force push would fail loudly), and keeps a reflog of ``main`` so a test can check
that the history only ever moved forward. ``decline_pushes()`` installs a pre-receive hook that
refuses every push (a remote that keeps failing).
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

BACKEND = Path(subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True).stdout.strip())
TOKEN = "gitops-t0ken-s3cret"
USERNAME = "x-access-token"


def _git(git_dir: Path, *args: str, input: bytes | None = None) -> str:
    done = subprocess.run(["git", f"--git-dir={git_dir}", *args], input=input, capture_output=True, check=True)
    return done.stdout.decode()


def create_bare(path: Path, branch: str = "main") -> Path:
    """A bare repository at ``path`` with an empty initial commit on ``branch``."""
    subprocess.run(["git", "init", "--bare", "--quiet", f"--initial-branch={branch}", str(path)], check=True)
    for key, value in (("http.receivepack", "true"), ("receive.denyNonFastForwards", "true"),
                       ("receive.denyDeletes", "true"), ("core.logAllRefUpdates", "always")):
        _git(path, "config", key, value)
    tree = _git(path, "mktree", input=b"").strip()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    root = subprocess.run(["git", f"--git-dir={path}", "commit-tree", tree, "-m", "init"], env=env,
                          capture_output=True, check=True).stdout.decode().strip()
    _git(path, "update-ref", "-m", "init", f"refs/heads/{branch}", root)
    return path


@dataclass
class GitOpsRemote:
    """A served bare repository: its URL, its path, and readers of what was pushed."""

    url: str
    path: Path
    token: str | None = None
    username: str = USERNAME
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status
    authorizations: list[str] = field(default_factory=list)  # the Authorization headers received

    def git(self, *args: str) -> str:
        return _git(self.path, *args)

    def history(self, branch: str = "main") -> list[str]:
        """The commits of ``branch``, newest first (first parents only)."""
        return self.git("rev-list", "--first-parent", branch).split()

    def message(self, commit: str) -> str:
        return self.git("log", "-1", "--format=%B", commit)

    def file(self, path: str, ref: str = "main") -> str:
        return self.git("show", f"{ref}:{path}")

    def files(self, ref: str = "main") -> list[str]:
        return self.git("ls-tree", "-r", "--name-only", ref).split()

    def changed(self, commit: str) -> list[str]:
        return self.git("diff-tree", "--no-commit-id", "--name-only", "-r", commit).split()

    def reflog(self, branch: str = "main") -> list[tuple[str, str]]:
        """``(old, new)`` of every update of ``branch``, oldest first."""
        lines = (self.path / "logs" / "refs" / "heads" / branch).read_text().splitlines()
        return [(line.split()[0], line.split()[1]) for line in lines]

    def decline_pushes(self, reason: str = "pushes are frozen") -> None:
        hook = self.path / "hooks" / "pre-receive"
        hook.write_text(f"#!/bin/sh\necho '{reason}' >&2\nexit 1\n")
        hook.chmod(0o755)


def _handler(remote: GitOpsRemote) -> type[BaseHTTPRequestHandler]:
    root = remote.path.parent
    expected = (
        "Basic " + base64.b64encode(f"{remote.username}:{remote.token}".encode()).decode() if remote.token else None
    )

    class Backend(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            return None

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self) -> None:
            body = self._body()
            authorization = self.headers.get("Authorization")
            if authorization:
                remote.authorizations.append(authorization)
            if expected is not None and authorization != expected:
                self._answer(401, [("WWW-Authenticate", 'Basic realm="gitops"')], b"unauthorized\n")
                return
            path, _, query = self.path.partition("?")
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": str(root), "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command, "PATH_INFO": path, "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                "REMOTE_ADDR": self.client_address[0], "REMOTE_USER": remote.username if expected else "",
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            }
            done = subprocess.run([str(BACKEND / "git-http-backend")], input=body, env=env, capture_output=True,
                                  check=False)
            head, _, payload = done.stdout.partition(b"\r\n\r\n")
            status, headers = 200, []
            for line in head.decode(errors="replace").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self._answer(status, headers, payload)

        def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
            remote.requests.append((self.command, self.path, status))
            self.send_response(status)
            for name, value in headers:
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Backend


@dataclass
class _Served:
    remote: GitOpsRemote
    server: ThreadingHTTPServer
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def serve(path: Path, token: str | None = None) -> _Served:
    """Serve the bare repository ``path`` (a folder ``<name>.git``) until ``stop()``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    port = server.server_address[1]
    remote = GitOpsRemote(f"http://127.0.0.1:{port}/{path.name}", path, token)
    server.RequestHandlerClass = _handler(remote)
    thread = threading.Thread(target=server.serve_forever, name="gitops-remote", daemon=True)
    thread.start()
    return _Served(remote, server, thread)


@pytest.fixture
def gitops_remote(tmp_path: Path) -> Iterator[GitOpsRemote]:
    """A GitOps remote over HTTP without authentication."""
    served = serve(create_bare(tmp_path / "remote" / "gitops.git"))
    try:
        yield served.remote
    finally:
        served.stop()


@pytest.fixture
def gitops_remote_token(tmp_path: Path) -> Iterator[GitOpsRemote]:
    """A GitOps remote over HTTP that asks for basic auth: user ``x-access-token``, ``TOKEN``."""
    served = serve(create_bare(tmp_path / "remote-auth" / "gitops.git"), token=TOKEN)
    try:
        yield served.remote
    finally:
        served.stop()
