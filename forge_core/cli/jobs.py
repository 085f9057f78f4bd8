"""``forge worker`` and ``forge dispatch``: the two ends of the job bus.

``forge dispatch`` exit codes: 0 the job succeeded; 5 it ran and failed; 6 no reply within the
timeout; 7 the bus could not be used (NATS unreachable, connection lost); 2 bad input (job file,
settings). The result file is written in every case but bad input (a JobResult as JSON).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from forge_core.domain.models import Job
    from forge_core.ports.platform import RunRecorder
    from forge_core.settings import Settings

EXIT_JOB_FAILED = 5
EXIT_TIMEOUT = 6
EXIT_INFRASTRUCTURE = 7


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    app.command("dispatch")(dispatch)


def make_recorder(settings: Settings) -> RunRecorder:
    """Where a worker records run state: the Platform API at FORGE_API__URL, with its service
    token (role worker) in FORGE_API__TOKEN. A worker that cannot report does not start."""
    from forge_core.adapters.platform_client import PlatformClient
    from forge_core.domain.errors import ConfigurationError

    if settings.api.url is None or settings.api.token is None:
        raise ConfigurationError(
            "a worker records run state through the Platform API: set FORGE_API__URL and "
            "FORGE_API__TOKEN (a token with role worker: forge token create --role worker)",
            where="FORGE_API__URL" if settings.api.url is None else "FORGE_API__TOKEN",
        )
    return PlatformClient(settings.api.url, settings.api.token.get_secret_value())


def _setup_logging() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def worker(
    job_type: Annotated[str, typer.Option("--type", help="Job type: discovery, ci, artifact, release, deployment.")],
    concurrency: Annotated[int | None, typer.Option(min=1, help="Jobs run at once (default: settings).")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port (0: any free one).")
    ] = None,
) -> None:
    """Pull jobs of one type from NATS JetStream and run them with the job-handler plugin."""
    import asyncio

    from forge_core.adapters.storage import FsspecStore
    from forge_core.cli.main import fail
    from forge_core.domain.errors import ForgeError
    from forge_core.plugin.host import load_plugins
    from forge_core.settings import load_settings
    from forge_core.worker.runner import Worker, serve

    _setup_logging()
    try:
        settings = load_settings()
        if metrics_port is not None:
            settings.worker.metrics_port = metrics_port
        host = load_plugins(settings.plugins)
        runner = Worker(
            settings, host, job_type, make_recorder(settings), FsspecStore.from_settings(settings.storage),
            concurrency=concurrency,
        )
        asyncio.run(serve(runner))
    except ForgeError as error:
        fail(error)


def _read_job(job_type: str, job_file: Path) -> Job:
    import json
    import uuid

    from pydantic import ValidationError

    from forge_core.adapters.bus.topology import check_job_type
    from forge_core.domain.errors import ConfigurationError
    from forge_core.domain.models import Job

    check_job_type(job_type)
    try:
        data: Any = json.loads(job_file.read_text())
    except OSError as exc:
        raise ConfigurationError(f"cannot read the job file: {exc.strerror}", where=str(job_file)) from None
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"not JSON: {exc.msg}", where=f"{job_file}:{exc.lineno}") from None
    if not isinstance(data, dict):
        raise ConfigurationError("the job file holds a JSON object (run_id, payload, …)", where=str(job_file))
    if data.setdefault("type", job_type) != job_type:
        raise ConfigurationError(
            f"the job's type {data['type']!r} is not --type {job_type!r}", where=f"{job_file}: type"
        )
    data.setdefault("id", uuid.uuid4().hex)
    try:
        return Job.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigurationError(first["msg"], where=f"{job_file}: {field}") from None


def dispatch(
    job_type: Annotated[str, typer.Option("--type", help="Job type: discovery, ci, artifact, release, deployment.")],
    job_file: Annotated[Path, typer.Option(help="The job as JSON: run_id, payload, optional id and attempt.")],
    timeout: Annotated[
        float | None, typer.Option(min=0.1, help="Seconds to wait for the reply (default: ack wait times max deliver).")
    ] = None,
    result_file: Annotated[Path | None, typer.Option(help="Write the JobResult (JSON) here.")] = None,
) -> None:
    """Publish one job, wait for its worker's reply, write the result; the exit code says how it went."""
    import asyncio
    import sys

    from forge_core.adapters.bus.connection import connect
    from forge_core.adapters.bus.dispatcher import NatsDispatcher
    from forge_core.adapters.storage import FsspecStore
    from forge_core.cli.main import fail
    from forge_core.domain.errors import ConfigurationError, ForgeError, JobFailedError
    from forge_core.domain.models import JobResult, JobStatus
    from forge_core.settings import load_settings

    try:
        settings = load_settings()
        job = _read_job(job_type, job_file)
    except ForgeError as error:
        fail(error)
    wait = timeout or float(getattr(settings.nats.ack_wait, job_type)) * settings.nats.max_deliver

    async def round_trip() -> JobResult:
        client = await connect(settings.nats, name=f"forge-dispatch-{job_type}")
        try:
            dispatcher = NatsDispatcher(client, settings.nats, FsspecStore.from_settings(settings.storage))
            return await dispatcher.dispatch(job, wait)
        finally:
            await client.close()

    try:
        result = asyncio.run(round_trip())
    except ConfigurationError as error:
        fail(error)
    except ForgeError as error:
        _write(result_file, JobResult(job_id=job.id, status=JobStatus.FAILED, error=str(error)))
        fail(error)
    _write(result_file, result)
    sys.stdout.write(result.model_dump_json() + "\n")
    if result.status is not JobStatus.SUCCESS:
        fail(JobFailedError(f"job {job.id} failed: {result.error or 'no reason given'}", where=job_type))


def _write(path: Path | None, result: Any) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(result.model_dump_json(indent=2) + "\n")
