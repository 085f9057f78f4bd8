"""Catalyst Forge plugin: the ``python`` producer (sdist and wheel) and the ``pypi`` publisher of
Python distributions (``python`` is a type the core declares)."""

from forge_core.sdk import ProducerRegistrar, PublisherRegistrar, hookimpl
from forge_pypi.settings import PypiTargetSettings, PythonBuildSettings

__version__ = "0.1.0"


@hookimpl
def forge_register_producers(register: ProducerRegistrar) -> None:
    register.add(
        "python",
        "forge_pypi.producer:PythonProducer",
        artifact_types=["python"],
        description="Build a Python project's sdist and wheel (python -m build)",
        settings=PythonBuildSettings,
    )


@hookimpl
def forge_register_publishers(register: PublisherRegistrar) -> None:
    register.add(
        "pypi",
        "forge_pypi.publisher:PypiPublisher",
        artifact_types=["python"],
        description="Upload Python distributions to a PyPI-compatible index (twine)",
        settings=PypiTargetSettings,
    )
