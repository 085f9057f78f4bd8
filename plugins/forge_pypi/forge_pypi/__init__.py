"""Catalyst Forge plugin: Python package artifacts and the ``pypi`` publisher."""

from forge_core.sdk import ArtifactTypeRegistrar, PublisherRegistrar, hookimpl
from forge_pypi.settings import PypiTargetSettings

__version__ = "0.1.0"


@hookimpl
def forge_register_artifact_types(register: ArtifactTypeRegistrar) -> None:
    register.add("python", description="A Python distribution (wheel and sdist)")


@hookimpl
def forge_register_publishers(register: PublisherRegistrar) -> None:
    register.add(
        "pypi",
        "forge_pypi.publisher:PypiPublisher",
        artifact_types=["python"],
        description="Upload Python distributions to a PyPI-compatible index",
        settings=PypiTargetSettings,
    )
