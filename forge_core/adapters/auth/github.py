"""GitHub Actions OIDC token exchange: a workflow's token becomes a short-lived platform token.

The GitHub token is checked against GitHub's JWKS (issuer configurable), its audience, and the
repository allow-list, which also says what that repository's workflows may do.
"""

from __future__ import annotations

from dataclasses import dataclass

from forge_core.adapters.auth.jwks import JwksCache
from forge_core.adapters.auth.keys import SigningKey
from forge_core.adapters.auth.tokens import decode, unverified
from forge_core.services.errors import AuthenticationFailed, AuthorizationFailed
from forge_core.settings.auth import GithubExchangeSettings

GITHUB_ALGORITHMS = ["RS256"]


@dataclass(frozen=True)
class ExchangedToken:
    access_token: str
    expires_in: int
    repository: str
    permissions: list[str]


class GithubExchange:
    def __init__(
        self, settings: GithubExchangeSettings, jwks: JwksCache, signing_key: SigningKey
    ) -> None:
        self.settings, self.jwks, self.signing_key = settings, jwks, signing_key

    async def exchange(self, github_token: str) -> ExchangedToken:
        header, _ = unverified(github_token)
        key = await self.jwks.key(header.get("kid"))
        audience, issuer = self.settings.audience, self.jwks.issuer
        claims = decode(github_token, header, key, GITHUB_ALGORITHMS, audience, issuer)
        repository = claims.get("repository")
        if not isinstance(repository, str):
            raise AuthenticationFailed("GitHub token has no repository claim", where="token")
        permissions = self.settings.allow.get(repository)
        if permissions is None:
            raise AuthorizationFailed(
                f"repository {repository} is not allowed to exchange tokens",
                where="FORGE_AUTH__GITHUB__ALLOW",
            )
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
