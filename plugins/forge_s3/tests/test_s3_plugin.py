from forge_core.sdk import Family
from forge_core.testing import PluginHost
from forge_core.testing.contracts import PublisherContract


class TestS3Publisher(PublisherContract):
    plugin_id = "forge_s3"
    distribution = "catalyst-forge-s3"
    names = ("s3",)
    implemented = False


def test_s3_publishes_binaries_and_archives(forge_installed_host: PluginHost) -> None:
    assert forge_installed_host.get(Family.PUBLISHER, "s3").options["artifact_types"] == ("binary", "archive")
