"""Fixtures of the release job tests: the Platform API served by uvicorn on loopback (PostgreSQL,
a database of its own), the platform client on an event loop of its own thread (as a worker runs
it), and job contexts holding the real OCI stores."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from forge_core.adapters.auth.keys import SigningKey, platform_key
from forge_core.adapters.platform_client import PlatformClient
from forge_core.api.app import create_app
from forge_core.plugin.host import load_plugins
from forge_core.ports.contexts import JobContext
from forge_core.ports.oci import OciStore
from forge_core.services.recording import BlockingReleases
from forge_core.settings import PluginSettings, load_settings

POSTGRES = os.environ.get("FORGE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _postgres(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@dataclass
class Platform:
    """The served API, a way to call it, and handler contexts that reach it."""

    url: str
    key: SigningKey
    loop: asyncio.AbstractEventLoop
    clients: list[PlatformClient] = field(default_factory=list)

    def token(self, *roles: str, repository: str | None = None) -> str:
        extra = {"repository": repository} if repository else None
        return self.key.mint("release-worker", roles=roles, extra=extra)

    def call(self, method: str, path: str, *roles: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(*(roles or ('admin',)))}", **kwargs.pop("headers", {})}
        with httpx.Client(base_url=self.url, timeout=30) as http:
            return http.request(method, path, headers=headers, **kwargs)

    def context(self, tmp_path: Path, store: OciStore, *, repository: str | None = None) -> JobContext:
        """What a worker gives the release handler: the built-in plugins, the store, and the API's
        release calls with a releaser's token (scoped to ``repository`` when given)."""
        client = PlatformClient(self.url, self.token("worker", "releaser", repository=repository))
        self.clients.append(client)
        return JobContext(
            cache_dir=tmp_path / "cache",
            registry=load_plugins(PluginSettings(autoload=False)).registry,
            oci=store,
            releases=BlockingReleases(client, self.loop),
        )

    def new_run(self, repository: str, commit: str) -> str:
        """The pipeline run of the commit (one per commit: created the first time)."""
        listed = self.call("GET", "/v1/runs", params={"repository": repository, "limit": 100}).json()
        for run in listed["runs"]:
            if run["commit_sha"] == commit:
                found: str = run["id"]
                return found
        body = {"repository": repository, "commit_sha": commit, "triggered_by": "alice", "branch": "main",
                "trigger_type": "push"}
        response = self.call("POST", "/v1/runs", json=body)
        assert response.status_code == 201, response.text
        run_id: str = response.json()["id"]
        return run_id


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    worker = re.sub(r"\W", "", os.environ.get("PYTEST_XDIST_WORKER", "main"))
    name = f"forge_release_{worker}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_postgres(f'CREATE DATABASE "{name}"'))
    base = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    state = tmp_path_factory.mktemp("release-api")
    settings = load_settings(database={"url": f"{base}/{name}", "state_dir": str(state)})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings, load_plugins(settings.plugins)),
                                           host="127.0.0.1", port=port, log_config=None))
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    loop = asyncio.new_event_loop()
    looping = threading.Thread(target=loop.run_forever, daemon=True)
    looping.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert serving.is_alive(), "the API stopped while starting"
            assert time.monotonic() < deadline, "the API did not start in time"
            time.sleep(0.02)
        platform = Platform(f"http://127.0.0.1:{port}", platform_key(settings), loop)
        yield platform
        for client in platform.clients:
            asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(10)
    finally:
        server.should_exit = True
        serving.join(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        looping.join(timeout=10)
        asyncio.run(_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
