"""Catalyst Forge plugin: the ``deployment`` job handler (ReleasePointer commits to a GitOps repo)."""

from forge_core.sdk import JobHandlerRegistrar, hookimpl

__version__ = "0.1.0"


@hookimpl
def forge_register_job_handlers(register: JobHandlerRegistrar) -> None:
    register.add(
        "deployment",
        "forge_gitops.handler:DeploymentHandler",
        description="Commit ReleasePointer updates to the GitOps repository",
    )
