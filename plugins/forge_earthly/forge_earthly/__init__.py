"""Catalyst Forge plugin: the ``earthly`` step runner and producer (Earthly targets)."""

from forge_core.sdk import ProducerRegistrar, StepRunnerRegistrar, hookimpl

__version__ = "0.1.0"


@hookimpl
def forge_register_step_runners(register: StepRunnerRegistrar) -> None:
    register.add("earthly", "forge_earthly.runner:EarthlyStepRunner", description="Run an Earthly target")


@hookimpl
def forge_register_producers(register: ProducerRegistrar) -> None:
    register.add(
        "earthly",
        "forge_earthly.producer:EarthlyProducer",
        artifact_types=["container", "binary", "archive"],
        description="Build an artifact with an Earthly target",
    )
