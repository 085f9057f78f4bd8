"""Identity: the GitHub Actions token exchange, and who the caller's token says they are."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from forge_core.api.deps import Anyone, App
from forge_core.api.errors import ERROR_RESPONSES
from forge_core.api.scope import REPOSITORY_FREE

router = APIRouter(prefix="/v1/auth", tags=["auth"], responses=ERROR_RESPONSES)


class ExchangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=16384, description="The GitHub Actions OIDC token")


class ExchangeResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    repository: str
    permissions: list[str]


@router.post("/github/exchange", response_model=ExchangeResponse, openapi_extra=REPOSITORY_FREE)
async def github_exchange(body: ExchangeRequest, app: App) -> ExchangeResponse:
    """Trade a GitHub Actions OIDC token of an allowed repository for a short-lived platform
    token carrying the permissions the allow-list gives that repository."""
    exchanged = await app.github.exchange(body.token)
    return ExchangeResponse(
        access_token=exchanged.access_token, expires_in=exchanged.expires_in,
        repository=exchanged.repository, permissions=exchanged.permissions,
    )


class Identity(BaseModel):
    subject: str
    issuer: str
    permissions: list[str]
    repository: str | None = Field(
        default=None, description="The one repository the token may act on (None: any)"
    )


@router.get("/me", response_model=Identity, openapi_extra=REPOSITORY_FREE)
async def me(who: Anyone) -> Identity:
    """Who the token says the caller is, and what they may do."""
    return Identity(
        subject=who.subject, issuer=who.issuer, permissions=sorted(who.permissions),
        repository=who.repository,
    )
