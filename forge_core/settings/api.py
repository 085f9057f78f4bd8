"""How the Platform API serves: webhooks, environments, commit statuses, limits."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode


def _split(value: Any) -> Any:
    return value.replace(",", " ").split() if isinstance(value, str) else value


class NotifierSettings(BaseModel):
    """Which notifier plugin delivers commit statuses from the outbox, and its options."""

    model_config = ConfigDict(extra="forbid")

    type: str | None = Field(
        default=None, description="Registered notifier name ('github'); unset: none."
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Passed to the notifier (JSON object)."
    )
    token: SecretStr | None = Field(
        default=None, description="Credential handed to the notifier; never logged."
    )
    context: str = Field(default="catalyst-forge", description="The status context on commits.")
    target_url: str | None = Field(
        default=None, description="Link of a status; '{run_id}' is replaced."
    )
    in_process: bool = Field(
        default=True, description="Run the outbox sender inside the API process."
    )
    poll_seconds: float = Field(default=1.0, gt=0)
    min_backoff_seconds: float = Field(
        default=1.0, gt=0, description="First retry delay; doubles per attempt."
    )
    max_backoff_seconds: float = Field(default=300.0, gt=0)
    keep_delivered_days: float = Field(
        default=7.0, ge=0, description="Delivered statuses are kept this long (an audit trail), then purged."
    )


class UiSettings(BaseModel):
    """The web console under ``/ui``: sessions, live updates, and the OIDC login in a fleet."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Serve the console under /ui.")
    session_ttl_seconds: int = Field(
        default=8 * 3600, ge=60, le=7 * 86400, description="A console session ends this long after login."
    )
    poll_seconds: float = Field(
        default=0.25, gt=0, le=10, description="How often a live page's stream looks for changes."
    )
    oidc_client_id: str | None = Field(
        default=None,
        description="The OIDC client the console logs in as (authorization code with PKCE); "
        "unset: auth.oidc.client_id, else auth.oidc.audience.",
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="That client's secret, if it is confidential; never logged."
    )
    oidc_scopes: str = Field(default="openid profile email", description="Scopes the login asks for.")
    public_url: str | None = Field(
        default=None,
        description="The console's external base URL (https://forge.example.com) for the login's "
        "redirect; unset: from the request.",
    )


class ApiSettings(BaseModel):
    """The HTTP service itself."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None,
        description="Where clients (workers, the CLI) reach the API; unset: `forge run` serves one "
        "in-process on the embedded defaults.",
    )
    token: SecretStr | None = Field(
        default=None, description="The clients' bearer token (a worker's: role worker); never logged."
    )
    host: str = Field(default="127.0.0.1")
    port: int = Field(default=8080, ge=1, le=65535)
    webhook_secret: SecretStr | None = Field(
        default=None, description="GitHub webhook HMAC secret."
    )
    environments: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["dev", "staging", "production"]
    )
    protected_environments: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["production"],
        description="Deployments here need an active approval.",
    )
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(
        default=64, ge=8, le=512,
        description="JSON bodies nesting arrays and objects deeper than this are refused (400).",
    )
    notifier: NotifierSettings = Field(default_factory=NotifierSettings)
    ui: UiSettings = Field(default_factory=UiSettings)

    _lists = field_validator("environments", "protected_environments", mode="before")(_split)

    @model_validator(mode="after")
    def _protected_are_known(self) -> ApiSettings:
        unknown = sorted(set(self.protected_environments) - set(self.environments))
        if unknown:
            raise ValueError(
                f"protected_environments {unknown} are not in environments {self.environments}"
            )
        return self
