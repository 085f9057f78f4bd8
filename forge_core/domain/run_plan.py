"""The run plan: what one run of a commit executes, in one shape from discovery to the worker.

Discovery writes it (:meth:`forge_core.domain.plan.DiscoveryDocument.run_plan`), the Platform API
takes it (``POST /v1/runs/{id}/plan``), stores it and returns it with the ids it assigned (and in
``GET /v1/runs/{id}``), the orchestrator runs its phase groups, and a ``ci`` job carries one of its
tasks to a worker, whose handler gives each step runner the step's :class:`StepSpec` unchanged:
every field written in CUE (name, action, target, timeout, settings, secrets, retries) arrives as
written. Ids are None until the API has recorded the plan.
"""

from __future__ import annotations

from datetime import timedelta

from forge_core.domain.models import ArtifactSpec, Model, ProjectRef, PublishTarget, StepSpec
from forge_core.domain.promotion import Environments

STEP_FIELDS = frozenset(StepSpec.model_fields)


class StepPlan(StepSpec):
    """A step of the plan: its spec as written in CUE, and its id once recorded."""

    id: str | None = None

    def spec(self) -> StepSpec:
        """What the step runner gets: the step as written, without the plan's bookkeeping."""
        return StepSpec.model_validate({name: getattr(self, name) for name in STEP_FIELDS})

    @classmethod
    def of(cls, spec: StepSpec) -> StepPlan:
        return cls.model_validate({name: getattr(spec, name) for name in STEP_FIELDS})


class TaskPlan(Model):
    """One project's part in one phase (``key`` is ``<project>/<phase>``); its steps run in order.
    ``timeout`` is the task's (the project's phase timeout, else the phase's): the limit of each
    step that has none of its own."""

    id: str | None = None
    key: str
    project_name: str
    project_path: str
    timeout: timedelta | None = None
    steps: tuple[StepPlan, ...] = ()

    def step_limit(self, step: StepSpec) -> timedelta | None:
        """The one limit a worker enforces on ``step``: its own timeout, else the task's."""
        return step.timeout or self.timeout

    def unrecorded(self) -> str | None:
        """Where the first missing id is (``id``, ``steps.2.id``); None when all are there."""
        if self.id is None:
            return "id"
        return next((f"steps.{k}.id" for k, step in enumerate(self.steps) if step.id is None), None)


class PhasePlan(Model):
    """A phase of ``repo.cue``: phases sharing a ``group_number`` run together, groups in order.
    ``required``: a failure stops the run; a non-required phase's failure is recorded while the
    run goes on (the orchestrator's rule). A plan that does not say is strict."""

    id: str | None = None
    name: str
    group_number: int
    required: bool = True
    tasks: tuple[TaskPlan, ...] = ()


class PlannedArtifact(Model):
    """An artifact from ``project.cue`` (type, producer and its settings, publisher names) with
    the targets of its publishers from ``repo.cue`` (credentials as references)."""

    spec: ArtifactSpec
    publishers: tuple[PublishTarget, ...] = ()


class ArtifactPlan(PlannedArtifact):
    """A planned artifact of a run, with the project it belongs to."""

    project: ProjectRef


class RunPlan(Model):
    """Phases (in run order) → tasks → steps, and the artifacts of the planned projects."""

    phases: tuple[PhasePlan, ...] = ()
    artifacts: tuple[ArtifactPlan, ...] = ()
    # The repository's environments block (None: the defaults); promotions of the run's releases use it.
    environments: Environments | None = None

    def groups(self) -> list[list[PhasePlan]]:
        """Phases grouped by ``group_number``, in order: a group's phases run together."""
        numbers = sorted({p.group_number for p in self.phases})
        return [[p for p in self.phases if p.group_number == n] for n in numbers]

    def unrecorded(self) -> str | None:
        """Where the first missing id is (``phases.0.tasks.1.id``), or None when every phase,
        task and step has one: only a recorded plan can run."""
        for i, phase in enumerate(self.phases):
            if phase.id is None:
                return f"phases.{i}.id"
            for j, task in enumerate(phase.tasks):
                missing = task.unrecorded()
                if missing is not None:
                    return f"phases.{i}.tasks.{j}.{missing}"
        return None


def id_of(entity: PhasePlan | TaskPlan | StepPlan) -> str:
    """The id the API gave ``entity``; a plan that runs is a recorded one (see :meth:`RunPlan.unrecorded`)."""
    if entity.id is None:
        raise ValueError(f"{type(entity).__name__} has no id: only a recorded plan runs")
    return entity.id
