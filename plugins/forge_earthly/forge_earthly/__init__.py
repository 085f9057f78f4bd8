"""Catalyst Forge plugin: the ``earthly`` step runner and producer (Earthly targets)."""

from forge_core.sdk import ProducerRegistrar, StepRunnerRegistrar, hookimpl
from forge_earthly.settings import EarthlyProducerSettings, EarthlyStepSettings

__version__ = "0.1.0"


@hookimpl
def forge_register_step_runners(register: StepRunnerRegistrar) -> None:
    register.add(
        "earthly",
        "forge_earthly.runner:EarthlyStepRunner",
        description="Run an Earthly target",
        settings=EarthlyStepSettings,
    )


@hookimpl
def forge_register_producers(register: ProducerRegistrar) -> None:
    register.add(
        "earthly",
        "forge_earthly.producer:EarthlyProducer",
        # Earthly builds anything a target can SAVE ARTIFACT, Python distributions included
        artifact_types=["container", "binary", "archive", "python"],
        description="Build an artifact with an Earthly target",
        settings=EarthlyProducerSettings,
    )
