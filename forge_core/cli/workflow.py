"""``forge workflow render``, ``release``, ``deploy`` and ``close``: the Argo Workflow a commit
would get, the Workflow's release and deploy tasks (:mod:`forge_core.cli.workflow_stages`), and
its own last step, closing its run through the Platform API."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from forge_core.cli.common import fail

if TYPE_CHECKING:
    from forge_core.domain.run_plan import RunPlan

workflow_app = typer.Typer(help="Argo Workflows: the Workflow of a run.", no_args_is_help=True)

ARGO_STATUSES = {"Succeeded": "success", "Failed": "failed", "Error": "failed"}


def register(app: typer.Typer) -> None:
    app.add_typer(workflow_app, name="workflow")


def _numbered(plan: RunPlan) -> RunPlan:
    """The plan with the ids the API would assign replaced by positions (p1, p1-t0, p1-t0-s2)."""
    phases = []
    for i, phase in enumerate(plan.phases):
        tasks = []
        for j, task in enumerate(phase.tasks):
            steps = tuple(step.model_copy(update={"id": f"p{i}-t{j}-s{k}"}) for k, step in enumerate(task.steps))
            tasks.append(task.model_copy(update={"id": f"p{i}-t{j}", "steps": steps}))
        phases.append(phase.model_copy(update={"id": f"p{i}", "tasks": tuple(tasks)}))
    return plan.model_copy(update={"phases": tuple(phases)})


@workflow_app.command("render")
def render(
    path: Annotated[Path, typer.Argument(help="The repository (a git working copy or bare repository).")] = Path("."),
    commit: Annotated[str | None, typer.Option(help="Revision (default: the tag's commit, or HEAD).")] = None,
    run_id: Annotated[str, typer.Option(help="The run id the Workflow is named after.")] = "render",
    publish: Annotated[bool, typer.Option(help="Artifacts publish (else every publisher only plans).")] = False,
) -> None:
    """Print the Argo Workflow (YAML) the commit's run would be submitted as, with FORGE_ORCHESTRATOR__ARGO__*
    settings; ids the API assigns are replaced by positions."""
    import yaml

    from forge_core.adapters.argo.workflow import render_workflow
    from forge_core.cli.pipeline import artifact_stage, locate
    from forge_core.cli.project import _discover
    from forge_core.domain.errors import ForgeError
    from forge_core.domain.jobs import SourceRef
    from forge_core.settings import load_settings

    try:
        settings = load_settings()
        source = locate(path, commit=commit, branch=None, tag=None)
    except ForgeError as error:
        fail(error)
    document = _discover(path, source.event.commit, source.event.branch, source.event.tag)
    if document.diagnostics:
        for diagnostic in document.diagnostics:
            typer.echo(f"error: {diagnostic}", err=True)
        raise typer.Exit(2)
    # The pods clone the repository: its origin remote, else (a local repository) its path.
    url = _origin(source.path) or str(source.path)
    stage = artifact_stage(document, source, publish)
    stage = replace(stage, source=stage.source.model_copy(update={"repository": url}))
    manifest = render_workflow(
        run_id, _numbered(document.run_plan()), SourceRef(repository=url, commit=source.event.commit),
        settings.orchestrator.argo, artifacts=stage,
    )
    typer.echo(yaml.safe_dump(manifest, sort_keys=False), nl=False)


def _origin(path: Path) -> str | None:
    import subprocess

    found = subprocess.run(["git", "-C", str(path), "remote", "get-url", "origin"], capture_output=True, text=True)
    return found.stdout.strip() or None


@workflow_app.command("close")
def close(
    run_id: Annotated[str, typer.Option(help="The run to close.")],
    status: Annotated[str, typer.Option(help="The Workflow's status: Succeeded, Failed or Error.")],
    grace: Annotated[float, typer.Option(min=0, help="Unless Succeeded, wait this long first (seconds): the "
                                         "platform closes the run with the precise reason meanwhile.")] = 0,
) -> None:
    """Record the run's end through the Platform API (FORGE_API__URL, FORGE_API__TOKEN); a run
    already closed (by the platform, or an earlier attempt) is left as it is."""
    import asyncio

    from forge_core.cli.jobs import make_recorder
    from forge_core.domain.errors import ConfigurationError, ForgeError
    from forge_core.ports.platform import CONFLICT
    from forge_core.settings import load_settings

    try:
        if status not in ARGO_STATUSES:
            raise ConfigurationError(f"unknown Workflow status {status!r} (Succeeded, Failed, Error)", where="--status")
        recorder = make_recorder(load_settings())
        if status != "Succeeded" and grace:
            import time

            time.sleep(grace)
        error = None if status == "Succeeded" else f"the Workflow ended {status}"
        try:
            asyncio.run(recorder.set_run_status(run_id, ARGO_STATUSES[status], error=error))
        except ForgeError as refused:
            if refused.code != CONFLICT:
                raise
            typer.echo(f"run {run_id} was already closed: {refused}", err=True)
    except ForgeError as error_:
        fail(error_)


RequestFile = Annotated[Path, typer.Option(help="The stage's request (JSON), as the Workflow gives it.")]
ResultFile = Annotated[Path | None, typer.Option(help="Write what the stage did (JSON) here.")]


@workflow_app.command("release")
def release(request_file: RequestFile, result_file: ResultFile = None) -> None:
    """A Workflow's release task: the project's ``release`` job from the run's artifact records
    (FORGE_API__*, FORGE_NATS__*); exit 5 when the release failed."""
    from forge_core.adapters.argo.stages import ReleaseStageRequest

    _stage(ReleaseStageRequest, request_file, result_file, "release")


@workflow_app.command("deploy")
def deploy(request_file: RequestFile, result_file: ResultFile = None) -> None:
    """A Workflow's deploy task: the run's new releases auto-deployed to the first environment, as
    its rules allow (one GitOps commit per environment); exit 5 when the deployment failed."""
    from forge_core.adapters.argo.stages import DeployStageRequest

    _stage(DeployStageRequest, request_file, result_file, "deploy")


def _stage(model: Any, request_file: Path, result_file: Path | None, name: str) -> None:
    import asyncio
    import json

    from pydantic import ValidationError

    from forge_core.cli import workflow_stages
    from forge_core.domain.errors import ConfigurationError, ForgeError, JobFailedError, MessagingError
    from forge_core.settings import load_settings

    try:
        settings = load_settings()
        try:
            request = model.model_validate_json(request_file.read_text())
        except OSError as exc:
            raise ConfigurationError(f"cannot read the request: {exc.strerror}", where=str(request_file)) from None
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ConfigurationError(f"not a {name} request: {'.'.join(map(str, first['loc']))}: {first['msg']}",
                                     where=str(request_file)) from None
        run = workflow_stages.release_stage if name == "release" else workflow_stages.deploy_stage
        try:
            outcome = asyncio.run(run(settings, request))
        except (ConfigurationError, MessagingError):  # bad settings (2); the bus failed (7: retried)
            raise
        except ForgeError as error:
            outcome = workflow_stages.StageOutcome(error=f"{name}: {error}")
    except ForgeError as error:
        fail(error)
    result = outcome.as_result(f"{name}-{request.run_id}")
    if result_file is not None:
        result_file.parent.mkdir(parents=True, exist_ok=True)
        result_file.write_text(json.dumps(result, indent=2) + "\n")
    typer.echo(json.dumps(result))
    if outcome.error:
        fail(JobFailedError(outcome.error, where=name))
