"""A running Platform API for plugin tests: the real app on SQLite, served on a loopback port.

    def test_deploys(forge_platform: PlatformApi) -> None:
        release = forge_platform.create_release("acme/app", "api")
        reporter = forge_platform.deployments("worker", "deployer")  # what a worker's JobContext holds
        ...
        assert forge_platform.get(f"/v1/deployments/dev/acme/app/api").json()["status"] == "active"

``deployments()`` is the real client (``PlatformClient``) behind the worker's blocking adapter, on
an event loop of its own thread, exactly as a job handler gets it in ``JobContext.deployments``.
"""

from __future__ import annotations

import asyncio
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

from forge_core.ports.contexts import JobContext, SecretResolver
from forge_core.ports.platform import BlockingDeploymentReporter

__all__ = ["PlatformApi", "job_context", "secret_resolver"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PlatformApi:
    """The API's base URL, tokens of any roles, and the calls tests need to set the scene."""

    url: str
    state_dir: Path
    _mint: Any = field(repr=False)
    _loop: asyncio.AbstractEventLoop = field(repr=False)
    _clients: list[Any] = field(default_factory=list, repr=False)

    def token(self, *roles: str, subject: str = "alice") -> str:
        token: str = self._mint(subject, roles=roles or ("admin",), ttl_seconds=3600)
        return token

    def request(self, method: str, path: str, *roles: str, subject: str = "alice", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(*roles, subject=subject)}"}
        with httpx.Client(base_url=self.url, timeout=30) as http:
            return http.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, *roles: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, *roles, **kwargs)

    def create_release(self, repository: str, project: str, commit: str | None = None) -> dict[str, Any]:
        body = {"repository": repository, "project": project, "commit_sha": commit or uuid.uuid4().hex + "0" * 8}
        response = self.request("POST", "/v1/releases", json=body)
        assert response.status_code == 201, response.text
        release: dict[str, Any] = response.json()
        return release

    def deployments(self, *roles: str, subject: str = "worker") -> BlockingDeploymentReporter:
        """The deployment reporter a worker with a token of ``roles`` hands its job handlers."""
        from forge_core.adapters.platform_client import PlatformClient
        from forge_core.services.recording import BlockingDeployments

        token = self.token(*(roles or ("worker", "deployer")), subject=subject)
        client = asyncio.run_coroutine_threadsafe(self._client(token), self._loop).result(10)
        self._clients.append(client)
        assert isinstance(client, PlatformClient)
        return BlockingDeployments(client, self._loop, timeout=60)

    async def _client(self, token: str) -> Any:
        from forge_core.adapters.platform_client import PlatformClient

        return PlatformClient(self.url, token)

    def close(self) -> None:
        for client in self._clients:
            asyncio.run_coroutine_threadsafe(client.aclose(), self._loop).result(10)


@pytest.fixture
def forge_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformApi]:
    """The Platform API (SQLite in a temporary state directory) on 127.0.0.1 and a free port."""
    import uvicorn

    from forge_core.adapters.auth.keys import platform_key
    from forge_core.api.app import create_app
    from forge_core.plugin.host import load_plugins
    from forge_core.settings import load_settings

    state = tmp_path_factory.mktemp("platform")
    settings = load_settings(
        state_dir=str(state), database={"url": f"sqlite+aiosqlite:///{state / 'forge.db'}", "state_dir": str(state)}
    )
    app = create_app(settings, load_plugins(settings.plugins))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    serving = threading.Thread(target=server.run, name="forge-platform", daemon=True)
    serving.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not serving.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the Platform API did not start")
        time.sleep(0.05)
    loop = asyncio.new_event_loop()
    calls = threading.Thread(target=loop.run_forever, name="forge-platform-client", daemon=True)
    calls.start()
    api = PlatformApi(f"http://127.0.0.1:{port}", state, platform_key(settings).mint, loop)
    try:
        yield api
    finally:
        api.close()
        loop.call_soon_threadsafe(loop.stop)
        calls.join(10)
        loop.close()
        server.should_exit = True
        serving.join(30)


def secret_resolver() -> SecretResolver:
    """The worker's secret resolver over the built-in providers (``env``, ``file``): what a job
    handler gets as ``JobContext.secrets``."""
    from forge_core.plugin.host import load_plugins
    from forge_core.services.secrets import ProviderSecrets
    from forge_core.settings import PluginSettings

    return ProviderSecrets(load_plugins(PluginSettings(autoload=False)).registry)


def job_context(cache_dir: Path, **fields: Any) -> JobContext:
    """A JobContext as a worker builds one (the built-in plugins' registry), with ``fields``
    (``log=``, ``deployments=``, ``secrets=``, …) given."""
    from forge_core.plugin.host import load_plugins
    from forge_core.settings import PluginSettings

    return JobContext(cache_dir=cache_dir, registry=load_plugins(PluginSettings(autoload=False)).registry, **fields)
