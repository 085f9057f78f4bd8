"""GitHub webhooks (authenticated by their HMAC signature) and the GitHub OIDC token exchange."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from forge_core.api.deps import Anyone, App
from forge_core.api.errors import ERROR_RESPONSES
from forge_core.services import schemas as s
from forge_core.services.errors import Conflict
from forge_core.services.webhooks import Ignored, run_for_event, verify_signature

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


class WebhookIgnored(BaseModel):
    status: str = "ignored"
    reason: str


@router.post(
    "/webhooks/github",
    status_code=201,
    tags=["webhooks"],
    response_model=s.Run,
    responses={200: {"model": s.Run, "description": "Redelivery: the existing run"},
               202: {"model": WebhookIgnored, "description": "An event that starts nothing"}},
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": {"type": "object"}}},
            "required": True,
        }
    },
)
async def github_webhook(
    request: Request,
    app: App,
    x_github_event: Annotated[str | None, Header()] = None,
    x_hub_signature_256: Annotated[str | None, Header()] = None,
) -> Any:
    """A push starts the commit's pipeline run (a redelivery returns the existing run)."""
    body = await request.body()
    secret = app.settings.api.webhook_secret
    verify_signature(secret.get_secret_value() if secret else None, body, x_hub_signature_256)
    wanted = run_for_event(x_github_event, body)
    if isinstance(wanted, Ignored):
        return JSONResponse(WebhookIgnored(reason=wanted.reason).model_dump(), status_code=202)
    existing = await app.store.find_run(wanted.repository, wanted.commit_sha)
    if existing is None:
        try:
            run = await app.platform.create_run(wanted, "github-webhook")
        except Conflict:  # the same delivery arriving twice at once
            existing = await app.store.find_run(wanted.repository, wanted.commit_sha)
        else:
            if app.sender:
                app.sender.wake()
            return JSONResponse(run.model_dump(mode="json"), status_code=201)
    assert existing is not None
    return JSONResponse(existing.model_dump(mode="json"), status_code=200)


class ExchangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=16384, description="The GitHub Actions OIDC token")


class ExchangeResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    repository: str
    permissions: list[str]


@router.post("/auth/github/exchange", response_model=ExchangeResponse, tags=["auth"])
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


@router.get("/auth/me", response_model=Identity, tags=["auth"])
async def me(who: Anyone) -> Identity:
    """Who the token says the caller is, and what they may do."""
    return Identity(subject=who.subject, issuer=who.issuer, permissions=sorted(who.permissions))
