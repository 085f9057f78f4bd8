"""DELETE /v1/runs/{id} tells the workers over the bus (the real NATS) to stop the run's jobs."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from forge_core.adapters.auth.keys import platform_key
from forge_core.adapters.bus.connection import connect
from forge_core.adapters.bus.topology import Topology
from forge_core.api.app import create_app
from forge_core.plugin.host import load_plugins
from forge_core.settings.nats import NatsSettings

from .conftest import Api, LocalIssuer, make_settings
from .test_runs import create_run

NATS_URL = "nats://127.0.0.1:4222"


class Listener:
    """A worker's ear: the cancel subject, on a loop of its own."""

    def __init__(self, nats: NatsSettings) -> None:
        self.nats = nats
        self.heard: list[str] = []
        self.ready, self.got = threading.Event(), threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(10)

    async def _listen(self) -> None:
        self.client = await connect(self.nats)

        async def heard(message: object) -> None:
            self.heard.append(message.data.decode())  # type: ignore[attr-defined]
            self.got.set()

        await self.client.subscribe(Topology.from_settings(self.nats).cancel_subject("*"), cb=heard)
        await self.client.flush()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.client.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_cancelling_a_run_announces_it_to_the_workers(
    database_url: str, tmp_path: Path, oidc_issuer: str, github_issuer: LocalIssuer, prefix: str,
) -> None:
    settings = make_settings(database_url, tmp_path, oidc_issuer, github_issuer.url)
    settings = settings.model_copy(update={"nats": NatsSettings(url=NATS_URL, prefix=prefix)})
    listener = Listener(settings.nats)
    try:
        with TestClient(create_app(settings, load_plugins(settings.plugins))) as client:
            api = Api(client, settings, platform_key(settings))
            run = create_run(api)
            assert api.delete(f"/v1/runs/{run['id']}", "developer").status_code == 204
            assert listener.got.wait(10), "no cancel message on the bus"
    finally:
        listener.close()
    assert listener.heard == [run["id"]]


@pytest.mark.parametrize("run_id", ["*", "a.b", ""])
def test_a_cancel_subject_names_one_run(run_id: str) -> None:
    topology = Topology("p")
    if run_id == "*":
        assert topology.cancel_subject(run_id) == "p.pipeline.control.cancel.*"
    else:
        with pytest.raises(Exception, match="run_id"):
            topology.cancel_subject(run_id)
