import pytest
from pydantic import ValidationError

from forge_core.sdk import Family
from forge_core.testing import PluginHost
from forge_core.testing.contracts import PublisherContract


class TestPypiPublisher(PublisherContract):
    plugin_id = "forge_pypi"
    distribution = "catalyst-forge-pypi"
    names = ("pypi",)
    implemented = False


def test_the_python_artifact_type_comes_from_the_core(forge_installed_host: PluginHost) -> None:
    assert forge_installed_host.get(Family.ARTIFACT_TYPE, "python").owner.plugin == "core.artifact_types"
    assert forge_installed_host.get(Family.PUBLISHER, "pypi").options["artifact_types"] == ("python",)


def test_a_pypi_target_names_its_index_by_url(forge_installed_host: PluginHost) -> None:
    schema = forge_installed_host.get(Family.PUBLISHER, "pypi").options["settings"]
    assert schema.model_validate({"repository": "https://pypi.acme.test/simple/"}).repository
    for wrong in ({}, {"repository": "pypi.acme.test"}, {"repository": "https://x", "url": "https://x"}):
        with pytest.raises(ValidationError):
            schema.model_validate(wrong)
