"""GitHub webhooks, authenticated by their HMAC signature (no bearer token)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from forge_core.api.deps import App, Runs
from forge_core.api.errors import ERROR_RESPONSES
from forge_core.api.scope import REPOSITORY_FREE
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
        **REPOSITORY_FREE,  # no token: the HMAC signature authenticates the sender
        "requestBody": {
            "content": {"application/json": {"schema": {"type": "object"}}},
            "required": True,
        }
    },
)
async def github_webhook(
    request: Request,
    app: App,
    runs: Runs,
    x_github_event: Annotated[str | None, Header()] = None,
    x_hub_signature_256: Annotated[str | None, Header()] = None,
) -> Any:
    """A push starts the commit's pipeline run (a redelivery returns the existing run)."""
    body = await request.body()
    secret = app.settings.api.webhook_secret
    verify_signature(secret.get_secret_value() if secret else None, body, x_hub_signature_256)
    wanted = run_for_event(x_github_event, body, app.settings.api.max_json_depth)
    if isinstance(wanted, Ignored):
        return JSONResponse(WebhookIgnored(reason=wanted.reason).model_dump(), status_code=202)
    existing = await runs.find_run(wanted.repository, wanted.commit_sha)
    if existing is None:
        try:
            run = await app.platform.create_run(wanted, "github-webhook")
        except Conflict:  # the same delivery arriving twice at once
            existing = await runs.find_run(wanted.repository, wanted.commit_sha)
        else:
            if app.sender:
                app.sender.wake()
            if app.starter:
                app.starter.wake()
            return JSONResponse(run.model_dump(mode="json"), status_code=201)
    assert existing is not None
    return JSONResponse(existing.model_dump(mode="json"), status_code=200)
