from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from forge_core.sdk import Family, StepSpec
from forge_core.testing import PluginHost
from forge_core.testing.contracts import ProducerContract, StepRunnerContract
from forge_earthly.testing import EarthlyStandin


class TestEarthlyStepRunner(StepRunnerContract):
    plugin_id = "forge_earthly"
    distribution = "catalyst-forge-earthly"
    names = ("earthly",)

    @pytest.fixture(autouse=True)
    def _standin(self, earthly_standin: EarthlyStandin) -> None:
        self.standin = earthly_standin

    def step(self, name: str, tmp_path: Path) -> StepSpec:
        self.standin.script(tmp_path, {"test": {"print": ["ok"]}})
        return StepSpec(name="contract", action=name, target="+test")


class TestEarthlyProducer(ProducerContract):
    plugin_id = "forge_earthly"
    distribution = "catalyst-forge-earthly"
    names = ("earthly",)

    @pytest.fixture(autouse=True)
    def _standin(self, earthly_standin: EarthlyStandin) -> None:
        self.standin = earthly_standin

    def producer_settings(self, name: str, tmp_path: Path) -> dict[str, Any]:
        self.standin.script(tmp_path / "demo", {"docker": {"image": {"files": {"app/hello": "hi"}}}})
        return {"target": "+docker"}


def test_earthly_producer_makes_containers_binaries_archives_and_python_packages(
    forge_installed_host: PluginHost,
) -> None:
    options = forge_installed_host.get(Family.PRODUCER, "earthly").options
    assert options["artifact_types"] == ("container", "binary", "archive", "python")


def test_earthly_producer_settings_are_the_documented_ones(forge_installed_host: PluginHost) -> None:
    schema = forge_installed_host.get(Family.PRODUCER, "earthly").options["settings"]
    binary = schema.model_validate({"target": "+binary", "binaryPath": "dist/x", "os": "linux", "arch": "amd64"})
    assert (binary.target, binary.binary_path) == ("+binary", "dist/x")
    assert schema.model_validate({"target": "./docs+site", "archivePath": "a.tgz", "format": "tar.gz"}).format
    for wrong in ({}, {"target": "docker"}, {"target": "+docker", "imageref": "x"}, {"target": "+a", "format": "rar"}):
        with pytest.raises(ValidationError):
            schema.model_validate(wrong)


def test_earthly_step_settings_type_args_and_platforms(forge_installed_host: PluginHost) -> None:
    schema = forge_installed_host.get(Family.STEP_RUNNER, "earthly").options["settings"]
    settings = schema.model_validate({"args": {"VERSION": "1"}, "platforms": ["linux/amd64"]})
    assert (settings.args, settings.platforms) == ({"VERSION": "1"}, ["linux/amd64"])
    with pytest.raises(ValidationError):
        schema.model_validate({"args": ["VERSION=1"]})


def test_earthly_producer_retries_take_a_cue_duration(forge_installed_host: PluginHost) -> None:
    schema = forge_installed_host.get(Family.PRODUCER, "earthly").options["settings"]
    settings = schema.model_validate({"target": "+a", "retries": {"attempts": 2, "delay": "1m30s",
                                                                  "filters": ["reset"]}})
    assert (settings.retries.attempts, settings.retries.delay.total_seconds()) == (2, 90)
    for wrong in ({"delay": "soon"}, {"filters": ["("]}, {"attempts": -1}):
        with pytest.raises(ValidationError):
            schema.model_validate({"target": "+a", "retries": wrong})
