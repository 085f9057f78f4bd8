"""The bus, storage and worker settings, from FORGE_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from jobs_support import RecordingRecorder

from forge_core.adapters.storage import FsspecStore
from forge_core.domain.errors import ConfigurationError
from forge_core.plugin.host import PluginHost
from forge_core.settings import load_settings
from forge_core.settings.worker import WorkerSettings
from forge_core.worker.runner import Worker


def test_job_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_NATS__URL", "nats://127.0.0.1:4222")
    monkeypatch.setenv("FORGE_NATS__REPLICAS", "3")
    monkeypatch.setenv("FORGE_NATS__ACK_WAIT__CI", "60")
    monkeypatch.setenv("FORGE_STORAGE__URL", "s3://bucket/forge")
    monkeypatch.setenv("FORGE_WORKER__SECRETS", '{"TOKEN": "abc"}')
    settings = load_settings()
    assert settings.nats.url == "nats://127.0.0.1:4222" and settings.nats.replicas == 3
    assert (settings.nats.ack_wait.ci, settings.nats.ack_wait.discovery) == (60, 600)
    assert (settings.nats.max_deliver, settings.nats.prefix) == (3, "")
    assert settings.storage.url == "s3://bucket/forge"
    assert settings.worker.secrets["TOKEN"].get_secret_value() == "abc"
    assert "abc" not in repr(settings)


def test_a_bad_prefix_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_NATS__PREFIX", "has.dots")
    with pytest.raises(ConfigurationError, match="FORGE_NATS__PREFIX"):
        load_settings()


def test_the_worker_cache_lies_under_the_state_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, host: PluginHost,
) -> None:
    """Everything a worker keeps on disk (mirrors, materialised commits, checkouts, job locks) is
    under FORGE_STATE_DIR unless FORGE_WORKER__CACHE_DIR says otherwise; a WorkerSettings made on
    its own too."""
    monkeypatch.setenv("FORGE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert WorkerSettings().cache_dir == tmp_path / "state" / "cache" / "worker"
    settings = load_settings()
    worker = Worker(settings, host, "ci", RecordingRecorder(), FsspecStore.from_settings(settings.storage))
    for folder in (worker.cache_dir, worker.git.root, worker.claims.folder):
        assert folder.is_relative_to(tmp_path / "state"), folder
    monkeypatch.setenv("FORGE_WORKER__CACHE_DIR", str(tmp_path / "elsewhere"))
    assert load_settings().worker.cache_dir == tmp_path / "elsewhere"  # still a setting
