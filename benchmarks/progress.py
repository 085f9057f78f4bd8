#!/usr/bin/env python3
"""What one refresh of `forge run`'s live progress costs, beside the whole-run read it replaced.

On the embedded API (`forge run`'s: in-process, SQLite in a temporary state directory), for runs
of N tasks (one step each), in one run of this script:

- baseline: ``GET /v1/runs/{id}`` and drawing the whole tree (`run_tree`) — what the display
  did every 0.25 s before, O(tasks) per refresh and so O(tasks²) per run;
- changes: one task changes, then ``GET /v1/runs/{id}/progress?since=<cursor>`` and applying it
  to the live view (`RunView.apply`: the changed node redrawn).

Prints the median of ``--repeats`` refreshes of each, in milliseconds, the answer's bytes, and the
ratio changes/baseline; the changes' cost should stay flat as N grows.

    .venv/bin/python benchmarks/progress.py [--tasks 150,1500] [--repeats 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from typing import Any


def plan(tasks: int) -> dict[str, Any]:
    return {"phases": [{"name": "test", "group_number": 1, "tasks": [
        {"key": f"test/p{i:05}", "project_name": f"p{i:05}", "project_path": f"p{i:05}",
         "steps": [{"name": "unit", "action": "earthly", "target": "+test"}]} for i in range(tasks)]}]}


async def measure(tasks: int, repeats: int) -> dict[str, float]:
    from forge_core.cli.pipeline import RUN_PERMISSIONS
    from forge_core.cli.platform import platform_client
    from forge_core.cli.progress import RunView, run_tree
    from forge_core.plugin.host import load_plugins
    from forge_core.services import schemas as s
    from forge_core.settings import load_settings

    with tempfile.TemporaryDirectory() as state:
        os.environ["FORGE_STATE_DIR"] = state
        settings = load_settings(plugins={"autoload": False})
        async with platform_client(settings, load_plugins(settings.plugins), permissions=RUN_PERMISSIONS) as client:
            created = await client.create_run(s.RunCreate(
                repository="local/bench", commit_sha=uuid.uuid4().hex + uuid.uuid4().hex[:8], triggered_by="bench"))
            run_id = str(created.id)
            recorded = await client.record_plan(run_id, plan(tasks))
            ids = [t["id"] for t in recorded["phases"][0]["tasks"]]
            whole, changed, whole_bytes, changed_bytes = [], [], 0, 0
            view = RunView(await client.get_run(run_id))
            view.cursor = (await client.run_changes(run_id, 0)).cursor
            for index in range(repeats):
                started = time.perf_counter()
                run = await client.get_run(run_id)
                run_tree(run)
                whole.append(time.perf_counter() - started)
                whole_bytes = len(run.model_dump_json())

                await client.set_task_status(ids[index * 7 % len(ids)], "running")
                started = time.perf_counter()
                answer = await client.run_changes(run_id, view.cursor)
                view.apply(answer)
                view.renderable()
                changed.append(time.perf_counter() - started)
                changed_bytes = len(answer.model_dump_json())
                assert len(answer.tasks) == 1
    return {"whole_ms": statistics.median(whole) * 1000, "changes_ms": statistics.median(changed) * 1000,
            "whole_bytes": whole_bytes, "changes_bytes": changed_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="150,1500")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    print(f"{'tasks':>6}  {'baseline ms':>11}  {'changes ms':>10}  {'ratio':>6}  {'baseline B':>10}  {'changes B':>9}")
    for tasks in (int(n) for n in args.tasks.split(",")):
        got = asyncio.run(measure(tasks, args.repeats))
        print(f"{tasks:>6}  {got['whole_ms']:>11.1f}  {got['changes_ms']:>10.1f}  "
              f"{got['changes_ms'] / got['whole_ms']:>6.3f}  {got['whole_bytes']:>10}  {got['changes_bytes']:>9}")


if __name__ == "__main__":
    main()
