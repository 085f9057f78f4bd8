import pytest
from pydantic import ValidationError

from forge_core.sdk import Family
from forge_core.testing import PluginHost
from forge_core.testing.contracts import ProducerContract, StepRunnerContract


class TestEarthlyStepRunner(StepRunnerContract):
    plugin_id = "forge_earthly"
    distribution = "catalyst-forge-earthly"
    names = ("earthly",)
    implemented = False


class TestEarthlyProducer(ProducerContract):
    plugin_id = "forge_earthly"
    distribution = "catalyst-forge-earthly"
    names = ("earthly",)
    implemented = False


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
