"""The Workflow a run gets: Argo's JSON Schema accepts it, and its DAG encodes the run's order."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "chart"))

import chart_support

from forge_core.adapters.argo.stages import DeployStageRequest, ReleaseStageRequest
from forge_core.adapters.argo.workflow import CLOSE, DISCOVERY, EXIT, render_workflow, task_names, workflow_name
from forge_core.domain.jobs import ArtifactSource, CiJobPayload, SourceRef
from forge_core.domain.models import Job, ProjectRef, SourceEvent
from forge_core.domain.plan import DiscoveryDocument, ProjectPlan, ReleaseDecision
from forge_core.domain.run_plan import ArtifactPlan
from forge_core.ports.orchestrator import ArtifactStage
from forge_core.services.orchestrator import parse_plan
from forge_core.settings.orchestrator import ArgoSettings
from forge_core.testing.argo import Validate

SOURCE = SourceRef(repository="https://git.example/acme/monorepo.git", commit="a" * 40)


def dag_tasks(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (run,) = [t for t in workflow["spec"]["templates"] if t["name"] == workflow["spec"]["entrypoint"]]
    return {t["name"]: t for t in run["dag"]["tasks"]}


def releasing(*names: str, library: str | None = None) -> DiscoveryDocument:
    """A discovery document where ``names`` release with deploy resources (and ``library``
    releases without any)."""
    def project(name: str, resources: bool) -> ProjectPlan:
        return ProjectPlan(project=ProjectRef(name=name, path=name), config_file=f"{name}/project.cue",
                           release=ReleaseDecision(release=True, reason="tag", version="1.2.0"),
                           resources=({"apiVersion": "v1", "kind": "ConfigMap"},) if resources else ())
    event = SourceEvent(repository="acme/monorepo", commit=SOURCE.commit, branch="main", tag="api/v1.2.0")
    projects = [project(n, True) for n in names] + ([project(library, False)] if library else [])
    return DiscoveryDocument(event=event, projects=tuple(projects))


def stage() -> ArtifactStage:
    artifact = ArtifactPlan.model_validate({
        "project": {"name": "api", "path": "api"},
        "spec": {"name": "image", "type": "archive", "producer": "exec"},
    }, extra="ignore")
    source = ArtifactSource(repository=SOURCE.repository, commit=SOURCE.commit, branch="main")
    return ArtifactStage(artifacts=(artifact,), source=source, versions={"api": "1.2.0"})


def test_the_workflow_validates_and_orders_groups_with_the_first_failure_stopping_the_run(
    plan: dict[str, Any], validate: Validate,
) -> None:
    settings = ArgoSettings(namespace="ci", service_account="dispatcher", ttl_seconds=600,
                            dispatch_template="rel-catalyst-forge-dispatch")
    parsed = parse_plan(plan)
    workflow = render_workflow("Run_42", parsed, SOURCE, settings, env={"FOO": "1"})

    assert validate(workflow) == []
    assert workflow["metadata"]["name"] == workflow_name("Run_42") == "forge-run-run-42"
    assert workflow["metadata"]["namespace"] == "ci"
    spec = workflow["spec"]
    assert spec["serviceAccountName"] == "dispatcher"
    assert spec["ttlStrategy"] == {"secondsAfterCompletion": 600}
    assert spec["podGC"] == {"strategy": "OnPodSuccess"}
    assert spec["onExit"] == EXIT
    tasks = dag_tasks(workflow)
    names = task_names(parsed)
    a, b, lint, c = (names[i] for i in ("a", "b", "l", "c"))
    assert list(tasks) == [DISCOVERY, a, b, lint, c, CLOSE]
    assert "depends" not in tasks[DISCOVERY]
    for name in (a, b, lint):  # group 1 runs in parallel after discovery
        assert tasks[name]["depends"] == f"{DISCOVERY}.Succeeded"
        assert tasks[name]["templateRef"] == {"name": "rel-catalyst-forge-dispatch", "template": "dispatch-ci"}
    # lint is not required: its failure does not stop the run, build still waits for it
    assert tasks[lint]["continueOn"] == {"failed": True}
    assert "continueOn" not in tasks[a]
    assert tasks[c]["depends"] == f"{a}.Succeeded && {b}.Succeeded && ({lint}.Succeeded || {lint}.Failed)"
    assert tasks[CLOSE]["depends"] == f"{c}.Succeeded"
    (run_template,) = [t for t in spec["templates"] if t["name"] == "run"]
    assert run_template["dag"]["failFast"] is True
    # the job parameter is the ci job the embedded orchestrator would have dispatched
    (param,) = tasks[a]["arguments"]["parameters"]
    job = Job.model_validate_json(param["value"])
    assert (job.id, job.type, job.run_id) == ("ci-a", "ci", "Run_42")
    payload = CiJobPayload.model_validate(job.payload)
    assert (payload.task.key, payload.source, payload.env) == ("api:a", SOURCE, {"FOO": "1"})
    discovery = Job.model_validate_json(tasks[DISCOVERY]["arguments"]["parameters"][0]["value"])
    assert discovery.payload == {"repository": SOURCE.repository, "commit": SOURCE.commit}
    # the run is closed by the chart's close-run template: by the last task, else the exit handler
    close_ref = {"name": "rel-catalyst-forge-dispatch", "template": "close-run"}
    assert tasks[CLOSE]["templateRef"] == close_ref
    assert parameters(tasks[CLOSE]) == {"run-id": "Run_42", "status": "Succeeded", "grace": "0"}
    (exit_handler,) = [t for t in spec["templates"] if t["name"] == EXIT]
    ((step,),) = exit_handler["steps"]
    assert step["templateRef"] == close_ref
    assert parameters(step) == {"run-id": "Run_42", "status": "{{workflow.status}}", "grace": "60"}
    assert not [t for t in spec["templates"] if "container" in t]  # every pod is the chart's


def parameters(task: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in task["arguments"]["parameters"]}


def test_every_template_a_workflow_references_is_in_the_charts_workflow_template_with_its_parameters(
    plan: dict[str, Any],
) -> None:
    (library,) = [m for m in chart_support.manifests() if m["kind"] == "WorkflowTemplate"]
    settings = ArgoSettings(dispatch_template=library["metadata"]["name"])
    with_stages = replace(stage(), document=releasing("api"), author="octocat")
    workflow = render_workflow("r1", parse_plan(plan), SOURCE, settings, artifacts=with_stages)
    offered = {t["name"]: {p["name"] for p in t["inputs"]["parameters"]} for t in library["spec"]["templates"]}
    referencing = [*dag_tasks(workflow).values(),
                   *(s for t in workflow["spec"]["templates"] for group in t.get("steps", []) for s in group)]
    used = set()
    for task in referencing:
        ref = task["templateRef"]
        assert ref["name"] == library["metadata"]["name"]
        assert ref["template"] in offered, ref
        assert set(parameters(task)) <= offered[ref["template"]], task["name"]
        used.add(ref["template"])
    assert {"dispatch-discovery", "dispatch-ci", "dispatch-artifact", "stage-release", "stage-deploy",
            "close-run"} <= used


def test_a_releasing_commit_gets_release_tasks_then_one_deploy_task_before_the_close(
    plan: dict[str, Any], validate: Validate,
) -> None:
    document = releasing("api", "web", library="lib")
    with_stages = replace(stage(), document=document, author="octocat", publish=True)
    workflow = render_workflow("r1", parse_plan(plan), SOURCE, ArgoSettings(), artifacts=with_stages)
    assert validate(workflow) == []
    tasks = dag_tasks(workflow)
    assert [n for n in tasks if n.startswith(("release-", "deploy"))] == ["release-api", "release-web", "deploy"]
    for name in ("release-api", "release-web"):  # in parallel, after every artifact
        assert tasks[name]["depends"] == "artifact-api-image.Succeeded"
        assert tasks[name]["templateRef"]["template"] == "stage-release"
    assert tasks["deploy"]["depends"] == "release-api.Succeeded && release-web.Succeeded"
    assert tasks[CLOSE]["depends"] == "deploy.Succeeded"
    release = ReleaseStageRequest.model_validate_json(parameters(tasks["release-api"])["request"])
    assert (release.run_id, release.project.project.name, release.publish) == ("r1", "api", True)
    assert release.clone_url == SOURCE.repository and release.event == document.event
    deploy = DeployStageRequest.model_validate_json(parameters(tasks["deploy"])["request"])
    assert (deploy.projects, deploy.author) == (("api", "web"), "octocat")  # the library releases nothing


def test_a_commit_that_releases_nothing_gets_no_release_or_deploy_task(plan: dict[str, Any]) -> None:
    quiet = replace(stage(), document=releasing(library="lib"))
    tasks = dag_tasks(render_workflow("r1", parse_plan(plan), SOURCE, ArgoSettings(), artifacts=quiet))
    assert not [n for n in tasks if n.startswith(("release-", "deploy"))]
    assert tasks[CLOSE]["depends"] == "artifact-api-image.Succeeded"


def test_the_artifact_stage_runs_after_the_groups_and_before_the_close(
    plan: dict[str, Any], validate: Validate,
) -> None:
    parsed = parse_plan(plan)
    workflow = render_workflow("r1", parsed, SOURCE, ArgoSettings(), artifacts=stage())
    assert validate(workflow) == []
    tasks = dag_tasks(workflow)
    c = task_names(parsed)["c"]
    assert tasks["artifact-api-image"]["depends"] == f"{c}.Succeeded"
    assert tasks["artifact-api-image"]["templateRef"]["template"] == "dispatch-artifact"
    assert tasks[CLOSE]["depends"] == "artifact-api-image.Succeeded"
    job = json.loads(tasks["artifact-api-image"]["arguments"]["parameters"][0]["value"])
    assert job["type"] == "artifact" and job["payload"]["version"] == "1.2.0"


def test_the_schema_check_can_fail(plan: dict[str, Any], validate: Validate) -> None:
    workflow = render_workflow("r1", parse_plan(plan), SOURCE, ArgoSettings())
    workflow["spec"]["ttlStrategy"]["secondsAfterCompletions"] = 1  # misspelt
    workflow["spec"]["templates"][0]["steps"] = "close-run"  # not a list of step groups
    errors = validate(workflow)
    assert any("secondsAfterCompletions" in e for e in errors)
    assert any("spec.templates.0.steps" in e for e in errors)


def test_a_re_run_gets_a_workflow_of_its_own_named_by_its_attempt(plan: dict[str, Any], validate: Validate) -> None:
    """A Workflow's name is fixed per attempt: a re-run's submission is not a conflict with the
    finished Workflow of the attempt before (which it would otherwise follow)."""
    first = render_workflow("r1", parse_plan(plan), SOURCE, ArgoSettings(), artifacts=stage())
    second = render_workflow("r1", parse_plan(plan), SOURCE, ArgoSettings(),
                             artifacts=replace(stage(), attempt=2))
    assert first["metadata"]["name"] == workflow_name("r1") == "forge-run-r1"
    assert second["metadata"]["name"] == workflow_name("r1", 2) == "forge-run-r1-a2"
    validate(second)
