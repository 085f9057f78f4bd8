"""Fixtures shared by the core's tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

NATS_URL = "nats://127.0.0.1:4222"
"""The NATS server with JetStream that runs on development and CI machines."""


@pytest.fixture
def prefix() -> Iterator[str]:
    """A unique stream/subject prefix on the shared NATS server; its streams are removed after."""
    import asyncio
    import uuid

    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    asyncio.run(_remove_streams(name))


async def _remove_streams(prefix: str) -> None:
    from forge_core.adapters.bus.connection import connect
    from forge_core.adapters.bus.provisioning import remove_streams
    from forge_core.settings.nats import NatsSettings

    client = await connect(NatsSettings(), NATS_URL)
    try:
        await remove_streams(client.jetstream(), prefix)
    finally:
        await client.close()


@pytest.fixture
def make_distribution(tmp_path: Path) -> Callable[..., Path]:
    """Install a small distribution into a folder, the way an installer lays out a pure wheel.

    ``make_distribution("acme-forge-x", "1.2.0", plugin_id="acme_x", source="...")`` writes the
    module ``<plugin_id>.py`` and ``<dist>-<version>.dist-info`` (METADATA, entry_points.txt) into
    ``tmp_path/site`` and returns that folder; put it on sys.path or PYTHONPATH to install it.
    """
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)

    def make(name: str, version: str, *, plugin_id: str, source: str, module: str | None = None) -> Path:
        module = module or plugin_id
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[forge.plugins]\n{plugin_id} = {module}\n")
        return site

    return make


@pytest.fixture
def run_forge() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the ``forge`` CLI in a fresh interpreter, with extra paths and environment."""

    def run(
        *args: str, path: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
        environment.update(env or {})
        environment["COLUMNS"] = "200"
        if path is not None:
            environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path), environment.get("PYTHONPATH")]))
        return subprocess.run(
            [sys.executable, "-m", "forge_core.cli.main", *args],
            capture_output=True,
            text=True,
            env=environment,
            timeout=60,
        )

    return run


@dataclass(frozen=True)
class PlatformApi:
    """A `forge api` process on loopback, and a token that may start runs and record their state."""

    url: str
    token: str
    env: dict[str, str]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def platform_api(tmp_path: Path) -> Iterator[PlatformApi]:
    """`forge api` serving the SQLite file of a private state folder on a free loopback port."""
    import socket
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    env["FORGE_STATE_DIR"] = str(tmp_path / "api-state")
    forge = str(Path(sys.executable).parent / "forge")
    log = open(tmp_path / "api.log", "w")  # noqa: SIM115 (closed below, after the process)
    process = subprocess.Popen([forge, "api", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "api.log").read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "forge api did not come up"
                time.sleep(0.1)
        minted = subprocess.run(
            [forge, "token", "create", "--role", "developer", "--role", "worker"],
            env=env, capture_output=True, text=True, check=True,
        )
        token = minted.stdout.strip()
        yield PlatformApi(url, token, {**env, "FORGE_API__URL": url, "FORGE_API__TOKEN": token})
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
