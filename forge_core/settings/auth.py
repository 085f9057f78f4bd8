"""Who may call the Platform API: OIDC issuers, the platform's own signing key, role mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import NoDecode

from forge_core.domain.models import repository_key

PERMISSIONS = ("read", "run", "release", "deploy", "approve", "admin", "status")
"""What a token may do; ``admin`` implies every other; ``status`` is the worker's (run state
updates)."""

DEFAULT_ROLES: dict[str, list[str]] = {
    "viewer": ["read"],
    "developer": ["read", "run"],
    "releaser": ["read", "run", "release"],
    "deployer": ["read", "deploy"],
    "approver": ["read", "approve"],
    "admin": ["admin"],
    "worker": ["status"],
}
ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
)


def _permissions(value: list[str], what: str) -> list[str]:
    unknown = sorted(set(value) - set(PERMISSIONS))
    if unknown:
        raise ValueError(
            f"{what}: unknown permission(s) {', '.join(unknown)}; known: {', '.join(PERMISSIONS)}"
        )
    return value


class OidcSettings(BaseModel):
    """The identity provider whose tokens users and service accounts present (Keycloak)."""

    model_config = ConfigDict(extra="forbid")

    issuer: HttpUrl | None = Field(
        default=None, description="Issuer URL (the token's iss); unset: no OIDC."
    )
    audience: str = Field(default="forge-api", description="Expected aud (the client id).")
    jwks_url: HttpUrl | None = Field(
        default=None, description="JWKS URL; unset: from the discovery document."
    )
    client_id: str | None = Field(
        default=None, description="Client whose resource_access roles count."
    )
    algorithms: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["RS256", "ES256"])
    jwks_min_refresh_seconds: float = Field(
        default=10.0,
        ge=0,
        description="A token with an unknown key id refetches the JWKS at most this often.",
    )
    jwks_max_age_seconds: float = Field(
        default=3600.0, gt=0, description="Cached JWKS are refetched after this."
    )

    @field_validator("algorithms", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return value.replace(",", " ").split() if isinstance(value, str) else value

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        bad = [alg for alg in value if alg not in ALGORITHMS]
        if bad or not value:
            raise ValueError(
                f"unsupported algorithm(s) {bad or value}; "
                f"use asymmetric ones: {', '.join(ALGORITHMS)}"
            )
        return value


class KeycloakExchangeSettings(BaseModel):
    """Keycloak's token exchange (RFC 8693) with GitHub as an identity provider of the realm."""

    model_config = ConfigDict(extra="forbid")

    token_url: HttpUrl = Field(description="The realm's token endpoint.")
    client_id: str = Field(min_length=1, description="Confidential client allowed to exchange.")
    client_secret: SecretStr = Field(description="That client's secret; never logged.")
    subject_issuer: str = Field(
        default="github", description="Alias of the GitHub identity provider in the realm."
    )


class GithubExchangeSettings(BaseModel):
    """GitHub Actions OIDC tokens exchanged for short-lived platform tokens."""

    model_config = ConfigDict(extra="forbid")

    issuer: HttpUrl = Field(
        default=HttpUrl("https://token.actions.githubusercontent.com"),
        description="Issuer of GitHub Actions OIDC tokens.",
    )
    audience: str = Field(default="catalyst-forge", description="The aud the workflow requests.")
    allow: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Repository 'owner/name' → permissions its workflows get (JSON object).",
    )
    token_ttl_seconds: int = Field(default=900, ge=60, le=86400)
    keycloak: KeycloakExchangeSettings | None = Field(
        default=None,
        description="Exchange through Keycloak (the production option) instead of minting a "
        "platform token; the returned token is validated as an OIDC token.",
    )

    @field_validator("allow")
    @classmethod
    def _known(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        seen: dict[str, str] = {}
        for repository, permissions in value.items():
            if repository.count("/") != 1:
                raise ValueError(f"{repository!r} is not a repository like 'owner/name'")
            key = repository_key(repository)
            if key in seen:  # GitHub's names ignore case: one entry per repository
                raise ValueError(f"{repository!r} and {seen[key]!r} are one repository")
            seen[key] = repository
            _permissions(permissions, repository)
        return value


class AuthSettings(BaseModel):
    """Token validation and the role → permission mapping."""

    model_config = ConfigDict(extra="forbid")

    oidc: OidcSettings = Field(default_factory=OidcSettings)
    github: GithubExchangeSettings = Field(default_factory=GithubExchangeSettings)
    roles: dict[str, list[str]] = Field(
        default_factory=lambda: dict(DEFAULT_ROLES),
        description="Role name → permissions (JSON object).",
    )
    signing_key: Path | None = Field(
        default=None,
        description="PEM private key of the platform's own tokens; unset: generated in the "
        "state directory.",
    )
    platform_issuer: str = Field(
        default="catalyst-forge", description="iss of tokens the platform signs."
    )
    platform_audience: str = Field(
        default="forge-api", description="aud of tokens the platform signs."
    )

    @model_validator(mode="after")
    def _keycloak_tokens_need_the_issuer(self) -> AuthSettings:
        if self.github.keycloak is not None and self.oidc.issuer is None:
            raise ValueError(
                "github.keycloak exchanges tokens for Keycloak's, which need oidc.issuer "
                "(FORGE_AUTH__OIDC__ISSUER) to be validated"
            )
        return self

    @field_validator("roles")
    @classmethod
    def _known_permissions(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for role, permissions in value.items():
            _permissions(permissions, f"role {role!r}")
        return value
