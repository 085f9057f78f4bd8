"""The platform client (RunRecorder and run calls) against the API served by uvicorn on loopback."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from forge_core.adapters.auth.keys import platform_key
from forge_core.adapters.platform_client import PlatformClient
from forge_core.api.app import create_app
from forge_core.plugin.host import load_plugins
from forge_core.services import schemas as s
from forge_core.services.errors import AuthorizationFailed, Conflict, NotFound

from .conftest import LocalIssuer, make_settings, new_sha, unique_repo
from .test_runs import PLAN


@pytest.fixture(scope="session")
def served(
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    oidc_issuer: str,
    github_issuer: LocalIssuer,
) -> Iterator[tuple[str, dict[str, str]]]:
    state: Path = tmp_path_factory.mktemp("served")
    settings = make_settings(database_url, state, oidc_issuer, github_issuer.url)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(settings, load_plugins(settings.plugins))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the API stopped while starting"
        assert time.monotonic() < deadline, "the API did not start in time"
        time.sleep(0.02)
    key = platform_key(settings)
    tokens = {role: key.mint("client", roles=[role]) for role in ("admin", "worker", "viewer")}
    yield f"http://127.0.0.1:{port}", tokens
    server.should_exit = True
    thread.join(timeout=10)


def new_run() -> s.RunCreate:
    return s.RunCreate(repository=unique_repo(), commit_sha=new_sha(), triggered_by="t")


def test_the_worker_records_a_run_through_the_client(served: tuple[str, dict[str, str]]) -> None:
    url, tokens = served

    async def scenario() -> None:
        async with (
            PlatformClient(url, tokens["admin"]) as cli,
            PlatformClient(url, tokens["worker"]) as worker,
        ):
            run = await cli.create_run(new_run())
            recorded = await worker.record_plan(str(run.id), PLAN)
            step = recorded["phases"][0]["tasks"][0]["steps"][0]
            await worker.set_run_status(str(run.id), "running")
            await worker.set_phase_status(recorded["phases"][0]["id"], "running")
            await worker.set_task_status(recorded["phases"][0]["tasks"][0]["id"], "running")
            await worker.set_step_status(step["id"], "success", exit_code=0, logs_key="logs/l.log")
            fetched = await cli.get_run(str(run.id))
            got = fetched.phases[0].tasks[0].steps[0]
            assert (got.status.value, got.exit_code) == ("success", 0)
            assert got.logs_s3_key == "logs/l.log"
            listed = await cli.list_runs(repository=run.repository)
            assert [r.id for r in listed.runs] == [run.id]
            await cli.cancel_run(str(run.id))
            assert (await cli.get_run(str(run.id))).status.value == "cancelled"
            with pytest.raises(Conflict) as conflict:
                await worker.set_step_status(step["id"], "failed")
            assert conflict.value.details["run_id"] == str(run.id)

    asyncio.run(scenario())


def test_api_errors_come_back_as_forge_errors(served: tuple[str, dict[str, str]]) -> None:
    url, tokens = served

    async def scenario() -> None:
        async with PlatformClient(url, tokens["viewer"]) as viewer:
            with pytest.raises(NotFound):
                await viewer.get_run("00000000-0000-4000-8000-000000000000")
            with pytest.raises(AuthorizationFailed):
                await viewer.create_run(new_run())

    asyncio.run(scenario())


def test_the_client_holds_leases_and_re_runs_attempts(served: tuple[str, dict[str, str]]) -> None:
    url, tokens = served

    async def scenario() -> None:
        async with (
            PlatformClient(url, tokens["admin"]) as cli,
            PlatformClient(url, tokens["worker"]) as worker,
        ):
            run = await cli.create_run(new_run())
            held = await worker.renew_lease(str(run.id), "box/7/forge-run", 60)
            assert held.driver == "box/7/forge-run" and held.lease_expires_at is not None
            with pytest.raises(Conflict, match="is driven by box/7/forge-run"):
                await worker.renew_lease(str(run.id), "other/8/forge-server", 60)
            with pytest.raises(Conflict, match="one attempt at a time per commit"):
                await cli.rerun(str(run.id))
            await worker.set_run_status(str(run.id), "failed", error="first try")
            again = await cli.rerun(str(run.id), only_failed=False)
            assert (again.attempt, again.status.value, again.driver) == (2, "pending", None)
            assert [(a.number, a.status.value, a.error, a.driver) for a in again.attempts] == [
                (1, "failed", "first try", "box/7/forge-run")]
            first = await cli.get_run(str(run.id), attempt=1)
            assert (first.attempt, first.status.value) == (1, "failed")
            with pytest.raises(NotFound, match="has no attempt 5"):
                await cli.get_run(str(run.id), attempt=5)

    asyncio.run(scenario())
