"""Catalyst Forge plugin: the ``exec`` step runner (a step's target as a shell command) and the
``exec`` producer (a command that writes an artifact's declared outputs)."""

from forge_core.sdk import ProducerRegistrar, StepRunnerRegistrar, hookimpl
from forge_exec.settings import ExecProducerSettings, ExecStepSettings

__version__ = "0.1.0"


@hookimpl
def forge_register_step_runners(register: StepRunnerRegistrar) -> None:
    register.add(
        "exec",
        "forge_exec.runner:ExecStepRunner",
        description="Run the step's target as a shell command",
        settings=ExecStepSettings,
    )


@hookimpl
def forge_register_producers(register: ProducerRegistrar) -> None:
    register.add(
        "exec",
        "forge_exec.producer:ExecProducer",
        artifact_types=["binary", "archive", "container", "python"],
        description="Run a shell command that writes the artifact's files, folder or OCI image layout",
        settings=ExecProducerSettings,
    )
