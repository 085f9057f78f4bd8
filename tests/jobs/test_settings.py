"""The bus, storage and worker settings, from FORGE_* variables."""

from __future__ import annotations

import pytest

from forge_core.domain.errors import ConfigurationError
from forge_core.settings import load_settings


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
