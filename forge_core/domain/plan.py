"""The discovery document: what one commit of a monorepo asks the platform to do.

Phase groups in order; in each group one task per participating project and phase, with its steps;
every project's artifacts with their publishers, its release decision (and why), and its deploy
resources. JSON-serialisable (``model_dump(mode="json")``); later stages consume it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field

from forge_core.domain.config import Diagnostic, PhaseConfig, ProjectConfig, RepoConfig
from forge_core.domain.models import (
    Model,
    ProjectRef,
    SourceEvent,
    StepSpec,
    TriggerDecision,
)
from forge_core.domain.promotion import Environments
from forge_core.domain.run_plan import ArtifactPlan, PhasePlan, PlannedArtifact, RunPlan, StepPlan, TaskPlan

DOCUMENT_VERSION = 1


class Task(Model):
    """One project's part in one phase: its steps run in parallel."""

    id: str
    project: ProjectRef
    phase: str
    group: int
    steps: tuple[StepSpec, ...]
    timeout: timedelta | None = None


class PhaseGroup(Model):
    """Phases sharing a group number run together; groups run strictly in order."""

    group: int
    phases: tuple[PhaseConfig, ...]
    tasks: tuple[Task, ...]


class ReleaseDecision(Model):
    """Whether this commit releases the project, why, and each trigger's own verdict."""

    release: bool
    reason: str
    version: str | None = None
    triggers: tuple[TriggerDecision, ...] = ()


class ProjectPlan(Model):
    """Everything discovery decided about one project."""

    project: ProjectRef
    config_file: str
    artifacts: tuple[PlannedArtifact, ...] = ()
    release: ReleaseDecision
    resources: tuple[dict[str, Any], ...] = ()
    aliases: tuple[str, ...] = ()
    """``release.aliases``: the custom alias templates the release job expands."""


class DiscoveryDocument(Model):
    """The output of discovery for one commit (the ``discovery`` job's result)."""

    version: int = DOCUMENT_VERSION
    event: SourceEvent
    forge_version: str | None = None
    tagging_strategy: str | None = None
    groups: tuple[PhaseGroup, ...] = ()
    projects: tuple[ProjectPlan, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    environments: Environments | None = Field(
        default=None, description="repo.cue's environments block; None when it has none (the defaults apply).")
    evaluated: int = Field(default=0, description="Projects evaluated by CUE in this discovery.")
    cached: int = Field(default=0, description="Projects taken from the incremental cache.")

    @property
    def ok(self) -> bool:
        return not self.diagnostics

    def run_plan(self) -> RunPlan:
        """The plan a run records (``POST /v1/runs/{id}/plan``; the API assigns the ids): one
        entry per phase, with its group number, in run order; every step as written in CUE; the
        artifacts of every planned project with their publishers' targets."""
        return RunPlan(
            phases=tuple(
                PhasePlan(
                    name=phase.name,
                    group_number=group.group,
                    required=phase.required,
                    tasks=tuple(
                        TaskPlan(
                            key=task.id,
                            project_name=task.project.name,
                            project_path=task.project.path,
                            timeout=task.timeout,
                            steps=tuple(StepPlan.of(step) for step in task.steps),
                        )
                        for task in group.tasks
                        if task.phase == phase.name
                    ),
                )
                for group in self.groups
                for phase in group.phases
            ),
            artifacts=tuple(
                ArtifactPlan(project=project.project, spec=artifact.spec, publishers=artifact.publishers)
                for project in self.projects
                for artifact in project.artifacts
            ),
            environments=self.environments,
        )


def build_groups(repo: RepoConfig, projects: list[ProjectConfig]) -> tuple[PhaseGroup, ...]:
    """Phase groups in order; tasks ordered by phase, then project name. Built from validated
    configurations, the tasks are not validated again (a large monorepo has thousands)."""
    groups = []
    ordered = sorted(projects, key=lambda p: p.name)
    refs = {project.name: ProjectRef.model_construct(name=project.name, path=project.path) for project in ordered}
    for number in sorted({p.group for p in repo.phases.values()}):
        phases = sorted((p for p in repo.phases.values() if p.group == number), key=lambda p: p.name)
        tasks = [
            Task.model_construct(
                id=f"{project.name}/{phase.name}",
                project=refs[project.name],
                phase=phase.name,
                group=number,
                steps=project.phases[phase.name].steps,
                timeout=project.phases[phase.name].timeout or phase.timeout,
            )
            for phase in phases
            for project in ordered
            if phase.name in project.phases and project.phases[phase.name].steps
        ]
        groups.append(PhaseGroup(group=number, phases=tuple(phases), tasks=tuple(tasks)))
    return tuple(groups)


def plan_project(repo: RepoConfig, project: ProjectConfig, release: ReleaseDecision) -> ProjectPlan:
    artifacts = tuple(
        PlannedArtifact(spec=a, publishers=tuple(repo.publishers[p] for p in a.publishers)) for a in project.artifacts
    )
    return ProjectPlan(
        project=ProjectRef(name=project.name, path=project.path),
        config_file=project.config_file,
        artifacts=artifacts,
        release=release,
        resources=project.resources,
        aliases=project.aliases,
    )
