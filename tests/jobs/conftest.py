"""Fixtures for the job tests: the real NATS at 127.0.0.1:4222 behind a unique prefix per test,
local object storage, a plugin host with the test handler, workers in-process or as processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import jobs_support

from forge_core.adapters.storage import FsspecStore
from forge_core.plugin.host import PluginHost, PluginInfo, load_plugins
from forge_core.settings import PluginSettings, Settings
from forge_core.settings.nats import AckWaitSettings, NatsSettings
from forge_core.settings.storage import StorageSettings
from forge_core.settings.worker import WorkerSettings
from forge_core.worker.embedded import running_worker
from forge_core.worker.runner import Worker

NATS_URL = "nats://127.0.0.1:4222"
HERE = Path(__file__).parent


@pytest.fixture
def settings(prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        nats=NatsSettings(url=NATS_URL, prefix=prefix, ack_wait=AckWaitSettings(artifact=2, ci=5)),
        storage=StorageSettings(url=str(tmp_path / "storage")),
        worker=WorkerSettings(cache_dir=tmp_path / "cache", shutdown_grace_seconds=2),
    )


@pytest.fixture
def storage(settings: Settings) -> FsspecStore:
    return FsspecStore.from_settings(settings.storage)


@pytest.fixture
def host() -> PluginHost:
    """The core's built-ins, the exec and earthly step runners, and the test handler (artifact)."""
    plugins = load_plugins(PluginSettings(allow=["forge_exec", "forge_earthly"]))
    plugins.withdraw("core.artifact")  # the test handler stands in for the artifact job
    plugins.admit(jobs_support, PluginInfo("jobs-test", None, None))
    return plugins


@pytest.fixture
def recorder() -> jobs_support.RecordingRecorder:
    return jobs_support.RecordingRecorder()


running = running_worker
"""``worker`` pulling in this event loop until the block ends (then stopped gracefully)."""


@pytest.fixture
def make_worker(
    settings: Settings, host: PluginHost, recorder: jobs_support.RecordingRecorder, storage: FsspecStore
) -> Callable[..., Worker]:
    def make(job_type: str = jobs_support.HANDLER_TYPE, **options: Any) -> Worker:
        return Worker(settings, host, job_type, recorder, storage, **options)

    return make


class WorkerProcess:
    """A worker in its own process (so a test can kill it -9)."""

    def __init__(self, settings: Settings, job_type: str, recorder_file: Path, log_file: Path) -> None:
        self.args = [sys.executable, str(HERE / "worker_process.py"), settings.model_dump_json(), job_type,
                     str(recorder_file)]
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, cwd=HERE,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 20
        while b"pulling from" not in self.log_file.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker did not start:\n{self.log_file.read_text()}")
            time.sleep(0.05)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def worker_process(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(job_type: str = jobs_support.HANDLER_TYPE, *, recorder_file: Path | None = None) -> WorkerProcess:
        process = WorkerProcess(
            settings, job_type, recorder_file or tmp_path / "recorded.jsonl", tmp_path / f"worker-{len(started)}.log"
        )
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.kill()


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def monorepo(tmp_path: Path) -> tuple[Path, str]:
    """A git repository with two projects (api, web); returns its path and the commit."""
    repo = tmp_path / "monorepo"
    (repo / "api").mkdir(parents=True)
    (repo / "web").mkdir()
    (repo / "api" / "hello.txt").write_text("hello from api\n")
    (repo / "web" / "index.html").write_text("<p>web</p>\n")
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", ".", cwd=repo)
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "init", cwd=repo)
    return repo, git("rev-parse", "HEAD", cwd=repo)
