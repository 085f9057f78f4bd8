"""Repository scope: a token exchanged for one repository (a GitHub Actions workflow's) acts on
that repository's entities only, on every endpoint.

One rule, applied by the authentication dependency (:func:`forge_core.api.deps.require`) to
every operation before its handler runs. What the request names is read from its parameters by
name, wherever they are (path, query or JSON body, at any depth: a promotion's ``releases``):

- ``owner`` + ``repo`` (path) and ``repository`` name a repository: another repository's name is
  a **403** (the caller wrote that name; answering reveals nothing);
- ``run_id`` (and a release's ``pipeline_run_id``), ``phase_id``, ``task_id``, ``step_id``,
  ``release_id``, ``approval_id`` and ``deployment_id`` name an entity, whose repository is
  looked up (a phase's, task's or step's is its run's; an approval's its release's): an entity
  of another repository
  is a **404** worded exactly like a missing one, so a token learns nothing of other
  repositories' entities, not even that they exist.

An operation that names nothing of a repository is refused to a scoped token (403) unless it
declares, with ``openapi_extra=``, that it is repository-free (:data:`REPOSITORY_FREE`) or that it
lists the token's own repository only (:data:`OWN_REPOSITORY`); one that shows every
repository's data (:data:`EVERY_REPOSITORY`) is always refused to a scoped token. A new endpoint is therefore closed
to scoped tokens until it is classified; the classification is visible in the OpenAPI document as
``x-forge-repository-scope``. Unscoped tokens (users, workers, admins) are not affected.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from forge_core.domain.models import same_repository
from forge_core.services.auth import Principal
from forge_core.services.errors import AuthorizationFailed, NotFound
from forge_core.services.scope import Owned
from forge_core.services.store import OwnerStore

SCOPE_KEY = "x-forge-repository-scope"
REPOSITORY_FREE: dict[str, Any] = {SCOPE_KEY: "none"}  # touches no repository's entities
OWN_REPOSITORY: dict[str, Any] = {SCOPE_KEY: "own"}  # a scoped token gets its repository's only
EVERY_REPOSITORY: dict[str, Any] = {SCOPE_KEY: "all"}  # every repository's data: never scoped

ENTITIES: dict[str, Owned] = {
    "run_id": Owned.RUN,
    "pipeline_run_id": Owned.RUN,  # a release's run
    "phase_id": Owned.PHASE,
    "task_id": Owned.TASK,
    "step_id": Owned.STEP,
    "release_id": Owned.RELEASE,
    "approval_id": Owned.APPROVAL,
    "deployment_id": Owned.DEPLOYMENT,
}
REPOSITORY = "repository"


async def enforce(request: Request, who: Principal, owners: OwnerStore) -> None:
    """Refuse the request if ``who`` is scoped to a repository and the request names anything
    of another one (see the module's documentation for the answers)."""
    if who.repository is None:
        return
    route = request.scope.get("route")
    if _declared(route) == EVERY_REPOSITORY[SCOPE_KEY]:
        raise AuthorizationFailed(
            f"{who.subject} may act on repository {who.repository} only, and "
            f"{request.method} {request.url.path} shows every repository's data",
            where="Authorization",
            details={"token_repository": who.repository},
        )
    named = [*_path_and_query(request), *await _body(request, route)]
    for where, name, value in named:
        if name == REPOSITORY:
            who.require_repository(str(value))
        else:
            await _check_entity(owners, who.repository, ENTITIES[name], value, where)
    if not named and _declared(route) is None:
        raise AuthorizationFailed(
            f"{who.subject} may act on repository {who.repository} only, and "
            f"{request.method} {request.url.path} names no repository",
            where="Authorization",
            details={"token_repository": who.repository},
        )


def _declared(route: object) -> str | None:
    extra = route.openapi_extra if isinstance(route, APIRoute) else None
    value = (extra or {}).get(SCOPE_KEY)
    return value if isinstance(value, str) else None


async def _check_entity(
    owners: OwnerStore, scope: str, kind: Owned, value: object, where: str
) -> None:
    try:
        entity_id = value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        entity_id = None
    repository = await owners.repository_of(kind, entity_id) if entity_id else None
    if repository is None or not same_repository(repository, scope):
        # Worded like the handlers' own answer for a missing entity: the two are not told apart.
        raise NotFound(f"{kind.value} {value} does not exist", where=where)


def _path_and_query(request: Request) -> Iterator[tuple[str, str, object]]:
    path = request.path_params
    if "owner" in path and "repo" in path:
        yield "owner/repo", REPOSITORY, f"{path['owner']}/{path['repo']}"
    for name, value in [*path.items(), *request.query_params.multi_items()]:
        if name in ENTITIES or name == REPOSITORY:
            yield name, name, value


async def _body(request: Request, route: object) -> list[tuple[str, str, object]]:
    """What the JSON body names, read from the body as the operation validates it (so that the
    values checked are the values the handler gets)."""
    field = route.body_field if isinstance(route, APIRoute) else None
    model = field.field_info.annotation if field is not None else None
    if field is None or not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    raw = await request.body()
    # A body the operation would refuse is refused here, as FastAPI answers it: the handler
    # never runs, and what is checked is exactly what the handler would get.
    if not raw:
        if field.field_info.is_required():
            raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required"}])
        return []
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": f"JSON decode error: {error}"}]
        ) from None
    try:
        body = model.model_validate(document)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors()]
        ) from None
    return list(_named(body, "body"))


def _named(model: BaseModel, where: str) -> Iterator[tuple[str, str, object]]:
    """What ``model`` names, and what the models in its fields name (a promotion's releases)."""
    for name in (*ENTITIES, REPOSITORY):
        if (value := getattr(model, name, None)) is not None:
            yield f"{where}.{name}", name, value
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _named(value, f"{where}.{name}")
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from _named(item, f"{where}.{name}.{index}")
