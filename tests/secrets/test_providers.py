"""The built-in secret providers ``env`` and ``file``, and the secret-provider family itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from forge_core.builtin.secrets import EnvSecretProvider, FileSecretProvider
from forge_core.domain.errors import SecretError
from forge_core.domain.models import SecretRef
from forge_core.plugin.family import Family
from forge_core.plugin.host import PluginHost, PluginInfo, Status
from forge_core.plugin.markers import hookimpl
from forge_core.plugin.registry import SecretProviderRegistrar
from forge_core.settings import load_settings
from forge_core.testing.contracts import SecretProviderContract

VALUE = "s3cr3t-contract-value"


class TestBuiltinSecretProviders(SecretProviderContract):
    plugin_id = "core.secrets"
    builtin = True
    names = ("env", "file")

    @pytest.fixture(autouse=True)
    def _environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ACME_CONTRACT_SECRET", VALUE)

    def options(self, name: str, tmp_path: Path) -> dict[str, Any]:
        return {"dir": tmp_path / "secrets"} if name == "file" else {}

    def secret(self, name: str, tmp_path: Path) -> tuple[SecretRef, str]:
        if name == "env":
            return SecretRef(provider="env", path="ACME_CONTRACT_SECRET"), VALUE
        (tmp_path / "secrets").mkdir(exist_ok=True)
        (tmp_path / "secrets" / "token").write_text(VALUE + "\n")
        return SecretRef(provider="file", path="token"), VALUE


# --- env ----------------------------------------------------------------------------------------


def test_env_reads_a_variable_and_a_field_of_its_json() -> None:
    provider = EnvSecretProvider(environ={"TOKEN": "abc", "CREDS": json.dumps({"user": "bot", "password": "pw-1"})})
    assert provider.resolve(SecretRef(provider="env", path="TOKEN")) == "abc"
    assert provider.resolve(SecretRef(provider="env", path="CREDS", key="password")) == "pw-1"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (SecretRef(path="NOPE"), "env secret 'NOPE': the worker has no such environment variable"),
        (SecretRef(path="TOKEN", key="user"), "env secret 'TOKEN', key 'user': the value is not JSON"),
        (SecretRef(path="CREDS", key="token"), "env secret 'CREDS', key 'token': no such key (keys: password, user)"),
        (SecretRef(path="FORGE_DATABASE__URL"), "variables named FORGE_* are the platform's own settings"),
    ],
)
def test_env_reports_what_it_cannot_resolve_without_the_value(ref: SecretRef, message: str) -> None:
    environ = {
        "TOKEN": "plain-value-1", "CREDS": json.dumps({"user": "bot", "password": "pw-2"}),
        "FORGE_DATABASE__URL": "postgresql://u:dbpass@127.0.0.1/x",
    }
    with pytest.raises(SecretError) as raised:
        EnvSecretProvider(environ=environ).resolve(ref)
    assert message in str(raised.value)
    for value in ("plain-value-1", "pw-2", "dbpass"):
        assert value not in str(raised.value)


# --- file ---------------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "secrets"
    (root / "team").mkdir(parents=True)
    (root / "team" / "token").write_text("file-token\n")
    (root / "creds.json").write_text(json.dumps({"access_key": "AKIA-1", "nested": {"a": 1}}))
    (root / "creds.yaml").write_text("user: bot\npassword: yaml-pw\n")
    (root / "deploy.env").write_text("# comment\nexport API_KEY='env-file-key'\nOTHER=1\n")
    (root / "broken.json").write_text("{not json")
    (root / "list.json").write_text('["AKIA-1"]')
    (tmp_path / "outside.txt").write_text("outside-secret")
    (root / "link").symlink_to(tmp_path / "outside.txt")
    return root


@pytest.mark.parametrize(
    ("path", "key", "value"),
    [
        ("team/token", None, "file-token"),
        ("creds.json", "access_key", "AKIA-1"),
        ("creds.yaml", "password", "yaml-pw"),
        ("deploy.env", "API_KEY", "env-file-key"),
    ],
)
def test_file_reads_a_file_or_a_field_of_it(folder: Path, path: str, key: str | None, value: str) -> None:
    provider = FileSecretProvider({"dir": folder})
    assert provider.resolve(SecretRef(provider="file", path=path, key=key)) == value


@pytest.mark.parametrize(
    ("path", "key", "message"),
    [
        ("../outside.txt", None, "file secret '../outside.txt': the path leaves the secrets folder"),
        ("link", None, "file secret 'link': the path leaves the secrets folder"),
        ("/etc/passwd", None, "the path leaves the secrets folder"),
        ("missing", None, "file secret 'missing': no such file in the secrets folder"),
        ("creds.json", "secret_key",
         "file secret 'creds.json', key 'secret_key': no such key (keys: access_key, nested)"),
        ("creds.json", "nested", "key 'nested': the key holds a dict, not a string"),
        ("broken.json", "x", "file secret 'broken.json', key 'x': the file is not valid JSON"),
        ("team/token", "x", "file secret 'team/token', key 'x': the file is not valid JSON"),
        ("list.json", "x", "file secret 'list.json', key 'x': the value is not a JSON object"),
    ],
)
def test_file_refuses_escapes_and_reports_missing_secrets(
    folder: Path, path: str, key: str | None, message: str
) -> None:
    with pytest.raises(SecretError) as raised:
        FileSecretProvider({"dir": folder}).resolve(SecretRef(provider="file", path=path, key=key))
    assert message in str(raised.value)
    for value in ("outside-secret", "AKIA-1", "file-token"):
        assert value not in str(raised.value)


def test_file_without_a_folder_says_which_setting_to_set() -> None:
    with pytest.raises(SecretError, match="no secrets folder is configured \\(set FORGE_SECRETS__FILE__DIR\\)"):
        FileSecretProvider({}).resolve(SecretRef(provider="file", path="token"))


# --- the family ---------------------------------------------------------------------------------


def test_each_provider_gets_its_own_settings_section(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORGE_SECRETS__FILE__DIR", str(tmp_path))
    monkeypatch.setenv("FORGE_SECRETS__VAULT__ADDRESS", "http://127.0.0.1:8200")
    monkeypatch.setenv("FORGE_SECRETS__VAULT__ROLE", "forge")
    settings = load_settings()
    assert settings.secrets.options("file") == {"dir": tmp_path}
    assert settings.secrets.options("vault") == {"address": "http://127.0.0.1:8200", "role": "forge"}
    assert settings.secrets.options("env") == {}


class NoResolve:
    def lookup(self, ref: SecretRef) -> str:
        return "x"


def test_a_provider_class_without_resolve_fails_its_plugin_at_load(
    forge_host: PluginHost, forge_register: Callable[..., PluginInfo]
) -> None:
    class Broken:
        @hookimpl
        def forge_register_secret_providers(self, register: SecretProviderRegistrar) -> None:
            register.add("vault", NoResolve)

    info = forge_register(Broken(), "acme-vault")
    assert info.status == Status.FAILED
    assert info.error == (
        "secret provider 'vault': NoResolve does not implement SecretProvider (missing method 'resolve')"
    )
    assert (Family.SECRET_PROVIDER, "vault") not in forge_host.registry


def test_the_core_registers_env_and_file(forge_host: PluginHost) -> None:
    assert forge_host.registry.names(Family.SECRET_PROVIDER) == ["env", "file"]
    assert forge_host.plugins["core.secrets"].registrations == {"secret_provider": ["env", "file"]}
