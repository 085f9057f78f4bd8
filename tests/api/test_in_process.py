"""The in-process API (``forge run``'s recorder on its embedded API) answers as the HTTP API does:
the same recorded plan and run, the same errors for the same mistakes, the caller's permissions;
and a batch of task and step changes is recorded all or none, in order. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from forge_core.adapters.auth.keys import platform_key
from forge_core.adapters.platform_client import PlatformClient
from forge_core.api.app import create_app
from forge_core.api.in_process import InProcessApi
from forge_core.plugin.host import load_plugins
from forge_core.ports.platform import StatusBatchRecorder, StatusChange
from forge_core.services import schemas as s
from forge_core.services.errors import AuthorizationFailed, Conflict, InvalidRequest, NotFound

from .conftest import LocalIssuer, make_settings, new_sha, unique_repo
from .test_runs import PLAN

T = TypeVar("T")
WORKER = ("read", "run", "status")


@asynccontextmanager
async def both_ports(
    database_url: str, state: Path, oidc_issuer: str, github_issuer: LocalIssuer, permissions: tuple[str, ...] = WORKER,
) -> AsyncIterator[tuple[InProcessApi, PlatformClient]]:
    """The in-process API and the HTTP client, one token's caller each, on one application."""
    settings = make_settings(database_url, state, oidc_issuer, github_issuer.url)
    app = create_app(settings, load_plugins(settings.plugins))
    token = platform_key(settings).mint("forge-cli", permissions=permissions)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://forge.local") as http:
            services = app.state.services
            direct = InProcessApi(services, await services.verifier.verify(token), http, token)
            yield direct, PlatformClient("http://forge.local", token, client=http)


def run_async(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())  # type: ignore[arg-type]


def new_run() -> s.RunCreate:
    return s.RunCreate(repository=unique_repo(), commit_sha=new_sha(), triggered_by="t")


def without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


async def raised(call: Awaitable[Any]) -> Exception:
    try:
        await call
    except Exception as error:
        return error
    raise AssertionError("no error")


@pytest.fixture
def ports(database_url: str, tmp_path: Path, oidc_issuer: str, github_issuer: LocalIssuer) -> Any:
    return lambda **extra: both_ports(database_url, tmp_path, oidc_issuer, github_issuer, **extra)


def test_the_plan_and_the_run_are_those_of_the_http_api(ports: Any) -> None:
    async def scenario() -> None:
        async with ports() as (direct, http):
            ours, theirs = await direct.create_run(new_run()), await http.create_run(new_run())
            assert (ours.status, ours.phases) == (theirs.status, theirs.phases)
            planned = await direct.record_plan(str(ours.id), PLAN)
            assert without_ids(planned) == without_ids(await http.record_plan(str(theirs.id), PLAN))
            task = planned["phases"][0]["tasks"][0]
            await direct.set_run_status(str(ours.id), "running")
            await direct.set_task_status(task["id"], "running")
            await direct.set_step_status(task["steps"][0]["id"], "success", exit_code=0, logs_key="logs/a.log")
            assert await direct.get_run(str(ours.id)) == await http.get_run(str(ours.id))
            got = (await http.get_run(str(ours.id))).phases[0].tasks[0]
            assert (got.status.value, got.steps[0].status.value, got.steps[0].exit_code) == ("running", "success", 0)
            assert got.steps[0].logs_s3_key == "logs/a.log"

    run_async(scenario)


def test_mistakes_are_the_errors_the_http_api_gives(ports: Any) -> None:
    async def scenario() -> None:
        async with ports() as (direct, http):
            run = await direct.create_run(new_run())
            step = (await direct.record_plan(str(run.id), PLAN))["phases"][0]["tasks"][0]["steps"][0]["id"]
            await direct.set_step_status(step, "success")
            unknown = "00000000-0000-4000-8000-000000000000"
            cases: list[tuple[type[Exception], Callable[[PlatformClient], Awaitable[Any]]]] = [
                (NotFound, lambda port: port.set_task_status(unknown, "running")),
                (InvalidRequest, lambda port: port.set_step_status(step, "sideways")),
                (InvalidRequest, lambda port: port.set_task_status("not-a-uuid", "running")),
                (InvalidRequest, lambda port: port.set_step_status(step, "failed", exit_code=2**40)),
                (Conflict, lambda port: port.set_step_status(step, "running")),
                (NotFound, lambda port: port.get_run(unknown)),
            ]
            for expected, call in cases:
                ours, theirs = await raised(call(direct)), await raised(call(http))
                assert type(ours) is type(theirs) is expected, (ours, theirs)
            conflict = await raised(direct.set_step_status(step, "running"))
            assert isinstance(conflict, Conflict) and conflict.details["status"] == "success"
            assert await direct.artifact_record(str(run.id), "api", "nothing") is None

    run_async(scenario)


def test_a_caller_without_the_permission_is_refused(ports: Any) -> None:
    async def scenario() -> None:
        async with ports(permissions=("read", "run")) as (direct, http):
            run = await direct.create_run(new_run())
            for port in (direct, http):
                refused = await raised(port.record_plan(str(run.id), PLAN))
                assert isinstance(refused, AuthorizationFailed) and "'status'" in refused.message
                refused = await raised(port.set_run_status(str(run.id), "running"))
                assert isinstance(refused, AuthorizationFailed)
            assert (await http.get_run(str(run.id))).status.value == "pending"

    run_async(scenario)


def test_a_batch_of_changes_is_recorded_in_order_all_or_none(ports: Any) -> None:
    async def scenario() -> None:
        async with ports() as (direct, http):
            assert isinstance(direct, StatusBatchRecorder) and not isinstance(http, StatusBatchRecorder)
            run = await direct.create_run(new_run())
            planned = await direct.record_plan(str(run.id), PLAN)
            api, web = planned["phases"][0]["tasks"]
            first, second = (st["id"] for st in api["steps"])
            await direct.record_statuses([
                StatusChange("task", api["id"], "running"), StatusChange("step", first, "running"),
            ])
            await direct.record_statuses([
                StatusChange("step", first, "success", exit_code=0, logs_key="logs/first.log"),
                StatusChange("step", second, "failed", exit_code=3, logs_key="logs/second.log"),
                StatusChange("task", api["id"], "failed", error="step 'second' failed"),
            ])
            task = (await http.get_run(str(run.id))).phases[0].tasks[0]
            assert (task.status.value, task.error) == ("failed", "step 'second' failed")
            assert task.started_at is not None and task.completed_at is not None
            assert [(st.status.value, st.exit_code, st.logs_s3_key) for st in task.steps] == [
                ("success", 0, "logs/first.log"), ("failed", 3, "logs/second.log")]
            assert task.steps[0].started_at is not None
            # A refused change refuses the batch: the changes before it are not recorded either.
            refused = await raised(direct.record_statuses([
                StatusChange("task", web["id"], "running"), StatusChange("step", first, "running"),
            ]))
            assert isinstance(refused, Conflict) and refused.details["status"] == "success"
            assert (await http.get_run(str(run.id))).phases[0].tasks[1].status.value == "pending"
            bad = await raised(direct.record_statuses([StatusChange("step", second, "sideways")]))
            assert isinstance(bad, InvalidRequest)

    run_async(scenario)
