"""Authentication and authorisation: OIDC tokens (a real provider on loopback), the platform's own
tokens, JWKS rotation, and the GitHub Actions token exchange."""

from __future__ import annotations

import asyncio
import base64
import json
import tempfile
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from forge_core.adapters.auth.jwks import JwksCache
from forge_core.adapters.auth.keys import load_or_create
from forge_core.adapters.auth.tokens import TokenVerifier
from forge_core.services.errors import AuthenticationFailed
from forge_core.settings.auth import AuthSettings

from .conftest import OIDC_CLIENT, Api, create_run, oidc_token
from .issuer import LocalIssuer


def error_of(response) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    return response.status_code, response.json()["error"]["code"]


def test_missing_token_is_401(api: Api) -> None:
    response = api.client.get("/v1/runs")
    assert error_of(response) == (401, "authentication_failed")
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_non_bearer_authorization_is_401(api: Api) -> None:
    assert error_of(api.client.get("/v1/runs", headers={"Authorization": "Basic YTpi"})) == (401, "authentication_failed")


def test_garbage_token_is_401(api: Api) -> None:
    assert error_of(api.client.get("/v1/runs", headers={"Authorization": "Bearer not.a.jwt"}))[0] == 401


def test_expired_token_is_401(api: Api) -> None:
    token = api.key.mint("alice", roles=["admin"], ttl_seconds=-120)
    response = api.client.get("/v1/runs", headers={"Authorization": f"Bearer {token}"})
    assert error_of(response) == (401, "authentication_failed")
    assert "expired" in response.json()["error"]["message"]


def test_wrongly_signed_token_is_401(api: Api) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    claims = {"iss": api.key.issuer, "aud": api.key.audience, "sub": "mallory", "exp": now + 60, "roles": ["admin"]}
    token = jwt.encode(claims, other, algorithm="ES256", headers={"kid": api.key.kid})
    assert error_of(api.client.get("/v1/runs", headers={"Authorization": f"Bearer {token}"})) == (401, "authentication_failed")


def test_wrong_audience_is_401(api: Api) -> None:
    now = int(time.time())
    claims = {"iss": api.key.issuer, "aud": "someone-else", "sub": "alice", "exp": now + 60, "roles": ["admin"]}
    token = jwt.encode(claims, api.key.private, algorithm="ES256", headers={"kid": api.key.kid})
    response = api.client.get("/v1/runs", headers={"Authorization": f"Bearer {token}"})
    assert error_of(response) == (401, "authentication_failed")
    assert "audience" in response.json()["error"]["message"]


def _unsigned(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_alg_none_is_401(api: Api) -> None:
    claims = {"iss": api.key.issuer, "aud": api.key.audience, "sub": "mallory", "exp": int(time.time()) + 60,
              "roles": ["admin"]}
    response = api.client.get("/v1/runs", headers={"Authorization": f"Bearer {_unsigned(claims)}"})
    assert error_of(response) == (401, "authentication_failed")


def test_an_untrusted_issuer_is_401(api: Api, github_issuer: LocalIssuer) -> None:
    token = github_issuer.token(audience=api.key.audience, roles=["admin"])
    assert error_of(api.client.get("/v1/runs", headers={"Authorization": f"Bearer {token}"}))[0] == 401


def test_a_role_without_the_permission_is_403(api: Api) -> None:
    response = api.client.post(
        "/v1/runs", json={"repository": "acme/x", "commit_sha": "abcdef1", "triggered_by": "v"},
        headers=api.headers("viewer"),
    )
    assert error_of(response) == (403, "authorization_failed")
    assert response.json()["error"]["details"]["required"] == "run"


def test_the_worker_may_update_status_but_nothing_else(api: Api) -> None:
    run = create_run(api)
    worker = api.headers("worker")
    assert api.client.put(f"/v1/runs/{run['id']}/status", json={"status": "running"}, headers=worker).status_code == 200
    assert api.client.get(f"/v1/runs/{run['id']}", headers=worker).status_code == 403
    assert api.client.delete(f"/v1/runs/{run['id']}", headers=worker).status_code == 403
    developer = api.headers("developer")
    assert api.client.put(f"/v1/runs/{run['id']}/status", json={"status": "success"}, headers=developer).status_code == 403


def test_an_unknown_role_grants_nothing(api: Api) -> None:
    assert api.client.get("/v1/runs", headers=api.headers("astronaut")).status_code == 403


def test_oidc_tokens_of_the_provider_are_accepted_with_realm_and_client_roles(api: Api, oidc_issuer: str) -> None:
    token = oidc_token(oidc_issuer, "bob@example.com", {
        "realm_access": {"roles": ["viewer"]}, "resource_access": {"forge-api": {"roles": ["approver"]}},
    })
    me = api.client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    assert me.json()["subject"] == "bob@example.com"
    assert me.json()["permissions"] == ["approve", "read"]
    assert api.client.get("/v1/runs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    denied = api.client.post(
        "/v1/runs", json={"repository": "acme/x", "commit_sha": "abcdef1", "triggered_by": "v"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert denied.status_code == 403


def test_a_tampered_oidc_token_is_401(api: Api, oidc_issuer: str) -> None:
    token = oidc_token(oidc_issuer, "eve", {"realm_access": {"roles": ["admin"]}})
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == [OIDC_CLIENT]
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert api.client.get("/v1/runs", headers={"Authorization": f"Bearer {tampered}"}).status_code == 401


def test_jwks_rotation_is_followed() -> None:
    async def scenario() -> None:
        issuer = LocalIssuer()
        try:
            settings = AuthSettings.model_validate(
                {"oidc": {"issuer": issuer.url, "audience": "forge-api", "jwks_min_refresh_seconds": 0}}
            )
            key = load_or_create(Path(tempfile.mkdtemp()) / "k.pem", issuer="catalyst-forge", audience="forge-api")
            cache = JwksCache(issuer.url, min_refresh=0)
            verifier = TokenVerifier(settings, key, cache)
            first = await verifier.verify(issuer.token("forge-api", roles=["viewer"]))
            assert first.permissions == frozenset({"read"})
            assert issuer.jwks_fetches == 1
            old_key = issuer.keys[issuer.kid]
            issuer.rotate()
            second = await verifier.verify(issuer.token("forge-api", roles=["developer"]))
            assert second.permissions == frozenset({"read", "run"})
            assert issuer.jwks_fetches == 2
            # A token signed by the retired key is refused once the JWKS no longer lists it.
            with pytest.raises(AuthenticationFailed):
                await verifier.verify(jwt.encode(
                    {"iss": issuer.url, "aud": "forge-api", "sub": "x", "exp": int(time.time()) + 60},
                    old_key, algorithm="RS256", headers={"kid": "retired"},
                ))
            await cache.aclose()
        finally:
            issuer.close()

    asyncio.run(scenario())


def test_jwks_is_cached_between_tokens() -> None:
    async def scenario() -> None:
        issuer = LocalIssuer()
        try:
            cache = JwksCache(issuer.url, min_refresh=60)
            for _ in range(5):
                await cache.key(issuer.kid)
            assert issuer.jwks_fetches == 1
            with pytest.raises(AuthenticationFailed):
                await cache.key("unknown")
            with pytest.raises(AuthenticationFailed):
                await cache.key("unknown-again")
            assert issuer.jwks_fetches == 1  # unknown key ids do not hammer the issuer
            await cache.aclose()
        finally:
            issuer.close()

    asyncio.run(scenario())


def test_github_exchange_gives_a_short_lived_token_with_the_repositorys_permissions(
    api: Api, github_issuer: LocalIssuer
) -> None:
    token = github_issuer.token("catalyst-forge", repository="acme/app", ref="refs/heads/main", run_id="77")
    response = api.client.post("/v1/auth/github/exchange", json={"token": token})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["permissions"] == ["read", "run"]
    assert body["expires_in"] == 900
    platform_token = body["access_token"]
    me = api.client.get("/v1/auth/me", headers={"Authorization": f"Bearer {platform_token}"}).json()
    assert me["subject"] == "github:acme/app"
    # The exchanged token carries the allow-list's permissions only: no deploying.
    assert api.client.post(
        "/v1/deployments", json={"release_id": "00000000-0000-4000-8000-000000000000", "environment": "dev"},
        headers={"Authorization": f"Bearer {platform_token}"},
    ).status_code == 403


def test_github_exchange_refuses_a_repository_outside_the_allow_list(api: Api, github_issuer: LocalIssuer) -> None:
    token = github_issuer.token("catalyst-forge", repository="evil/fork")
    response = api.client.post("/v1/auth/github/exchange", json={"token": token})
    assert error_of(response) == (403, "authorization_failed")


def test_github_exchange_refuses_the_wrong_audience_and_bad_signatures(api: Api, github_issuer: LocalIssuer) -> None:
    wrong_audience = github_issuer.token("someone-else", repository="acme/app")
    assert api.client.post("/v1/auth/github/exchange", json={"token": wrong_audience}).status_code == 401

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = github_issuer.token("catalyst-forge", repository="acme/app", key=other_key)
    assert api.client.post("/v1/auth/github/exchange", json={"token": forged}).status_code == 401
    expired = github_issuer.token("catalyst-forge", ttl=-300, repository="acme/app")
    assert api.client.post("/v1/auth/github/exchange", json={"token": expired}).status_code == 401
