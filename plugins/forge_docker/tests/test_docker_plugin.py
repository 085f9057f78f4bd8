from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from forge_core.sdk import Family, ProducedArtifact, PublishedLocation, RegistryReference, open_store
from forge_core.testing import PluginHost
from forge_core.testing.contracts import PublisherContract
from forge_core.testing.registry import RegistryServer


class TestDockerPublisher(PublisherContract):
    plugin_id = "forge_docker"
    distribution = "catalyst-forge-docker"
    names = ("docker",)

    @pytest.fixture(autouse=True)
    def _registry(self, oci_registry: RegistryServer, one_image: Callable[..., tuple[str, str]]) -> None:
        self.registry, self.one_image = oci_registry, one_image

    def target_settings(self, name: str, tmp_path: Path) -> dict[str, Any]:
        return {"registry": self.registry.address, "namespace": "contract"}

    def artifact(self, name: str, tmp_path: Path) -> ProducedArtifact:
        reference, _ = self.one_image(tmp_path / "contract", {"hello": b"contract\n"})
        return ProducedArtifact(name="contract", type="container", project="demo", commit="0" * 40, reference=reference)

    def verify(self, name: str, result: Any, case: Any) -> None:
        assert isinstance(result, PublishedLocation)
        store = open_store(RegistryReference(self.registry.address, "contract/contract"))
        assert store.resolve("contract/contract", "sha-" + "0" * 40).digest == result.digest


def test_the_container_artifact_type_comes_from_the_core(forge_installed_host: PluginHost) -> None:
    registration = forge_installed_host.get(Family.ARTIFACT_TYPE, "container")
    assert registration.owner.plugin == "core.artifact_types"


def test_docker_publisher_accepts_only_containers(forge_installed_host: PluginHost) -> None:
    assert forge_installed_host.get(Family.PUBLISHER, "docker").options["artifact_types"] == ("container",)


def test_docker_targets_declare_registry_namespace_and_repository(forge_installed_host: PluginHost) -> None:
    schema = forge_installed_host.get(Family.PUBLISHER, "docker").options["settings"]
    target = schema.model_validate(
        {
            "registry": "ghcr.io",
            "namespace": "acme",
            "repository": "api",
            "aliases": ["latest"],
            "mountFrom": ["acme/base"],
        }
    )
    assert (target.registry, target.namespace, target.repository) == ("ghcr.io", "acme", "api")
    assert (target.aliases, target.mount_from, target.insecure) == (["latest"], ["acme/base"], False)
    assert schema.model_validate({}).registry == "docker.io"
    with pytest.raises(ValidationError, match="repositroy"):
        schema.model_validate({"registry": "ghcr.io", "repositroy": "api"})
