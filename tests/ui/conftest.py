"""Fixtures of the console's tests: the Platform API (with the console) served by uvicorn on a
loopback port, on a SQLite file of its own; Debian's chromium driven by Playwright; and helpers
that set up runs, logs, releases and deployments through the API itself."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from forge_core.adapters.auth.keys import SigningKey, platform_key
from forge_core.adapters.storage import FsspecStore
from forge_core.api.app import create_app
from forge_core.api.ui.session import LOGIN_PURPOSE
from forge_core.plugin.host import load_plugins
from forge_core.ports.storage import log_key
from forge_core.settings import Settings, load_settings

CHROMIUM = "/usr/bin/chromium"  # Debian's; scripts/setup installs it (browsers cannot be downloaded)
WIDE, NARROW = {"width": 1280, "height": 900}, {"width": 390, "height": 844}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Console:
    url: str
    settings: Settings
    key: SigningKey

    def token(self, subject: str = "alice", *, permissions: tuple[str, ...] = ("admin",), **extra: Any) -> str:
        return self.key.mint(subject, permissions=permissions, ttl_seconds=3600, extra=extra or None)

    def call(self, method: str, path: str, *, permissions: tuple[str, ...] = ("admin",), subject: str = "setup",
             **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token(subject, permissions=permissions)}"}
        response = httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def login_link(self, subject: str, permissions: tuple[str, ...], page: str = "/ui/runs") -> str:
        token = self.token(subject, permissions=permissions, purpose=LOGIN_PURPOSE)
        return f"{self.url}/ui/session?token={token}&next={page}"

    # --- data, made through the API ---------------------------------------------------------------

    def run_with_plan(self, *, repository: str = "acme/app", branch: str = "main",
                      steps: tuple[str, ...] = ("unit",)) -> dict[str, Any]:
        run = self.call("POST", "/v1/runs", json={
            "repository": repository, "commit_sha": uuid.uuid4().hex + "0" * 8, "branch": branch,
            "triggered_by": "ci",
        })
        plan = {"phases": [{"name": "test", "group_number": 1, "tasks": [{
            "key": "api/test", "project_name": "api", "project_path": "services/api",
            "steps": [{"name": name, "action": "exec", "target": f"make {name}"} for name in steps],
        }]}]}
        recorded = self.call("POST", f"/v1/runs/{run['id']}/plan", json=plan)
        run["task"] = recorded["phases"][0]["tasks"][0]
        run["phase"] = recorded["phases"][0]
        return run

    def write_log(self, run: dict[str, Any], step: dict[str, Any], lines: list[str]) -> str:
        key = log_key(run["id"], run["task"]["id"], step["id"])
        FsspecStore.from_settings(self.settings.storage).write_bytes(key, "".join(f"{x}\n" for x in lines).encode())
        return key


@contextlib.contextmanager
def serving(state: Path, **overrides: Any) -> Iterator[Console]:
    """The API with the console, served by uvicorn in a thread until the block ends."""
    settings = load_settings(
        state_dir=str(state), database={"url": f"sqlite+aiosqlite:///{state / 'forge.db'}"}, **overrides
    )
    app = create_app(settings, load_plugins(settings.plugins))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the console's server did not start"
        time.sleep(0.05)
    try:
        yield Console(f"http://127.0.0.1:{port}", settings, platform_key(settings))
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with serving(tmp_path_factory.mktemp("console-state"), api={"ui": {"poll_seconds": 0.1}}) as served:
        yield served


@pytest.fixture
def nats_prefix() -> Iterator[str]:
    """A unique prefix on the shared NATS server, its streams removed after (in a thread: the
    browser's event loop runs in this one)."""
    import asyncio

    from forge_core.adapters.bus.connection import connect
    from forge_core.adapters.bus.provisioning import remove_streams
    from forge_core.settings.nats import NatsSettings

    name = f"t{uuid.uuid4().hex[:10]}"
    yield name

    async def remove() -> None:
        client = await connect(NatsSettings(), "nats://127.0.0.1:4222")
        try:
            await remove_streams(client.jetstream(), name)
        finally:
            await client.close()

    cleaner = threading.Thread(target=asyncio.run, args=(remove(),))
    cleaner.start()
    cleaner.join(timeout=30)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Chromium for one test. Not shared across tests: Playwright's sync API keeps an event loop
    running in this thread while it is open, and other tests on the same xdist worker call
    ``asyncio.run``."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing: scripts/setup installs Debian's chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) at 1280 px; console errors and CSP violations fail
    the test."""
    context = browser.new_context(viewport=WIDE)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    opened.on("pageerror", lambda error: problems.append(str(error)))
    yield opened
    context.close()
    assert not [p for p in problems if "401" not in p and "403" not in p], problems
