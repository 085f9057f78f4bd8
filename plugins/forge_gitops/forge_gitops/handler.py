"""The ``deployment`` job handler: writes environments/<env>/<repository>-<project>/release.yaml."""

from forge_core.sdk import Job, JobContext, JobResult, NotImplementedInThisVersion


class DeploymentHandler:
    def handle(self, job: Job, ctx: JobContext) -> JobResult:
        raise NotImplementedInThisVersion("GitOps pointer commits arrive with the deployment issue")
