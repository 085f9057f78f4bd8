import pytest
from pydantic import ValidationError

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


def test_an_s3_target_names_a_valid_bucket(forge_installed_host: PluginHost) -> None:
    schema = forge_installed_host.get(Family.PUBLISHER, "s3").options["settings"]
    target = schema.model_validate({"bucket": "acme-artifacts", "prefix": "releases", "endpointUrl": "http://127.0.0.1:9000"})
    assert (target.bucket, target.prefix, target.endpoint_url) == ("acme-artifacts", "releases", "http://127.0.0.1:9000")
    for wrong in ({}, {"bucket": "Acme_Artifacts"}, {"bucket": "acme", "endpoint": "http://127.0.0.1"}):
        with pytest.raises(ValidationError):
            schema.model_validate(wrong)
