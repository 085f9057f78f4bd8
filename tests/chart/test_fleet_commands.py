"""``forge streams apply`` against the real NATS (a unique prefix per test) and ``forge db upgrade``
against the real PostgreSQL: what the chart's bootstrap and migrations Jobs run."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Callable

from forge_core.adapters.bus.topology import Topology
from forge_core.domain.jobs import JOB_TYPES

NATS_URL = "nats://127.0.0.1:4222"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
Forge = Callable[..., subprocess.CompletedProcess[str]]


def lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


async def _server_state(prefix: str) -> tuple[dict[str, int], dict[str, tuple[str | None, float | None]]]:
    import nats

    client = await nats.connect(NATS_URL)
    try:
        js = client.jetstream()
        topology = Topology(prefix)
        streams = {}
        for name in [*topology.streams(), topology.dead_letter_stream]:
            streams[name] = (await js.stream_info(name)).config.num_replicas or 0
        consumers = {}
        for job_type in JOB_TYPES:
            info = await js.consumer_info(topology.stream(job_type), topology.consumer(job_type))
            consumers[job_type] = (info.config.filter_subject, info.config.ack_wait)
        return streams, consumers
    finally:
        await client.close()


def test_streams_apply_creates_everything_then_a_second_run_changes_nothing(run_forge: Forge, prefix: str) -> None:
    env = {"FORGE_NATS__URL": NATS_URL, "FORGE_NATS__PREFIX": prefix}
    # --replicas 1: the NATS here is one node (the chart passes 3 to its three-node cluster).
    first = lines(run_forge("streams", "apply", "--replicas", "1", env=env))
    assert len(first) == 5 + len(JOB_TYPES)
    assert all(line.endswith(": created") for line in first), first
    assert f"consumer {prefix}-pipeline-releases/{prefix}-worker-deployment: created" in first

    again = lines(run_forge("streams", "apply", "--replicas", "1", env=env))
    assert [line.replace(": unchanged", ": created") for line in again] == first

    streams, consumers = asyncio.run(_server_state(prefix))
    assert set(streams.values()) == {1}
    assert consumers["release"][0] == f"{prefix}.pipeline.releases.*.release"
    assert consumers["ci"] == (f"{prefix}.pipeline.tasks.>", 1800)

    # A changed setting is reconciled in place, and only where it differs.
    changed = lines(run_forge("streams", "apply", env={**env, "FORGE_NATS__ACK_WAIT__CI": "60"}))
    assert [line for line in changed if not line.endswith(": unchanged")] == [
        f"consumer {prefix}-pipeline-tasks/{prefix}-worker-ci: updated"]


def test_replicas_the_server_cannot_hold_exit_7_with_its_reason(run_forge: Forge, prefix: str) -> None:
    env = {"FORGE_NATS__URL": NATS_URL, "FORGE_NATS__PREFIX": prefix}
    result = run_forge("streams", "apply", "--replicas", "3", env=env)
    assert result.returncode == 7
    assert f"{prefix}-pipeline-discovery: cannot apply it" in result.stderr
    assert "replicas > 1 not supported in non-clustered mode" in result.stderr
    assert result.stdout == ""


def test_streams_apply_without_a_reachable_server_exits_7_naming_the_url(run_forge: Forge, prefix: str) -> None:
    result = run_forge("streams", "apply", env={"FORGE_NATS__URL": "nats://127.0.0.1:1", "FORGE_NATS__PREFIX": prefix,
                                                "FORGE_NATS__CONNECT_TIMEOUT": "0.5"})
    assert result.returncode == 7
    assert "cannot connect to NATS at nats://127.0.0.1:1" in result.stderr
    assert result.stdout == ""


def test_streams_apply_with_bad_settings_exits_2_naming_the_field(run_forge: Forge) -> None:
    result = run_forge("streams", "apply", env={"FORGE_NATS__URL": NATS_URL, "FORGE_NATS__PREFIX": "Bad Prefix"})
    assert result.returncode == 2
    assert "FORGE_NATS__PREFIX" in result.stderr


def test_streams_apply_refuses_replicas_out_of_range(run_forge: Forge) -> None:
    result = run_forge("streams", "apply", "--replicas", "9", env={"FORGE_NATS__URL": NATS_URL})
    assert result.returncode == 2
    assert "--replicas" in result.stderr


async def _admin(sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(POSTGRES)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def test_db_upgrade_migrates_postgresql_to_head_twice_over(run_forge: Forge) -> None:
    name = f"forge_chart_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        env = {"FORGE_DATABASE__URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"}
        first = lines(run_forge("db", "upgrade", env=env))
        assert first == lines(run_forge("db", "upgrade", env=env))
        assert first[0].startswith("database at revision 0")
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_db_upgrade_of_an_unreachable_database_fails_without_the_password(run_forge: Forge) -> None:
    result = run_forge("db", "upgrade", env={"FORGE_DATABASE__URL": "postgresql+asyncpg://forge:s3cr3t@127.0.0.1:1/x"})
    assert result.returncode == 1
    assert "FORGE_DATABASE__URL: cannot migrate the database" in result.stderr
    assert "s3cr3t" not in result.stderr + result.stdout
