"""Catalyst Forge plugin: the ``docker`` publisher of container artifacts (a type the core declares).

The hooks are all this module holds; implementations are imported on first use.
"""

from forge_core.sdk import PublisherRegistrar, hookimpl
from forge_docker.settings import DockerTargetSettings

__version__ = "0.1.0"


@hookimpl
def forge_register_publishers(register: PublisherRegistrar) -> None:
    register.add(
        "docker",
        "forge_docker.publisher:DockerPublisher",
        artifact_types=["container"],
        description="Push container images to an OCI/Docker registry",
        settings=DockerTargetSettings,
    )
