"""The console's pages: runs, a run (live), a step's log, releases, environments with their
actions, plugins — and the login. Every page reads through the same stores and use cases as
``/v1`` and is scoped like it (the parameter names are the API's: ``run_id``, ``step_id``,
``owner``/``repo``, ``repository``)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, quote
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from forge_core.api.deps import App, services
from forge_core.api.scope import OWN_REPOSITORY, REPOSITORY_FREE
from forge_core.api.ui import live, logs, oidc
from forge_core.api.ui.environments import Matrix, matrix
from forge_core.api.ui.releases import tracking_details
from forge_core.api.ui.render import ConsoleRoute, page
from forge_core.api.ui.session import (
    CSRF_FIELD,
    SESSION_COOKIE,
    CurrentSession,
    Session,
    principal_of_login_link,
    secure_cookies,
    session_token,
    set_session,
)
from forge_core.domain.models import RunStatus
from forge_core.services import schemas as s
from forge_core.services.errors import InvalidRequest, NotFound

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)
Segment = Annotated[str, Path(min_length=1, max_length=128)]
Filter = Annotated[str | None, Query(max_length=255)]
FORM_LIMIT = 64 * 1024


def _safe_next(next_page: str | None) -> str:
    """Only a console page of this site: never an open redirect."""
    if next_page and next_page.startswith("/ui/") and not next_page.startswith("//") and "\\" not in next_page:
        return next_page
    return "/ui/runs"


async def _form(request: Request, session: Session) -> dict[str, str]:
    """The posted form (urlencoded), after its CSRF token is checked."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise InvalidRequest("a console action is an urlencoded form", where="Content-Type")
    body = await request.body()
    if len(body) > FORM_LIMIT:
        raise InvalidRequest(f"the form is over {FORM_LIMIT} bytes", where="body")
    fields = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    session.check_csrf(fields.get(CSRF_FIELD))
    return fields


def _field(fields: dict[str, str], name: str, *, required: bool = True) -> str | None:
    value = fields.get(name, "").strip()
    if required and not value:
        raise InvalidRequest(f"the form lacks {name}", where=name)
    return value or None


# --- login -------------------------------------------------------------------------------------


@router.get("", openapi_extra=REPOSITORY_FREE)
async def home() -> Response:
    return RedirectResponse("/ui/runs", status_code=303)


@router.get("/login", openapi_extra=REPOSITORY_FREE)
async def login(request: Request, next: Filter = None) -> Response:
    """The OIDC login where an issuer is configured; else how to open a local session."""
    if services(request).settings.auth.oidc.issuer is None:
        return page("login.html", title="Log in", session=None)
    started = await oidc.start(request, _safe_next(next))
    response = RedirectResponse(started.location, status_code=303)
    response.set_cookie(
        oidc.LOGIN_COOKIE, started.cookie, max_age=oidc.LOGIN_SECONDS, path="/ui/login", httponly=True,
        secure=secure_cookies(request), samesite="lax",
    )
    return response


@router.get("/login/callback", openapi_extra=REPOSITORY_FREE)
async def login_callback(
    request: Request,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state: Annotated[str | None, Query(max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=512)] = None,
    error_description: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response:
    if error or not code or not state:
        raise InvalidRequest(f"the login did not complete: {error or 'no code'} {error_description or ''}".strip(),
                             where="login")
    principal, next_page = await oidc.finish(request, code, state, request.cookies.get(oidc.LOGIN_COOKIE))
    response = RedirectResponse(_safe_next(next_page), status_code=303)
    response.delete_cookie(oidc.LOGIN_COOKIE, path="/ui/login")
    set_session(response, request, session_token(request, principal))
    return response


@router.get("/session", openapi_extra=REPOSITORY_FREE)
async def local_session(
    request: Request, token: Annotated[str, Query(max_length=8192)], next: Filter = None
) -> Response:
    """A login link of ``forge ui`` / ``forge run --ui`` (one machine): opens a session."""
    principal = await principal_of_login_link(request, token)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session(response, request, session_token(request, principal))
    return response


@router.post("/logout", openapi_extra=REPOSITORY_FREE)
async def logout(request: Request, session: CurrentSession) -> Response:
    await _form(request, session)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/ui")
    return response


# --- runs ----------------------------------------------------------------------------------------


async def _runs(app: App, session: Session, repository: str | None, branch: str | None,
                status: RunStatus | None) -> s.RunList:
    if session.principal.repository is not None:  # a scoped session sees its repository only
        repository = session.principal.repository
    return await app.store.list_runs(
        s.Page(limit=100), repository=repository or None, branch=branch or None, status=status
    )


@router.get("/runs", openapi_extra=OWN_REPOSITORY)
async def runs_page(
    app: App, session: CurrentSession, repository: Filter = None, branch: Filter = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    chosen = _status(status)
    listing = await _runs(app, session, repository, branch, chosen)
    return page(
        "runs.html", title="Runs", session=session, runs=listing,
        filters={"repository": repository or "", "branch": branch or "", "status": status or ""},
        statuses=[st.value for st in RunStatus],
    )


@router.get("/runs/table", openapi_extra=OWN_REPOSITORY)
async def runs_table(
    app: App, session: CurrentSession, repository: Filter = None, branch: Filter = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    listing = await _runs(app, session, repository, branch, _status(status))
    query = {"repository": repository or "", "branch": branch or "", "status": status or ""}
    return page("runs_table.html", runs=listing, query=query)


def _status(status: str | None) -> RunStatus | None:
    if not status:
        return None
    try:
        return RunStatus(status)
    except ValueError:
        raise InvalidRequest(
            f"unknown status {status!r}; known: {', '.join(st.value for st in RunStatus)}", where="status"
        ) from None


@router.get("/runs/{run_id}")
async def run_page(run_id: UUID, app: App, session: CurrentSession) -> Response:
    run = await app.store.get_run(run_id)
    state = live.digest(live.progress_of(run))  # the stream sends whatever differs from it
    return page("run.html", title=f"Run {run.id}", session=session, run=run, state=state,
                final=run.status in s.FINAL_STATUSES)


@router.get("/runs/{run_id}/events")
async def run_events(
    run_id: UUID, request: Request, app: App, session: CurrentSession,
    since: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Server-sent events: ``run`` with what changed in the run's tree, ``done`` at its end."""
    await app.store.run_progress(run_id)  # a missing run is a 404 before the stream starts
    stream = live.run_events(app.store, run_id, since, app.settings.api.ui.poll_seconds, request.is_disconnected)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


async def _step(app: App, run_id: UUID, step_id: UUID) -> tuple[s.Run, s.Task, s.Step]:
    run = await app.store.get_run(run_id)
    for phase in run.phases:
        for task in phase.tasks:
            for step in task.steps:
                if step.id == str(step_id):
                    return run, task, step
    raise NotFound(f"run {run_id} has no step {step_id}", where="step_id")


Offset = Annotated[int, Query(ge=0, le=2**40)]


@router.get("/runs/{run_id}/steps/{step_id}/log")
async def log_page(run_id: UUID, step_id: UUID, app: App, session: CurrentSession, offset: Offset = 0) -> Response:
    run, task, step = await _step(app, run_id, step_id)
    chunk = await logs.read_chunk(app.settings, step, offset)
    return page("log.html", title=f"Log of {step.name}", session=session, run=run, task=task, step=step,
                chunk=chunk)


@router.get("/runs/{run_id}/steps/{step_id}/log/chunk")
async def log_chunk(run_id: UUID, step_id: UUID, app: App, session: CurrentSession, offset: Offset = 0) -> Response:
    run, _, step = await _step(app, run_id, step_id)
    chunk = await logs.read_chunk(app.settings, step, offset)
    return page("log_chunk.html", run=run, step=step, chunk=chunk)


# --- releases ------------------------------------------------------------------------------------


@router.get("/releases/{owner}/{repo}")
async def releases_page(owner: Segment, repo: Segment, app: App, session: CurrentSession) -> Response:
    repository = f"{owner}/{repo}"
    listing = await app.store.list_releases(repository, None, s.Page(limit=200))
    return page("releases.html", title=f"Releases of {repository}", session=session, repository=repository,
                releases=listing)


@router.get("/releases/{owner}/{repo}/{project}/{ref}")
async def release_page(
    owner: Segment, repo: Segment, project: Segment, ref: Segment, app: App, session: CurrentSession
) -> Response:
    release = await app.store.get_release(f"{owner}/{repo}", project, ref)
    details = await tracking_details(app.settings, release)
    return page("release.html", title=f"{project} release {release.release_number}", session=session,
                release=release, details=details)


# --- environments --------------------------------------------------------------------------------


@router.get("/environments", openapi_extra=OWN_REPOSITORY)
async def environments_page(app: App, session: CurrentSession, repository: Filter = None,
                            notice: Annotated[str | None, Query(max_length=500)] = None) -> Response:
    chosen = session.principal.repository or repository
    known = sorted({r.repository for r in (await _runs(app, session, None, None, None)).runs})
    found: Matrix | None = await matrix(app, chosen) if chosen else None
    return page("environments.html", title="Environments", session=session, repository=chosen,
                repositories=known, matrix=found, notice=notice)


@router.post("/environments/promote", openapi_extra=OWN_REPOSITORY)
async def promote(request: Request, app: App, session: CurrentSession) -> Response:
    """Without ``confirm``: the dry run (every rule and why); with it: the promotion itself."""
    fields = await _form(request, session)
    who = session.principal
    who.require("deploy")
    repository, project, environment = _target(fields, session)
    release = _field(fields, "release", required=False)
    wanted = s.PromotedRelease(repository=repository, project=project, release=release)
    confirm = fields.get("confirm") == "yes"
    decision = await app.platform.promote(
        s.PromotionCreate(environment=environment, releases=[wanted], dry_run=not confirm), who.subject
    )
    return _decided(request, session, decision, "promote", fields, confirm)


@router.post("/environments/rollback", openapi_extra=OWN_REPOSITORY)
async def roll_back(request: Request, app: App, session: CurrentSession) -> Response:
    fields = await _form(request, session)
    who = session.principal
    who.require("deploy")
    repository, project, environment = _target(fields, session)
    confirm = fields.get("confirm") == "yes"
    decision = await app.platform.roll_back(
        s.RollbackCreate(environment=environment, repository=repository, project=project,
                         release=_field(fields, "release", required=False), dry_run=not confirm),
        who.subject,
    )
    return _decided(request, session, decision, "rollback", fields, confirm)


@router.post("/environments/approve", openapi_extra=OWN_REPOSITORY)
async def approve(request: Request, app: App, session: CurrentSession) -> Response:
    """Without ``confirm``: the promotion's dry run (what the approval is for); with it: the approval."""
    fields = await _form(request, session)
    who = session.principal
    who.require("approve")
    repository, project, environment = _target(fields, session)
    ref = str(_field(fields, "release"))
    release = await app.store.get_release(repository, project, ref)
    if fields.get("confirm") != "yes":
        wanted = s.PromotedRelease(repository=repository, project=project, release=ref)
        decision = await app.platform.promote(
            s.PromotionCreate(environment=environment, releases=[wanted], dry_run=True), who.subject
        )
        return _decided(request, session, decision, "approve", fields, False)
    approval = s.ApprovalCreate(
        release_id=release.id, environment=environment, justification=str(_field(fields, "justification"))
    )
    await app.platform.create_approval(approval, who.subject, roles=who.roles, groups=who.groups)
    notice = f"approved {project} release {release.release_number} for {environment}"
    return _back(repository, notice)


def _target(fields: dict[str, str], session: Session) -> tuple[str, str, str]:
    repository, project, environment = (str(_field(fields, n)) for n in ("repository", "project", "environment"))
    session.principal.require_repository(repository)
    return repository, project, environment


def _decided(request: Request, session: Session, decision: s.Promotion, action: str, fields: dict[str, str],
             confirmed: bool) -> Response:
    if confirmed:
        numbers = ", ".join(f"#{d.release_number}" for d in decision.deployments)
        return _back(fields["repository"], f"{decision.kind} to {decision.environment}: {numbers} pending deployment")
    kept = {k: v for k, v in fields.items() if k not in (CSRF_FIELD, "confirm")}
    if not kept.get("release") and decision.decision.decisions:  # confirm exactly the release shown
        kept["release"] = str(decision.decision.decisions[0].number)
    return page("decision.html", title=f"{action}: the policy's decision", session=session, decision=decision,
                action=action, fields=kept)


def _back(repository: str, notice: str) -> Response:
    target = f"/ui/environments?repository={quote(repository, safe='')}&notice={quote(notice[:500], safe='')}"
    return RedirectResponse(target, status_code=303)


# --- plugins -------------------------------------------------------------------------------------


@router.get("/plugins", openapi_extra=REPOSITORY_FREE)
async def plugins_page(app: App, session: CurrentSession) -> Response:
    return page("plugins.html", title="Plugins", session=session, plugins=app.host.describe())
