"""The ``earthly`` step runner: runs a step's Earthly target in the project's checkout."""

from forge_core.sdk import ExecutionContext, NotImplementedInThisVersion, ProjectRef, StepOutcome, StepSpec


class EarthlyStepRunner:
    def run(self, step: StepSpec, project: ProjectRef, ctx: ExecutionContext) -> StepOutcome:
        raise NotImplementedInThisVersion("running Earthly targets arrives with the Earthly issue")
