"""``forge releases``, ``release show``, ``deploy``, ``promote``, ``approve``, ``revoke``,
``rollback`` and ``status``: releases and where they run, all through the Platform API.

The API is the configured one (``FORGE_API__URL``/``FORGE_API__TOKEN``: the token says who you
are), else the embedded one on the state directory, where you act as your login name with the
read, deploy and approve permissions. The repository is ``--repo``, else the one of the current
folder (its ``origin`` remote, as ``forge run`` names it). Each command takes ``--json``.
A refused promotion or rollback prints every rule of every project and exits 1.

On the embedded API (no ``FORGE_API__URL``) an accepted deploy, promotion or rollback lands here:
in-process ``deployment`` workers commit the ReleasePointers (several projects: one commit) and
the command prints the GitOps commit. With a configured API the deployments stay pending for the
fleet's dispatcher, and the command says so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from forge_core.cli.common import fail, settings_and_plugins

if TYPE_CHECKING:
    from forge_core.adapters.platform_client import PlatformClient
    from forge_core.domain.promotion import GroupDecision
    from forge_core.plugin.host import PluginHost
    from forge_core.services import schemas as s
    from forge_core.settings import Settings

T = TypeVar("T")

EXIT_REFUSED = 1
"""A promotion or rollback the rules refuse (a dry run included)."""
EMBEDDED_PERMISSIONS = ("read", "deploy", "approve", "status")
"""``status``: the in-process deployment worker reports the deployments it lands."""

release_app = typer.Typer(help="One release.", no_args_is_help=True)

Repo = Annotated[
    str | None, typer.Option("--repo", help="The repository, owner/name (default: the current folder's).")
]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Only decide and explain; change nothing.")]


def register(app: typer.Typer) -> None:
    app.command("releases")(releases)
    app.add_typer(release_app, name="release")
    app.command("deploy")(deploy)
    app.command("promote")(promote)
    app.command("approve")(approve)
    app.command("revoke")(revoke)
    app.command("rollback")(rollback)
    app.command("status")(status)


# --- commands -----------------------------------------------------------------------------------


def releases(
    project: Annotated[str | None, typer.Argument(help="Only this project.")] = None,
    repo: Repo = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    as_json: Json = False,
) -> None:
    """List releases, newest first (of every project without PROJECT)."""
    repository = _repository(repo)
    listing = _call(lambda client: client.list_releases(repository, project, limit=limit))
    if as_json:
        typer.echo(listing.model_dump_json(indent=2))
        return
    rows = [(r.project, str(r.release_number), r.commit_sha[:12], _when(r.created_at)) for r in listing.releases]
    _table(f"releases of {repository}", ("project", "release", "commit", "created"), rows)


@release_app.command("show")
def show(
    project: Annotated[str, typer.Argument(help="The project.")],
    ref: Annotated[str, typer.Argument(metavar="REF", help="Release number, commit SHA (or prefix) or alias.")],
    repo: Repo = None,
    as_json: Json = False,
) -> None:
    """Show one release: number, commit, trigger, aliases (the custom ones apart), artifacts and image."""
    repository = _repository(repo)
    found = _call(lambda client: client.show_release(repository, project, ref))
    if as_json:
        typer.echo(found.model_dump_json(indent=2))
        return
    trigger = found.trigger
    lines = [
        f"{found.repository} {found.project} release {found.release_number}",
        f"  commit     {found.commit_sha}",
        f"  created    {_when(found.created_at)} by {found.created_by}",
        f"  trigger    {_trigger(trigger)}",
        f"  aliases    {', '.join(a.alias for a in found.aliases if a.alias_type != 'custom') or '-'}",
        f"  custom     {', '.join(a.alias for a in found.aliases if a.alias_type == 'custom') or '-'}",
        f"  image      {found.oci_uri or '-'}" + (f"@{found.oci_digest}" if found.oci_digest else ""),
    ]
    lines += [f"  artifact   {a.name} ({a.type}): {a.primary_published_uri}" for a in found.artifacts]
    typer.echo("\n".join(lines))


def deploy(
    project: Annotated[str, typer.Argument(help="The project.")],
    ref: Annotated[str, typer.Argument(metavar="REF", help="Release number, commit SHA (or prefix) or alias.")],
    env: Annotated[str, typer.Option("--env", help="The environment.")],
    repo: Repo = None,
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Deploy one release of a project to an environment (the environment's rules apply)."""
    _promote(env, _repository(repo), [(project, ref)], dry_run=dry_run, as_json=as_json, action="deploy")


def promote(
    projects: Annotated[
        list[str], typer.Argument(metavar="PROJECT…", help="Projects, each PROJECT or PROJECT@REF.")
    ],
    to: Annotated[str, typer.Option("--to", help="The environment to promote to.")],
    repo: Repo = None,
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Promote projects together (all or none): each its REF, else the release that runs in the
    environment TO is promoted from. Prints every rule: allowed or blocked, and why."""
    wanted = [(name, ref or None) for name, _, ref in (p.partition("@") for p in projects)]
    _promote(to, _repository(repo), wanted, dry_run=dry_run, as_json=as_json, action="promote")


def approve(
    project: Annotated[str, typer.Argument(help="The project.")],
    ref: Annotated[str, typer.Argument(metavar="REF", help="Release number, commit SHA (or prefix) or alias.")],
    env: Annotated[str, typer.Option("--env", help="The environment the approval is for.")],
    justification: Annotated[str, typer.Option(help="Why (a ticket, a change record).")],
    expires_in: Annotated[str | None, typer.Option(help="Good for this long, e.g. 72h.")] = None,
    repo: Repo = None,
    as_json: Json = False,
) -> None:
    """Approve a release of a project for an environment."""
    from datetime import UTC, datetime

    from forge_core.domain.durations import parse_duration
    from forge_core.domain.errors import ConfigurationError
    from forge_core.services import schemas as s

    repository = _repository(repo)
    try:
        expires = datetime.now(UTC) + parse_duration(expires_in) if expires_in else None
    except ValueError as error:
        fail(ConfigurationError(str(error), where="--expires-in"))

    async def go(client: PlatformClient) -> s.Approval:
        found = await client.show_release(repository, project, ref)
        return await client.approve(s.ApprovalCreate(
            release_id=found.id, environment=env, justification=justification, expires_at=expires))

    approval = _call(go)
    if as_json:
        typer.echo(approval.model_dump_json(indent=2))
        return
    until = f", until {_when(approval.expires_at)}" if approval.expires_at else ""
    typer.echo(f"approval {approval.id}: {project} release {ref} for {env} by {approval.approver}{until}")


def revoke(
    approval_id: Annotated[str, typer.Argument(metavar="ID", help="The approval's id.")],
    as_json: Json = False,
) -> None:
    """Revoke an approval: promotions no longer count it."""
    approval = _call(lambda client: client.revoke_approval(approval_id))
    if as_json:
        typer.echo(approval.model_dump_json(indent=2))
        return
    typer.echo(f"approval {approval.id} revoked")


def rollback(
    project: Annotated[str, typer.Argument(help="The project.")],
    env: Annotated[str, typer.Option("--env", help="The environment.")],
    to: Annotated[str | None, typer.Option("--to", help="The release (default: the one before the active one).")]
    = None,
    repo: Repo = None,
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Deploy an older release that ran in the environment before (the previous one by default)."""
    from forge_core.services import schemas as s

    body = s.RollbackCreate(environment=env, repository=_repository(repo), project=project, release=to,
                            dry_run=dry_run)
    _decided(lambda client: client.roll_back(body), as_json=as_json, action="rollback")


def status(
    project: Annotated[str | None, typer.Argument(help="Only this project.")] = None,
    repo: Repo = None,
    history: Annotated[bool, typer.Option("--history", help="Every deployment, newest first.")] = False,
    as_json: Json = False,
) -> None:
    """Projects by environments (the repository's, in promotion order): which release runs where,
    since when and by whom."""
    repository = _repository(repo)
    live = ("active", "pending")

    async def read(client: PlatformClient) -> tuple[s.DeploymentList, s.RepositoryEnvironments]:
        listed = await client.list_deployments(repository, project=project, statuses=() if history else live)
        return listed, await client.repository_environments(repository)

    listing, declared = _call(read)
    deployments = listing.deployments
    matrix = _matrix([d for d in deployments if d.status.value in live])
    environments = _environment_order(declared.names, deployments)
    if as_json:
        import json

        document: dict[str, Any] = {
            "repository": repository,
            "environments": environments,
            "environments_source": declared.source,
            "matrix": {p: {e: d.model_dump(mode="json") for e, d in envs.items()} for p, envs in matrix.items()},
        }
        if history:
            document["history"] = [d.model_dump(mode="json") for d in deployments]
        typer.echo(json.dumps(document, indent=2))
        return
    if not deployments:
        typer.echo(f"nothing of {repository}{' ' + project if project else ''} is deployed")
        return
    rows = [(p, *(_cell(envs.get(e)) for e in environments)) for p, envs in sorted(matrix.items())]
    _table(f"deployments of {repository}", ("project", *environments), rows)
    if history:
        rows = [(d.environment, d.project, str(d.release_number), d.status.value, _when(d.deployed_at),
                 d.deployed_by, (d.gitops_commit_sha or "-")[:12]) for d in deployments]
        _table("history", ("environment", "project", "release", "status", "at", "by", "gitops commit"), rows)


# --- shared -------------------------------------------------------------------------------------


def _promote(
    environment: str, repository: str, wanted: list[tuple[str, str | None]], *, dry_run: bool, as_json: bool,
    action: str,
) -> None:
    from forge_core.services import schemas as s

    body = s.PromotionCreate(
        environment=environment,
        releases=[s.PromotedRelease(repository=repository, project=p, release=ref) for p, ref in wanted],
        dry_run=dry_run,
    )
    _decided(lambda client: client.promote(body), as_json=as_json, action=action)


def _decided(call: Callable[[PlatformClient], Awaitable[s.Promotion]], *, as_json: bool, action: str) -> None:
    """Carry out a promotion or rollback and print its decision; a refusal exits 1, naming the
    rules. On the embedded API the pending deployments land before it returns."""
    from forge_core.cli.stages import land_here
    from forge_core.domain.promotion import GroupDecision
    from forge_core.services.errors import AuthorizationFailed

    async def carried(client: PlatformClient, settings: Settings, host: PluginHost) -> s.Promotion:
        result = await call(client)
        if settings.api.url is None and result.allowed and not result.dry_run and result.deployments:
            await land_here(settings, host, client, result.deployments, actor=result.deployments[0].deployed_by,
                            action=action)
            ids = [str(d.id) for d in result.deployments]
            landed = await client.list_deployments(result.deployments[0].repository, statuses=())
            by_id = {str(d.id): d for d in landed.deployments}
            result = result.model_copy(update={"deployments": [by_id.get(i, d) for i, d in zip(
                ids, result.deployments, strict=True)]})
        return result

    try:
        result = _call_with(carried, reraise=(AuthorizationFailed,))
    except AuthorizationFailed as error:
        recorded = error.details.get("decision")
        if not isinstance(recorded, dict):  # a missing permission, not the rules
            fail(error)
        decision = GroupDecision.model_validate(recorded)
        if as_json:
            import json

            typer.echo(json.dumps({"allowed": False, "dry_run": False, "explanation": error.message,
                                   "decision": decision.model_dump(mode="json"), "deployments": []}, indent=2))
        else:
            _print_decision(decision)
            typer.echo(error.message, err=True)
        raise typer.Exit(EXIT_REFUSED) from None
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        _print_decision(result.decision)
        for d in result.deployments:
            if d.status.value == "pending":
                typer.echo(f"deployment {d.id}: {d.project} release {d.release_number} to {d.environment} "
                           f"is pending (the fleet's deployment job commits it)")
            else:
                typer.echo(f"deployment {d.id}: {d.project} release {d.release_number} to {d.environment} "
                           f"is {d.status.value}" + (f": GitOps commit {d.gitops_commit_sha}"
                                                      if d.gitops_commit_sha else f" ({d.reason})"))
        if result.dry_run:
            typer.echo(f"dry run: {'allowed' if result.allowed else 'refused'}; nothing changed")
    if not result.allowed:
        raise typer.Exit(EXIT_REFUSED)


def _print_decision(decision: GroupDecision) -> None:
    for each in decision.decisions:
        verdict = "allowed" if each.allowed else "blocked"
        typer.echo(f"{each.kind} of {each.project} release {each.number} to {each.environment}: {verdict}")
        for rule in each.rules:
            mark = "allowed" if rule.passed else "BLOCKED"
            typer.echo(f"  {mark:7}  {rule.name}: {rule.reason}")


def _matrix(deployments: list[s.Deployment]) -> dict[str, dict[str, s.Deployment]]:
    """Per project and environment, the newest live deployment (a pending one shows what is coming)."""
    matrix: dict[str, dict[str, s.Deployment]] = {}
    for d in deployments:  # newest first
        matrix.setdefault(d.project, {}).setdefault(d.environment, d)
    return matrix


def _environment_order(declared: list[str], deployments: list[s.Deployment]) -> list[str]:
    """The repository's environments in promotion order (repo.cue's, else the defaults), then any
    other one something was deployed to (an environment since removed from repo.cue)."""
    seen = {d.environment for d in deployments}
    return declared + sorted(seen - set(declared))


def _cell(deployment: s.Deployment | None) -> str:
    if deployment is None:
        return "-"
    pending = " (pending)" if deployment.status.value == "pending" else ""
    return f"#{deployment.release_number}{pending} since {_when(deployment.deployed_at)} by {deployment.deployed_by}"


def _trigger(trigger: s.ReleaseTrigger | None) -> str:
    if trigger is None:
        return "-"
    where = ", ".join(f"{k} {v}" for k, v in (("branch", trigger.branch), ("tag", trigger.tag)) if v)
    return f"{trigger.trigger_type.value}" + (f" ({where})" if where else "") + f" by {trigger.triggered_by}"


def _when(moment: Any) -> str:
    return str(moment.isoformat(timespec="seconds")) if moment is not None else "-"


def _table(title: str, columns: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console(highlight=False, width=200).print(table)


def _repository(given: str | None) -> str:
    if given:
        return given
    from pathlib import Path

    from forge_core.cli.pipeline import repository_identity

    return repository_identity(Path.cwd())


def _call(call: Callable[[PlatformClient], Awaitable[T]], *, reraise: tuple[type[Exception], ...] = ()) -> T:
    """Run ``call(client)`` against the Platform API; an error exits with its code (or is raised
    again if it is one of ``reraise``)."""
    return _call_with(lambda client, _settings, _host: call(client), reraise=reraise)


def _call_with(
    call: Callable[[PlatformClient, Settings, PluginHost], Awaitable[T]], *,
    reraise: tuple[type[Exception], ...] = (),
) -> T:
    """:func:`_call`, with the settings and plugins the client was made from."""
    import asyncio

    from forge_core.cli.platform import platform_client
    from forge_core.domain.errors import ForgeError

    try:
        settings, host = settings_and_plugins()

        async def go() -> T:
            async with platform_client(settings, host, subject=_login_name(),
                                       permissions=EMBEDDED_PERMISSIONS) as client:
                return await call(client, settings, host)

        return asyncio.run(go())
    except reraise:
        raise
    except ForgeError as error:
        fail(error)


def _login_name() -> str:
    """Who the embedded API's token names: the login name (a container may have none)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "forge-cli"
