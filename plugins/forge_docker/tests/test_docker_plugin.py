import pytest
from pydantic import ValidationError

from forge_core.sdk import Family
from forge_core.testing import PluginHost
from forge_core.testing.contracts import PublisherContract


class TestDockerPublisher(PublisherContract):
    plugin_id = "forge_docker"
    distribution = "catalyst-forge-docker"
    names = ("docker",)
    implemented = False


def test_the_container_artifact_type_comes_from_the_core(forge_installed_host: PluginHost) -> None:
    registration = forge_installed_host.get(Family.ARTIFACT_TYPE, "container")
    assert registration.owner.plugin == "core.artifact_types"


def test_docker_publisher_accepts_only_containers(forge_installed_host: PluginHost) -> None:
    assert forge_installed_host.get(Family.PUBLISHER, "docker").options["artifact_types"] == ("container",)


def test_docker_targets_declare_registry_namespace_and_repository(forge_installed_host: PluginHost) -> None:
    schema = forge_installed_host.get(Family.PUBLISHER, "docker").options["settings"]
    target = schema.model_validate({"registry": "ghcr.io", "namespace": "acme", "repository": "api"})
    assert (target.registry, target.namespace, target.repository) == ("ghcr.io", "acme", "api")
    assert schema.model_validate({}).registry == "docker.io"
    with pytest.raises(ValidationError, match="repositroy"):
        schema.model_validate({"registry": "ghcr.io", "repositroy": "api"})
