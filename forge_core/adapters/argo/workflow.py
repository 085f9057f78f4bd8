"""The Argo Workflow of one run, generated with hera.

Shape: a ``discovery`` dispatch first (the commit still evaluates where the pods run), then per
phase group the ``ci`` dispatch of every task, in parallel within the group (each task depends on
every task of the group before), then the artifact stage's ``artifact`` dispatches, then — when
the commit releases — a ``release`` task per releasing project and one ``deploy`` task (the
auto-deployment of the new releases to the first environment, :mod:`.stages`), then a task that
closes the run through the API. Every task references the chart's WorkflowTemplate
(``<release>-catalyst-forge-dispatch``: template ``dispatch-<type>`` with parameter ``job``, and
``close-run`` with ``run-id``, ``status`` and ``grace``), which owns the pod: image, environment,
the close-run token, resources, the retry of a lost bus (exit 7) and pod security.

A failing task of a required phase stops the run: later tasks depend on ``Succeeded`` and the DAG
fails fast. A phase that is not required has ``continueOn.failed`` and its dependants accept
``Failed`` too. The exit handler closes the run with the Workflow's status when the final task
never ran (the run failed, was stopped, or the final task itself was lost); exit handlers are not
re-run when a Workflow is retried, so the final task, not the handler, is the normal path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hera.workflows import DAG, Step, Steps, Task, Workflow
from hera.workflows import models as m

from forge_core.adapters.argo.stages import DeployStageRequest, ReleaseStageRequest, releasing_projects
from forge_core.domain.jobs import ArtifactJobPayload, CiJobPayload, SourceRef
from forge_core.domain.models import Job
from forge_core.domain.run_plan import ArtifactPlan, RunPlan, TaskPlan, id_of
from forge_core.ports.orchestrator import ArtifactStage
from forge_core.settings.orchestrator import ArgoSettings

RUN_LABEL = "forge.projectcatalyst.io/run-id"
ENTRYPOINT, CLOSE, EXIT = "run", "close-run", "exit-handler"
DISCOVERY, DEPLOY = "discovery", "deploy"


def workflow_name(run_id: str, attempt: int = 1) -> str:
    """The Workflow's fixed name per attempt of the run: submitting one twice is a conflict, not a
    second Workflow; a re-run (attempt 2 on) gets a Workflow of its own."""
    name = "forge-run-" + _dns(run_id)[:52]
    return name if attempt == 1 else f"{name}-a{attempt}"


def _dns(value: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", value.lower())).strip("-") or "x"


@dataclass(frozen=True)
class _Node:
    name: str
    tolerated: bool  # a failure of this task does not stop the run

    def ok(self) -> str:
        return f"({self.name}.Succeeded || {self.name}.Failed)" if self.tolerated else f"{self.name}.Succeeded"


def _depends(previous: list[_Node]) -> str | None:
    return " && ".join(node.ok() for node in previous) or None


def render_workflow(
    run_id: str,
    plan: RunPlan,
    source: SourceRef,
    settings: ArgoSettings,
    *,
    artifacts: ArtifactStage | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The Workflow (a Kubernetes object as a dict) that executes ``plan`` for ``source``."""
    with Workflow(
        name=workflow_name(run_id, artifacts.attempt if artifacts is not None else 1),
        namespace=settings.namespace,
        labels={RUN_LABEL: _dns(run_id)[:63], "app.kubernetes.io/managed-by": "catalyst-forge"},
        entrypoint=ENTRYPOINT,
        on_exit=EXIT,
        service_account_name=settings.service_account,
        active_deadline_seconds=settings.active_deadline_seconds,
        ttl_strategy=m.TTLStrategy(seconds_after_completion=settings.ttl_seconds),
        pod_gc=m.PodGC(strategy="OnPodSuccess"),
    ) as workflow:
        with Steps(name=EXIT):  # the backstop: closes the run when the close-run task never did
            Step(name=CLOSE, template_ref=_close_template(settings),
                 arguments=_close_arguments(run_id, "{{workflow.status}}", settings.exit_grace_seconds))
        with DAG(name=ENTRYPOINT, fail_fast=True):
            discovery = {"repository": source.repository, "commit": source.commit}
            _dispatch(DISCOVERY, "discovery", Job(id=f"discovery-{run_id}", type="discovery", run_id=run_id,
                                                   payload=discovery), None, settings)
            previous = [_Node(DISCOVERY, tolerated=False)]
            for group in plan.groups():
                nodes: list[_Node] = []
                for phase in group:
                    for task in phase.tasks:
                        node = _Node(_task_name(task), tolerated=not phase.required)
                        payload = CiJobPayload(task=task, source=source, env=dict(env or {}))
                        job = Job(id=f"ci-{id_of(task)}", type="ci", run_id=run_id,
                                  payload=payload.model_dump(mode="json"))
                        _dispatch(node.name, "ci", job, _depends(previous), settings, tolerated=node.tolerated)
                        nodes.append(node)
                previous = nodes or previous
            if artifacts is not None and artifacts.artifacts:
                nodes = []
                for artifact in artifacts.artifacts:
                    payload_a = ArtifactJobPayload(
                        artifact=artifact, source=artifacts.source, publish=artifacts.publish, env=dict(env or {}),
                        version=artifacts.versions.get(artifact.project.name),
                    )
                    name = artifact_task_name(artifact)
                    job = Job(id=f"artifact-{run_id}-{payload_a.artifact_id}", type="artifact", run_id=run_id,
                              payload=payload_a.model_dump(mode="json"))
                    # Every artifact runs (like the embedded stage); a failed one still fails the run.
                    _dispatch(name, "artifact", job, _depends(previous), settings)
                    nodes.append(_Node(name, tolerated=False))
                previous = nodes
                previous = _release_and_deploy(run_id, artifacts, previous, settings)
            Task(name=CLOSE, template_ref=_close_template(settings), arguments=_close_arguments(run_id, "Succeeded"),
                 depends=_depends(previous))
    manifest: dict[str, Any] = workflow.to_dict()
    return manifest


def _release_and_deploy(
    run_id: str, stage: ArtifactStage, previous: list[_Node], settings: ArgoSettings,
) -> list[_Node]:
    """After the artifacts: a release task per releasing project (in parallel), then one deploy
    task auto-deploying the new releases to the first environment; the nodes the close waits for."""
    document = stage.document
    if document is None:
        return previous
    projects = releasing_projects(document)
    if not projects:
        return previous
    common = {"run_id": run_id, "repository": stage.source.identity or stage.source.repository,
              "clone_url": stage.source.repository, "event": document.event, "publish": stage.publish}
    releases = []
    for project in projects:
        name = release_task_name(project.project.name)
        request = ReleaseStageRequest(project=project, **common)
        _stage(name, "release", request.model_dump_json(), _depends(previous), settings)
        releases.append(_Node(name, tolerated=False))
    deploy = DeployStageRequest(projects=tuple(p.project.name for p in projects), environments=document.environments,
                                author=stage.author or "forge", **common)
    _stage(DEPLOY, "deploy", deploy.model_dump_json(), _depends(releases), settings)
    return [_Node(DEPLOY, tolerated=False)]


def release_task_name(project: str) -> str:
    return "release-" + _dns(project)[:54].strip("-")


def _stage(name: str, stage: str, request: str, depends: str | None, settings: ArgoSettings) -> Task:
    return Task(name=name, template_ref=m.TemplateRef(name=settings.dispatch_template, template=f"stage-{stage}"),
                arguments={"request": request}, depends=depends)


def task_names(plan: RunPlan) -> dict[str, str]:
    """Plan task id → the name of its DAG task (the node's display name)."""
    return {id_of(task): _task_name(task) for phase in plan.phases for task in phase.tasks}


def artifact_task_name(artifact: ArtifactPlan) -> str:
    return "artifact-" + _dns(f"{artifact.project.name}-{artifact.spec.name}")[:54].strip("-")


def _task_name(task: TaskPlan) -> str:
    # The task id keeps names unique; the key keeps them readable in the Argo UI.
    return _dns(f"{task.key}-{id_of(task)}")[:63].strip("-")


def _dispatch(
    name: str, job_type: str, job: Job, depends: str | None, settings: ArgoSettings, *, tolerated: bool = False
) -> Task:
    return Task(
        name=name,
        template_ref=m.TemplateRef(name=settings.dispatch_template, template=f"dispatch-{job_type}"),
        arguments={"job": job.model_dump_json()},
        depends=depends,
        continue_on=m.ContinueOn(failed=True) if tolerated else None,
    )


def _close_template(settings: ArgoSettings) -> m.TemplateRef:
    return m.TemplateRef(name=settings.dispatch_template, template=CLOSE)


def _close_arguments(run_id: str, status: str, grace: int = 0) -> dict[str, str]:
    return {"run-id": run_id, "status": status, "grace": str(grace)}
