#!/usr/bin/env python3
"""The console with a big run: a run of 1,000 tasks (10 phases x 100 tasks, one step each).

Serves the Platform API with the console (uvicorn, its own process) on the embedded SQLite
database, and measures, beside the baseline of the same run as JSON (``GET /v1/runs/{id}``):

- server time of the run's page (``GET /ui/runs/{id}``, the whole tree rendered);
- browser load of that page in Debian's chromium (navigation until ``load``: server, transfer,
  parsing, layout, htmx and its stream connecting);
- a status change reaching the open page: from the ``PUT /v1/steps/{id}/status`` to the step
  showing its new status in the page's DOM (through the server-sent events stream).

Prints medians (and the worst) of each; targets: page under 1 s, a change within 1 s.

    .venv/bin/python benchmarks/console.py [--repeat 7] [--phases 10] [--tasks 100]
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

CHROMIUM = "/usr/bin/chromium"


def settings_for(state: Path) -> Any:
    from forge_core.settings import load_settings

    return load_settings(state_dir=str(state), plugins={"autoload": False})


def serve(state: str, port: int) -> None:
    import uvicorn

    from forge_core.api.app import create_app
    from forge_core.plugin.host import load_plugins

    settings = settings_for(Path(state))
    uvicorn.run(create_app(settings, load_plugins(settings.plugins)), host="127.0.0.1", port=port,
                log_config=None, access_log=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def summary(name: str, seconds: list[float]) -> str:
    return f"{name:<44} median {statistics.median(seconds) * 1000:8.1f} ms   worst {max(seconds) * 1000:8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--phases", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=100, help="tasks per phase")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from forge_core.adapters.auth.keys import platform_key
    from forge_core.api.ui.session import LOGIN_PURPOSE

    with tempfile.TemporaryDirectory(prefix="forge-bench-console-") as folder:
        state = Path(folder)
        key = platform_key(settings_for(state))  # created here, read by the server
        port = free_port()
        server = multiprocessing.get_context("spawn").Process(target=serve, args=(str(state), port), daemon=True)
        server.start()
        base = f"http://127.0.0.1:{port}"
        admin = {"Authorization": f"Bearer {key.mint('bench', permissions=['admin'], ttl_seconds=3600)}"}
        http = httpx.Client(base_url=base, headers=admin, timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                if http.get("/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        try:
            run = http.post("/v1/runs", json={"repository": "acme/big", "commit_sha": uuid.uuid4().hex,
                                              "branch": "main", "triggered_by": "bench"}).json()
            plan = {"phases": [
                {"name": f"phase-{p}", "group_number": p + 1, "tasks": [
                    {"key": f"project-{t}/phase-{p}", "project_name": f"project-{t}", "project_path": f"p/{t}",
                     "steps": [{"name": "build", "action": "exec", "target": "make build"}]}
                    for t in range(args.tasks)
                ]} for p in range(args.phases)
            ]}
            recorded = http.post(f"/v1/runs/{run['id']}/plan", json=plan)
            assert recorded.status_code == 201, recorded.text
            steps = [task["steps"][0]["id"] for phase in recorded.json()["phases"] for task in phase["tasks"]]
            http.put(f"/v1/runs/{run['id']}/status", json={"status": "running"}).raise_for_status()
            total = args.phases * args.tasks
            print(f"a run of {total} tasks ({args.phases} phases x {args.tasks}), {args.repeat} repeats, SQLite")

            link = key.mint("bench", permissions=["read"], ttl_seconds=600, extra={"purpose": LOGIN_PURPOSE})
            page_path = f"/ui/runs/{run['id']}"
            viewer = httpx.Client(base_url=base, timeout=60)
            viewer.get("/ui/session", params={"token": link})
            json_times, page_times = [], []
            for _ in range(args.repeat):
                started = time.perf_counter()
                assert http.get(f"/v1/runs/{run['id']}").status_code == 200
                json_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                answer = viewer.get(page_path)
                page_times.append(time.perf_counter() - started)
                assert answer.status_code == 200 and answer.text.count('class="task"') == total

            load_times, change_times = [], []
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"{base}/ui/session?token={link}&next={page_path}")
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    page.goto(f"{base}{page_path}", wait_until="load")
                    load_times.append(time.perf_counter() - started)
                page.wait_for_timeout(500)  # the stream is connected and has sent the first tree
                for index, step in enumerate(steps[: args.repeat]):
                    selector = f'.step[data-step="{step}"] .status'
                    started = time.perf_counter()
                    http.put(f"/v1/steps/{step}/status", json={"status": "running"}).raise_for_status()
                    page.wait_for_function(
                        "s => document.querySelector(s)?.textContent === 'running'", arg=selector, timeout=10_000
                    )
                    change_times.append(time.perf_counter() - started)
                    assert index < len(steps)
                browser.close()

            print(summary("baseline: GET /v1/runs/{id} (JSON)", json_times))
            print(summary("GET /ui/runs/{id} (server time, HTML)", page_times))
            print(summary("browser load of the run page", load_times))
            print(summary("a status change reaching the open page", change_times))
            ratio = statistics.median(page_times) / statistics.median(json_times)
            print(f"the page costs {ratio:.2f}x the JSON; targets: page < 1000 ms, change < 1000 ms")
        finally:
            server.terminate()
            server.join(timeout=10)


if __name__ == "__main__":
    main()
