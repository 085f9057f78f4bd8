"""Settings: FORGE_* variables, the TOML file, and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from forge_core.domain.errors import ConfigurationError
from forge_core.settings import load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("FORGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray ./forge.toml


def test_defaults_load_every_installed_plugin() -> None:
    plugins = load_settings().plugins
    assert (plugins.allow, plugins.block, plugins.autoload, plugins.strict, plugins.required) == (
        None,
        [],
        True,
        False,
        [],
    )


def test_lists_accept_commas_spaces_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_PLUGINS__BLOCK", "forge_s3, forge_pypi")
    monkeypatch.setenv("FORGE_PLUGINS__ALLOW", '["forge_docker"]')
    monkeypatch.setenv("FORGE_PLUGINS__STRICT", "true")
    plugins = load_settings().plugins
    assert plugins.block == ["forge_s3", "forge_pypi"]
    assert plugins.allow == ["forge_docker"]
    assert plugins.strict is True


def test_required_plugins_keep_their_version_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_PLUGINS__REQUIRED", "forge_docker>=0.1,<1 forge_s3")
    requirements = load_settings().plugins.requirements()
    assert [(r.name, str(r.specifier)) for r in requirements] == [("forge_docker", "<1,>=0.1"), ("forge_s3", "")]


def test_toml_file_named_by_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "ops.toml"
    config.write_text('[plugins]\nblock = ["forge_github"]\nautoload = true\n')
    monkeypatch.setenv("FORGE_CONFIG_FILE", str(config))
    assert load_settings().plugins.block == ["forge_github"]


def test_environment_beats_the_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "forge.toml").write_text("[plugins]\nstrict = false\n")
    monkeypatch.setenv("FORGE_PLUGINS__STRICT", "1")
    assert load_settings().plugins.strict is True


def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_PLUGINS__STRICT", "perhaps")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert "FORGE_PLUGINS__STRICT" in str(raised.value)
    assert raised.value.exit_code == 2


def test_bad_requirement_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_PLUGINS__REQUIRED", "forge_docker>>1")
    with pytest.raises(ConfigurationError, match="FORGE_PLUGINS__REQUIRED"):
        load_settings()


def test_unknown_setting_in_the_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "forge.toml").write_text("[plugins]\nblocklist = ['x']\n")
    with pytest.raises(ConfigurationError, match="FORGE_PLUGINS__BLOCKLIST"):
        load_settings()


def test_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORGE_CONFIG_FILE", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigurationError, match=r"absent\.toml does not exist"):
        load_settings()


def test_malformed_toml_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "forge.toml").write_text("[plugins\n")
    with pytest.raises(ConfigurationError, match="invalid settings"):
        load_settings()
