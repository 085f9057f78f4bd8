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


def test_earthly_producer_makes_containers_binaries_and_archives(forge_installed_host: PluginHost) -> None:
    options = forge_installed_host.get(Family.PRODUCER, "earthly").options
    assert options["artifact_types"] == ("container", "binary", "archive")
