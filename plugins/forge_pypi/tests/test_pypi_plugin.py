from forge_core.sdk import Family
from forge_core.testing import PluginHost
from forge_core.testing.contracts import PublisherContract


class TestPypiPublisher(PublisherContract):
    plugin_id = "forge_pypi"
    distribution = "catalyst-forge-pypi"
    names = ("pypi",)
    implemented = False


def test_declares_the_python_artifact_type(forge_installed_host: PluginHost) -> None:
    assert forge_installed_host.get(Family.ARTIFACT_TYPE, "python").owner.plugin == "forge_pypi"
    assert forge_installed_host.get(Family.PUBLISHER, "pypi").options["artifact_types"] == ("python",)
