"""Bad input: settings, payloads and credentials, each refused with what and where."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from forge_core.sdk import ConfigurationError
from forge_gitops.credentials import git_auth
from forge_gitops.handler import parse_payload
from forge_gitops.settings import GitOpsSettings, load_settings

ENTRY = {"repository": "acme/shop", "project": "api", "release_commit": "a" * 40, "release_number": 1,
         "release_id": "r-1"}


def test_a_token_in_the_url_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_GITOPS__URL", "https://bot:ghp_s3cret@git.example.test/ops.git")
    with pytest.raises(ConfigurationError) as refused:
        load_settings()
    assert "FORGE_GITOPS__URL" in str(refused.value) and "secret reference" in str(refused.value)
    assert "ghp_s3cret" not in str(refused.value)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORGE_GITOPS__BRANCH", "deploy")
    monkeypatch.setenv("FORGE_GITOPS__PUSH_ATTEMPTS", "4")
    monkeypatch.setenv("FORGE_GITOPS__CREDENTIALS", '{"provider": "env", "path": "OPS_TOKEN"}')
    monkeypatch.setenv("FORGE_STATE_DIR", str(tmp_path))
    loaded = load_settings()
    assert (loaded.branch, loaded.push_attempts) == ("deploy", 4)
    assert loaded.credentials is not None and loaded.credentials.path == "OPS_TOKEN"
    assert loaded.repository_url() == str(tmp_path / "gitops.git")
    monkeypatch.setenv("FORGE_GITOPS__PUSH_ATTEMPTS", "0")
    with pytest.raises(ConfigurationError, match="FORGE_GITOPS__PUSH_ATTEMPTS"):
        load_settings()
    monkeypatch.setenv("FORGE_GITOPS__PUSH_ATTEMPTS", "4")
    assert load_settings().fetch_protocol == 0
    monkeypatch.setenv("FORGE_GITOPS__FETCH_PROTOCOL", "2")
    assert load_settings().fetch_protocol == 2
    monkeypatch.setenv("FORGE_GITOPS__FETCH_PROTOCOL", "1")
    with pytest.raises(ConfigurationError, match="FORGE_GITOPS__FETCH_PROTOCOL"):
        load_settings()


@pytest.mark.parametrize(("payload", "where"), [
    ({"environment": "dev", "actor": "a", "deployments": [{**ENTRY, "release_commit": "abc"}]},
     "payload.deployments[0].release_commit"),
    ({"environment": "dev", "actor": "a", "deployments": []}, "payload.deployments"),
    ({"environment": "dev", "deployments": [ENTRY]}, "payload.actor"),
    ({"environment": "dev", "actor": "a", "deployments": [ENTRY, ENTRY]}, "payload"),
    ({"environment": "dev", "actor": "a", "deployments": [{**ENTRY, "extra": 1}]}, "payload.deployments[0].extra"),
])
def test_a_bad_payload_names_the_field(payload: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        parse_payload(payload)
    assert refused.value.where == where


def test_an_ssh_key_lives_in_a_private_file_for_the_block_only() -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----"
    settings = GitOpsSettings(url="git@git.example.test:ops/gitops.git")
    with git_auth(settings, key) as auth:
        command = auth.env["GIT_SSH_COMMAND"]
        assert key not in command and "BatchMode=yes" in command
        path = Path(command.split(" -i ", 1)[1].split(" ", 1)[0])
        assert path.read_text().strip() == key.strip()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert auth.secrets == (key,)
    assert not path.exists() and not path.parent.exists()


def test_an_https_token_travels_as_a_header_in_the_environment() -> None:
    settings = GitOpsSettings(url="https://git.example.test/ops.git", username="bot")
    with git_auth(settings, "t0ken") as auth:
        assert auth.env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
        assert auth.env["GIT_CONFIG_VALUE_0"].startswith("Authorization: Basic ")
        assert "t0ken" in auth.secrets and all("t0ken" not in v for v in auth.env.values())
