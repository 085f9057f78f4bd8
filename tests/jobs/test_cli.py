"""``forge worker`` and ``forge dispatch`` as processes, with the exit codes a workflow reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from forge_core.settings import Settings

FORGE = str(Path(sys.executable).parent / "forge")


def forge_env(settings: Settings, api_env: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    return {
        **(api_env or {"FORGE_API__URL": "http://127.0.0.1:9", "FORGE_API__TOKEN": "unused", **os.environ}),
        "FORGE_NATS__URL": str(settings.nats.url),
        "FORGE_NATS__PREFIX": settings.nats.prefix,
        "FORGE_STORAGE__URL": settings.storage.url,
        "FORGE_WORKER__CACHE_DIR": str(settings.worker.cache_dir),
        "FORGE_PLUGINS__ALLOW": "forge_exec",
        **extra,
    }


def dispatch(
    env: dict[str, str], job_type: str, job: dict[str, object], tmp_path: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    job_file, result_file = tmp_path / f"{job_type}-job.json", tmp_path / f"{job_type}-result.json"
    job_file.write_text(json.dumps(job))
    done = subprocess.run(
        [FORGE, "dispatch", "--type", job_type, "--job-file", str(job_file), "--result-file", str(result_file), *extra],
        env=env, capture_output=True, text=True, timeout=60,
    )
    return done, result_file


def recorded_tasks(api: Any, commit: str, targets: dict[str, str]) -> tuple[str, dict[str, dict[str, object]]]:
    """A run created through the API with one task per target (key → target); its id and tasks."""
    run = httpx.post(f"{api.url}/v1/runs", headers=api.headers, json={
        "repository": "acme/cli", "commit_sha": commit, "branch": "main", "triggered_by": "test",
    })
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]
    plan = {"phases": [  # one phase per target: a project takes part in a phase once
        {"name": key, "group_number": 1, "tasks": [{
            "key": key, "project_name": "api", "project_path": "api",
            "steps": [{"name": "check", "action": "exec", "target": target}],
        }]}
        for key, target in targets.items()
    ]}
    recorded = httpx.post(f"{api.url}/v1/runs/{run_id}/plan", headers=api.headers, json=plan)
    assert recorded.status_code == 201, recorded.text
    return run_id, {t["key"]: t for p in recorded.json()["phases"] for t in p["tasks"]}


def ci_job(run_id: str, task: dict[str, object], repo: Path, commit: str) -> dict[str, object]:
    return {"run_id": run_id, "payload": {"task": task, "source": {"repository": str(repo), "commit": commit}}}


def test_worker_and_dispatch_processes_and_their_exit_codes(
    settings: Settings, monorepo: tuple[Path, str], tmp_path: Path, platform_api: Any
) -> None:
    repo, commit = monorepo
    env = forge_env(settings, platform_api.env, FORGE_WORKER__SECRETS=json.dumps({"API_KEY": "k-123456"}))
    run_id, tasks = recorded_tasks(platform_api, commit, {"ok": 'cat hello.txt; echo "$API_KEY"', "bad": "exit 9"})
    with open(tmp_path / "worker.log", "w") as log:
        worker = subprocess.Popen(
            [FORGE, "worker", "--type", "ci", "--concurrency", "2"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 20
        while "pulling from" not in (tmp_path / "worker.log").read_text():
            assert worker.poll() is None and time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            time.sleep(0.05)

        ok, bad = tasks["ok"], tasks["bad"]
        done, result_file = dispatch(env, "ci", ci_job(run_id, ok, repo, commit), tmp_path)
        assert done.returncode == 0, done.stderr
        result = json.loads(result_file.read_text())
        assert result["status"] == "success" and result["job_id"]
        step = ok["steps"][0]  # type: ignore[index]
        log_text = Path(settings.storage.url, f"logs/{run_id}/{ok['id']}/{step['id']}.log").read_text()
        assert log_text == "hello from api\n****\n"

        done, result_file = dispatch(env, "ci", ci_job(run_id, bad, repo, commit), tmp_path)
        assert done.returncode == 5
        assert "exited with code 9" in done.stderr
        assert json.loads(result_file.read_text())["status"] == "failed"

        # the worker recorded every state change through the API
        run = httpx.get(f"{platform_api.url}/v1/runs/{run_id}", headers=platform_api.headers).json()
        recorded = {
            t["key"]: (t["status"], [s["status"] for s in t["steps"]]) for p in run["phases"] for t in p["tasks"]
        }
        assert recorded == {"ok": ("success", ["success"]), "bad": ("failed", ["failed"])}

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
    finally:
        if worker.poll() is None:
            worker.kill()


def test_dispatch_timeout_unreachable_nats_and_bad_job_files(settings: Settings, tmp_path: Path) -> None:
    env = forge_env(settings)
    done, result_file = dispatch(env, "discovery", {"run_id": "r1"}, tmp_path, "--timeout", "0.5")
    assert done.returncode == 6
    assert "no reply for discovery job" in done.stderr
    assert json.loads(result_file.read_text())["status"] == "failed"

    done, _ = dispatch({**env, "FORGE_NATS__URL": "nats://127.0.0.1:9"}, "discovery", {"run_id": "r1"}, tmp_path)
    assert done.returncode == 7
    assert "cannot connect to NATS at nats://127.0.0.1:9" in done.stderr

    done, _ = dispatch(env, "discovery", {"run_id": "r1", "attempt": "x"}, tmp_path)
    assert done.returncode == 2 and "discovery-job.json: attempt" in done.stderr
    done, _ = dispatch(env, "ci", {"run_id": "r1", "type": "artifact"}, tmp_path)
    assert done.returncode == 2 and "is not --type 'ci'" in done.stderr

    worker = subprocess.run([FORGE, "worker", "--type", "ci"], env={**env, "FORGE_NATS__URL": "nats://127.0.0.1:9"},
                            capture_output=True, text=True, timeout=30)
    assert worker.returncode == 7 and "nats://127.0.0.1:9" in worker.stderr


