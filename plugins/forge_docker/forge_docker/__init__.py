"""Catalyst Forge plugin: the ``container`` producer (an image built from files, no daemon) and the
``docker`` publisher of container artifacts (a type the core declares).

The hooks are all this module holds; implementations are imported on first use.
"""

from forge_core.sdk import ProducerRegistrar, PublisherRegistrar, hookimpl
from forge_docker.settings import ContainerSettings, DockerTargetSettings

__version__ = "0.1.0"


@hookimpl
def forge_register_producers(register: ProducerRegistrar) -> None:
    register.add(
        "container",
        "forge_docker.producer:ContainerProducer",
        artifact_types=["container"],
        description="Assemble an OCI image from files onto a base (scratch, a layout, a registry), no daemon",
        settings=ContainerSettings,
    )


@hookimpl
def forge_register_publishers(register: PublisherRegistrar) -> None:
    register.add(
        "docker",
        "forge_docker.publisher:DockerPublisher",
        artifact_types=["container"],
        description="Push container images to an OCI/Docker registry",
        settings=DockerTargetSettings,
    )
