"""Catalyst Forge plugin: the ``pypi`` publisher of Python distributions (a type the core declares)."""

from forge_core.sdk import PublisherRegistrar, hookimpl
from forge_pypi.settings import PypiTargetSettings

__version__ = "0.1.0"


@hookimpl
def forge_register_publishers(register: PublisherRegistrar) -> None:
    register.add(
        "pypi",
        "forge_pypi.publisher:PypiPublisher",
        artifact_types=["python"],
        description="Upload Python distributions to a PyPI-compatible index",
        settings=PypiTargetSettings,
    )
