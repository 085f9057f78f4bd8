"""GitHub Actions OIDC token exchange: a workflow's token becomes a short-lived platform token.

The GitHub token is checked against GitHub's JWKS (issuer configurable), its audience, and the
repository allow-list, which also says what that repository's workflows may do. The platform then
mints its own token; or, in production, Keycloak exchanges it (RFC 8693 token exchange) and its
token, validated like any OIDC token, is handed back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from forge_core.adapters.auth.jwks import JwksCache
from forge_core.adapters.auth.keys import SigningKey
from forge_core.adapters.auth.tokens import decode, unverified
from forge_core.domain.models import same_repository
from forge_core.services.auth import Principal
from forge_core.services.errors import AuthenticationFailed, AuthorizationFailed
from forge_core.settings.auth import GithubExchangeSettings, KeycloakExchangeSettings

GITHUB_ALGORITHMS = ["RS256"]
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"


@dataclass(frozen=True)
class ExchangedToken:
    access_token: str
    expires_in: int
    repository: str
    permissions: list[str]


class GithubExchange:
    def __init__(
        self,
        settings: GithubExchangeSettings,
        jwks: JwksCache,
        signing_key: SigningKey,
        verify: Callable[[str], Awaitable[Principal]],
    ) -> None:
        self.settings, self.jwks, self.signing_key = settings, jwks, signing_key
        self.verify = verify

    async def exchange(self, github_token: str) -> ExchangedToken:
        header, _ = unverified(github_token)
        key = await self.jwks.key(header.get("kid"))
        audience, issuer = self.settings.audience, self.jwks.issuer
        claims = decode(github_token, header, key, GITHUB_ALGORITHMS, audience, issuer)
        repository = claims.get("repository")
        if not isinstance(repository, str):
            raise AuthenticationFailed("GitHub token has no repository claim", where="token")
        permissions = next(
            (granted for name, granted in self.settings.allow.items()
             if same_repository(name, repository)),
            None,
        )
        if permissions is None:
            raise AuthorizationFailed(
                f"repository {repository} is not allowed to exchange tokens",
                where="FORGE_AUTH__GITHUB__ALLOW",
            )
        if self.settings.keycloak is not None:
            return await self._through_keycloak(self.settings.keycloak, github_token, repository)
        ttl = self.settings.token_ttl_seconds
        token = self.signing_key.mint(
            f"github:{repository}",
            permissions=permissions,
            ttl_seconds=ttl,
            extra={
                "repository": repository,
                "github_ref": claims.get("ref"),
                "github_run_id": claims.get("run_id"),
            },
        )
        return ExchangedToken(token, ttl, repository, sorted(permissions))

    async def _through_keycloak(
        self, keycloak: KeycloakExchangeSettings, github_token: str, repository: str
    ) -> ExchangedToken:
        form = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": github_token,
            "subject_token_type": JWT_TOKEN_TYPE,
            "subject_issuer": keycloak.subject_issuer,
            "client_id": keycloak.client_id,
            "client_secret": keycloak.client_secret.get_secret_value(),
        }
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                response = await client.post(str(keycloak.token_url), data=form)
            answer: Any = response.json() if response.content else {}
        except (httpx.HTTPError, ValueError) as exc:
            raise AuthenticationFailed(
                f"cannot reach Keycloak's token exchange: {type(exc).__name__}", where="token"
            ) from None
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if response.status_code != 200 or not isinstance(token, str):
            reason = answer.get("error_description") or answer.get("error") if answer else None
            raise AuthenticationFailed(
                f"Keycloak refused the exchange ({response.status_code}): {reason or 'no token'}",
                where="token",
            )
        principal = await self.verify(token)  # Keycloak's roles decide, like for any user
        expires_in = int(answer.get("expires_in") or 0)
        return ExchangedToken(token, expires_in, repository, sorted(principal.permissions))
