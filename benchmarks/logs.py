#!/usr/bin/env python3
"""`forge logs` of a large step log, beside copying the stored file itself.

Serves the Platform API with uvicorn on a loopback port (SQLite and storage in a temporary state
folder), records a run whose one step has a log of ``--mib`` MiB, then measures in one run, each
the median of ``--repeats``:

- the baseline: the stored file copied to /dev/null 1 MiB at a time (the least any reader pays);
- `forge logs RUN` against the served API (``FORGE_API__URL``): pages of 1 MiB over HTTP;
- `forge logs RUN` with the embedded API (the default: the API in the CLI's process, over an
  in-memory transport, on the same state folder);
- `forge logs` of a one-line log, the command's fixed cost (start-up, plugins, the run's lookup).

Prints MiB/s, each time as a ratio of the baseline, and each command's peak resident memory beside
the one-line log's (the log's size must not show in it).

    uv run python benchmarks/logs.py [--mib 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

FORGE = str(Path(sys.executable).parent / "forge")
PLAN = {"phases": [{"name": "test", "group_number": 1, "tasks": [
    {"key": "api/test", "project_name": "api", "project_path": "api",
     "steps": [{"name": "big", "action": "exec", "target": "true"}]},
    {"key": "web/test", "project_name": "web", "project_path": "web",
     "steps": [{"name": "small", "action": "exec", "target": "true"}]},
]}]}


def serve(state: Path) -> tuple[str, str, Any]:
    """The API on loopback for ``state``: its URL, an admin token, the server (to stop)."""
    import uvicorn

    from forge_core.adapters import structured_logs
    from forge_core.adapters.auth.keys import platform_key
    from forge_core.api.app import create_app
    from forge_core.plugin.host import load_plugins
    from forge_core.settings import load_settings

    os.environ["FORGE_STATE_DIR"] = str(state)
    settings = load_settings()
    app = create_app(settings, load_plugins(settings.plugins))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    structured_logs.configure(path=state / "api.log")  # after the lifespan's: request logs out of the figures
    token = platform_key(settings).mint("bench", roles=["admin"], ttl_seconds=3600)
    return f"http://127.0.0.1:{port}", token, server


def record_run(url: str, token: str, storage: Path, mib: int) -> tuple[str, Path]:
    """A finished run whose api/test step logged ``mib`` MiB and web/test one line; the big log's path."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        run = http.post("/v1/runs", json={"repository": "bench/logs", "commit_sha": uuid.uuid4().hex + "0" * 8,
                                          "triggered_by": "bench"}).json()
        plan = http.post(f"/v1/runs/{run['id']}/plan", json=PLAN).json()
        paths = []
        for task, lines in zip(plan["phases"][0]["tasks"], (mib * 1024, 1), strict=True):
            step = task["steps"][0]
            key = f"logs/{run['id']}/{task['id']}/{step['id']}.log"
            path = storage / key
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as out:
                for i in range(lines):
                    out.write(b"%07d " % i + b"x" * 1015 + b"\n")  # 1 KiB lines
            paths.append(path)
            for status in ("running", "success"):
                answer = http.put(f"/v1/steps/{step['id']}/status", json={"status": status, "logs_s3_key": key})
                answer.raise_for_status()
        return str(run["id"]), paths[0]


def baseline(path: Path) -> float:
    started = time.perf_counter()
    with path.open("rb") as source, open(os.devnull, "wb") as sink:
        shutil.copyfileobj(source, sink, 1024 * 1024)
    return time.perf_counter() - started


def forge_logs(env: dict[str, str], *args: str) -> tuple[float, int]:
    """Seconds and peak resident KiB of one `forge logs ARGS` printing to /dev/null."""
    with open(os.devnull, "wb") as sink:
        started = time.perf_counter()
        child = subprocess.Popen([FORGE, "logs", *args], stdout=sink, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"forge logs {' '.join(args)} failed")
    return elapsed, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="forge-bench-logs-") as tmp:
        state = Path(tmp) / "state"
        url, token, server = serve(state)
        try:
            run_id, big = record_run(url, token, state / "storage", options.mib)
            base = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
            embedded = {**base, "FORGE_STATE_DIR": str(state)}
            remote = {**base, "FORGE_STATE_DIR": str(Path(tmp) / "cli"), "FORGE_API__URL": url,
                      "FORGE_API__TOKEN": token}
            rows: dict[str, list[tuple[float, int]]] = {"copy": []}
            for _ in range(options.repeats):
                rows["copy"].append((baseline(big), 0))
                for name, env in (("remote", remote), ("embedded", embedded)):
                    rows.setdefault(name, []).append(forge_logs(env, run_id, "--task", "api/test"))
                    rows.setdefault(f"{name}-small", []).append(forge_logs(env, run_id, "--task", "web/test"))
        finally:
            server.should_exit = True
    copy = statistics.median(t for t, _ in rows["copy"])
    print(f"log of {options.mib} MiB, median of {options.repeats}")
    print(f"  copy of the stored file (baseline)   {copy:7.2f} s  {options.mib / copy:8.0f} MiB/s")
    for name, label in (("remote", "forge logs, API over loopback HTTP"), ("embedded", "forge logs, embedded API")):
        elapsed = statistics.median(t for t, _ in rows[name])
        fixed = statistics.median(t for t, _ in rows[f"{name}-small"])
        rss = statistics.median(r for _, r in rows[name]) / 1024
        small_rss = statistics.median(r for _, r in rows[f"{name}-small"]) / 1024
        log_time = elapsed - fixed
        share = (f"the log: {log_time:.2f} s, {options.mib / log_time:.0f} MiB/s, {log_time / copy:.1f}x the copy"
                 if log_time > 0 else "the log's own time is within the noise of the fixed cost")
        print(f"  {label:<37}{elapsed:7.2f} s, the command's fixed cost (a one-line log) {fixed:.2f} s; {share}; "
              f"peak RSS {rss:.0f} MiB ({rss - small_rss:+.0f} MiB beside the one-line log's)")


if __name__ == "__main__":
    main()
