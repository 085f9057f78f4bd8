"""Releases and their aliases. A repository ``owner/name`` takes two path segments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import TypeAdapter, ValidationError

from forge_core.api.deps import App, Paging, Reader, Releaser, Releases
from forge_core.api.errors import ERROR_RESPONSES
from forge_core.services import schemas as s
from forge_core.services.errors import InvalidRequest

router = APIRouter(prefix="/v1/releases", tags=["releases"], responses=ERROR_RESPONSES)
Segment = Annotated[str, Path(min_length=1, max_length=128)]


@router.post("", status_code=201, response_model=s.Release)
async def create_release(body: s.ReleaseCreate, app: App, who: Releaser) -> s.Release:
    """Record a release; its number is the project's next, without gaps."""
    return await app.platform.create_release(body, who.subject)


@router.get("/{owner}/{repo}", response_model=s.ReleaseList)
async def list_repository_releases(
    owner: Segment, repo: Segment, releases: Releases, _: Reader, paging: Paging
) -> s.ReleaseList:
    """The releases of every project of the repository, newest first."""
    return await releases.list_releases(f"{owner}/{repo}", None, paging)


@router.get("/{owner}/{repo}/{project}", response_model=s.ReleaseList)
async def list_releases(
    owner: Segment, repo: Segment, project: Segment, releases: Releases, _: Reader, paging: Paging
) -> s.ReleaseList:
    return await releases.list_releases(f"{owner}/{repo}", project, paging)


@router.get("/{owner}/{repo}/{project}/{ref:path}", response_model=s.Release)
async def get_release(
    owner: Segment, repo: Segment, project: Segment, ref: str, releases: Releases, _: Reader
) -> s.Release:
    """A release by number, commit SHA (or a unique prefix of 7 or more) or alias."""
    return await releases.get_release(f"{owner}/{repo}", project, ref)


@router.put("/{owner}/{repo}/{project}/aliases/{alias:path}", response_model=s.Release)
async def set_alias(
    owner: Segment,
    repo: Segment,
    project: Segment,
    alias: str,
    body: s.AliasSet,
    releases: Releases,
    who: Releaser,
) -> s.Release:
    """Create an alias, or move it to another release of the project."""
    return await releases.set_alias(f"{owner}/{repo}", project, _alias(alias), body, who.subject)


@router.delete(
    "/{owner}/{repo}/{project}/aliases/{alias:path}", status_code=204, response_class=Response
)
async def delete_alias(
    owner: Segment, repo: Segment, project: Segment, alias: str, releases: Releases, who: Releaser
) -> Response:
    await releases.delete_alias(f"{owner}/{repo}", project, alias, who.subject)
    return Response(status_code=204)


ALIAS = TypeAdapter(s.AliasName)


def _alias(alias: str) -> str:
    try:
        return ALIAS.validate_python(alias)
    except ValidationError:
        raise InvalidRequest(
            f"alias {alias!r} must start with a letter or digit and use letters, digits, "
            "'.', '_', '/' and '-'",
            where="alias",
        ) from None
