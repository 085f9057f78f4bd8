"""Catalyst Forge plugin: the ``exec`` step runner (a step's target as a shell command)."""

from forge_core.sdk import StepRunnerRegistrar, hookimpl
from forge_exec.settings import ExecStepSettings

__version__ = "0.1.0"


@hookimpl
def forge_register_step_runners(register: StepRunnerRegistrar) -> None:
    register.add(
        "exec",
        "forge_exec.runner:ExecStepRunner",
        description="Run the step's target as a shell command",
        settings=ExecStepSettings,
    )
