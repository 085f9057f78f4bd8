#!/usr/bin/env python3
"""Throughput and latency of the Platform API against PostgreSQL, beside a baseline.

Serves the API with uvicorn on a loopback port (in its own process), in a fresh PostgreSQL
database, with one extra route: the baseline, a FastAPI endpoint doing one trivial query
(``SELECT 1``) on the same database through the same pool, without authentication. 32 concurrent
httpx clients then measure, in one run:

- ``GET /baseline`` (the baseline),
- ``GET /v1/runs/{id}`` of a run with 3 phases x 4 tasks x 3 steps (authenticated, nested),
- ``POST /v1/runs`` (authenticated; one insert with its outbox row and audit entry).

Prints requests/s, p50 and p99 latency, and each endpoint's throughput as a ratio of the
baseline's (target: at least 0.5).

    uv run python benchmarks/api.py [--requests 3000] [--concurrency 32] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

POSTGRES = os.environ.get("FORGE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def settings_for(database: str, state: Path) -> Any:
    from forge_core.settings import load_settings

    base = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return load_settings(
        database={"url": f"{base}/{database}", "state_dir": str(state), "pool_size": 20},
        plugins={"autoload": False},
    )


def serve(database: str, state: str, port: int) -> None:
    """The server process: the API plus the baseline route, on one uvicorn worker."""
    import logging

    import uvicorn
    from sqlalchemy import text

    from forge_core.api.app import create_app
    from forge_core.plugin.host import load_plugins

    settings = settings_for(database, Path(state))
    app = create_app(settings, load_plugins(settings.plugins))
    # Request logs are off: one JSON line per request would measure the terminal, not the API.
    logging.getLogger("forge").setLevel(logging.WARNING)

    @app.get("/baseline", include_in_schema=False)
    async def baseline() -> dict[str, int]:
        async with app.state.services.store.sessions() as session:
            value = (await session.execute(text("SELECT 1"))).scalar_one()
        return {"value": value}

    uvicorn.run(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, timeout_keep_alive=60
    )


async def admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def measure(
    client: httpx.AsyncClient,
    total: int,
    concurrency: int,
    request: Callable[[int], Any],
    expected: int,
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    counter = iter(range(total))

    async def one_client() -> None:
        for index in counter:
            started = time.perf_counter()
            response = await request(index)
            latencies.append(time.perf_counter() - started)
            if response.status_code != expected:
                raise RuntimeError(f"unexpected {response.status_code}: {response.text[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return total / (time.perf_counter() - started), latencies


def report(
    results: list[tuple[str, float, list[float]]], total: int, concurrency: int, number: int, repeat: int
) -> None:
    baseline_rate = results[0][1]
    print(
        f"run {number}/{repeat}: {total} requests per endpoint, {concurrency} concurrent clients, "
        "PostgreSQL, 1 uvicorn worker"
    )
    print(f"{'endpoint':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs baseline':>12}")
    for name, rate, latencies in results:
        ordered = sorted(latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        print(f"{name:28} {rate:9.0f} {p50:8.1f} {p99:8.1f} {rate / baseline_rate:12.2f}")


def plan(phases: int = 3, tasks: int = 4, steps: int = 3) -> dict[str, Any]:
    def task(p: int, t: int) -> dict[str, Any]:
        return {
            "key": f"phase-{p}/project-{t}",
            "project_name": f"project-{t}",
            "project_path": f"services/project-{t}",
            "steps": [
                {"name": f"step-{s}", "action": "earthly", "target": f"+target-{s}"}
                for s in range(steps)
            ],
        }

    return {
        "phases": [
            {"name": f"phase-{p}", "group_number": p, "tasks": [task(p, t) for t in range(tasks)]}
            for p in range(phases)
        ]
    }


def new_run(repository: str) -> dict[str, str]:
    return {"repository": repository, "commit_sha": uuid.uuid4().hex, "triggered_by": "bench"}


async def main(total: int, concurrency: int, repeat: int = 1) -> None:
    from forge_core.adapters.auth.keys import platform_key

    database = f"forge_bench_{uuid.uuid4().hex[:8]}"
    state = Path(tempfile.mkdtemp(prefix="forge-bench-"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await admin(f'CREATE DATABASE "{database}"')
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(database, str(state), port), daemon=True
    )
    server.start()
    try:
        token = platform_key(settings_for(database, state)).mint("bench", roles=["admin"])
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            limits=limits,
            timeout=60,
        ) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or not server.is_alive():
                    raise SystemExit("the API did not start")
                await asyncio.sleep(0.1)
            run = (await client.post("/v1/runs", json=new_run("acme/bench"))).json()
            (await client.post(f"/v1/runs/{run['id']}/plan", json=plan())).raise_for_status()
            repository = f"acme/bench-{uuid.uuid4().hex[:6]}"

            def get_baseline(_: int) -> Any:
                return client.get("/baseline")

            def get_run(_: int) -> Any:
                return client.get(f"/v1/runs/{run['id']}")

            def post_run(_: int) -> Any:
                return client.post("/v1/runs", json=new_run(repository))

            cases = [("GET /baseline (SELECT 1)", get_baseline, 200),
                     ("GET /v1/runs/{id} (3x4x3)", get_run, 200),
                     ("POST /v1/runs", post_run, 201)]
            for _, request, expected in cases:  # warm up connections, caches and the pool
                await measure(client, min(300, total), concurrency, request, expected)
            ratios: dict[str, list[float]] = {name: [] for name, _, _ in cases}
            for number in range(1, repeat + 1):
                results = [(name, *await measure(client, total, concurrency, request, expected))
                           for name, request, expected in cases]
                report(results, total, concurrency, number, repeat)
                for name, rate, _ in results:
                    ratios[name].append(rate / results[0][1])
        if repeat > 1:
            print("median ratio vs baseline over the runs:")
            for name, values in ratios.items():
                listed = " ".join(f"{v:.2f}" for v in values)
                print(f"  {name:28} {statistics.median(values):5.2f}  ({listed})")
    finally:
        server.terminate()
        server.join(timeout=10)
        await admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per endpoint")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure every endpoint this many times in one server, one ratio each")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.concurrency, arguments.repeat))
