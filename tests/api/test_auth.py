"""Authentication and authorisation: OIDC tokens (a real provider on loopback), the platform's own
tokens, JWKS rotation, and the GitHub Actions token exchange."""

from __future__ import annotations

import asyncio
import base64
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

from forge_core.adapters.auth.github import JWT_TOKEN_TYPE
from forge_core.adapters.auth.jwks import JwksCache
from forge_core.adapters.auth.keys import load_or_create, platform_key
from forge_core.adapters.auth.tokens import TokenVerifier
from forge_core.api.app import create_app
from forge_core.plugin.host import load_plugins
from forge_core.services.errors import AuthenticationFailed
from forge_core.settings.auth import AuthSettings, KeycloakExchangeSettings

from .conftest import OIDC_CLIENT, Api, create_run, make_settings, new_sha, oidc_token
from .issuer import LocalIssuer

FAILED = (401, "authentication_failed")


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def runs_with(api: Api, authorization: str) -> httpx.Response:
    return api.client.get("/v1/runs", headers={"Authorization": authorization})


def own_claims(api: Api, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": api.key.issuer, "aud": api.key.audience, "sub": "mallory", "exp": now + 60}
    return {**claims, "roles": ["admin"], **changes}


def test_missing_token_is_401(api: Api) -> None:
    response = api.client.get("/v1/runs")
    assert error_of(response) == FAILED
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_non_bearer_authorization_is_401(api: Api) -> None:
    assert error_of(runs_with(api, "Basic YTpi")) == FAILED


def test_garbage_token_is_401(api: Api) -> None:
    assert error_of(runs_with(api, "Bearer not.a.jwt")) == FAILED


def test_expired_token_is_401(api: Api) -> None:
    token = api.key.mint("alice", roles=["admin"], ttl_seconds=-120)
    response = runs_with(api, f"Bearer {token}")
    assert error_of(response) == FAILED
    assert "expired" in response.json()["error"]["message"]


def test_wrongly_signed_token_is_401(api: Api) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(own_claims(api), other, algorithm="ES256", headers={"kid": api.key.kid})
    assert error_of(runs_with(api, f"Bearer {token}")) == FAILED


def test_wrong_audience_is_401(api: Api) -> None:
    claims = own_claims(api, aud="someone-else")
    token = jwt.encode(claims, api.key.private, algorithm="ES256", headers={"kid": api.key.kid})
    response = runs_with(api, f"Bearer {token}")
    assert error_of(response) == FAILED
    assert "audience" in response.json()["error"]["message"]


def _unsigned(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_alg_none_is_401(api: Api) -> None:
    assert error_of(runs_with(api, f"Bearer {_unsigned(own_claims(api))}")) == FAILED


def test_an_untrusted_issuer_is_401(api: Api, github_issuer: LocalIssuer) -> None:
    token = github_issuer.token(audience=api.key.audience, roles=["admin"])
    assert error_of(runs_with(api, f"Bearer {token}")) == FAILED


def test_a_role_without_the_permission_is_403(api: Api) -> None:
    body = {"repository": "acme/x", "commit_sha": "abcdef1", "triggered_by": "v"}
    response = api.post("/v1/runs", "viewer", json=body)
    assert error_of(response) == (403, "authorization_failed")
    assert response.json()["error"]["details"]["required"] == "run"


def test_the_worker_may_update_status_but_nothing_else(api: Api) -> None:
    run = create_run(api)
    status_url = f"/v1/runs/{run['id']}/status"
    assert api.put(status_url, "worker", json={"status": "running"}).status_code == 200
    assert api.get(f"/v1/runs/{run['id']}", "worker").status_code == 403
    assert api.delete(f"/v1/runs/{run['id']}", "worker").status_code == 403
    assert api.put(status_url, "developer", json={"status": "success"}).status_code == 403


def test_an_unknown_role_grants_nothing(api: Api) -> None:
    assert api.get("/v1/runs", "astronaut").status_code == 403


def test_oidc_tokens_of_the_provider_are_accepted_with_realm_and_client_roles(
    api: Api, oidc_issuer: str
) -> None:
    claims = {
        "realm_access": {"roles": ["viewer"]},
        "resource_access": {OIDC_CLIENT: {"roles": ["approver"]}},
    }
    bearer = f"Bearer {oidc_token(oidc_issuer, 'bob@example.com', claims)}"
    me = api.client.get("/v1/auth/me", headers={"Authorization": bearer})
    assert me.status_code == 200, me.text
    assert me.json()["subject"] == "bob@example.com"
    assert me.json()["permissions"] == ["approve", "read"]
    assert runs_with(api, bearer).status_code == 200
    body = {"repository": "acme/x", "commit_sha": "abcdef1", "triggered_by": "v"}
    denied = api.client.post("/v1/runs", json=body, headers={"Authorization": bearer})
    assert denied.status_code == 403


def test_a_tampered_oidc_token_is_401(api: Api, oidc_issuer: str) -> None:
    token = oidc_token(oidc_issuer, "eve", {"realm_access": {"roles": ["admin"]}})
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == [OIDC_CLIENT]
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert error_of(runs_with(api, f"Bearer {tampered}")) == FAILED


def _verifier(issuer: LocalIssuer, cache: JwksCache) -> TokenVerifier:
    oidc = {"issuer": issuer.url, "audience": "forge-api", "jwks_min_refresh_seconds": 0}
    settings = AuthSettings.model_validate({"oidc": oidc})
    key_file = Path(tempfile.mkdtemp()) / "k.pem"
    key = load_or_create(key_file, issuer="catalyst-forge", audience="forge-api")
    return TokenVerifier(settings, key, cache)


def test_jwks_rotation_is_followed() -> None:
    async def scenario(issuer: LocalIssuer) -> None:
        cache = JwksCache(issuer.url, min_refresh=0)
        verifier = _verifier(issuer, cache)
        first = await verifier.verify(issuer.token("forge-api", roles=["viewer"]))
        assert first.permissions == frozenset({"read"})
        assert issuer.jwks_fetches == 1
        retired = issuer.keys[issuer.kid]
        issuer.rotate()
        second = await verifier.verify(issuer.token("forge-api", roles=["developer"]))
        assert second.permissions == frozenset({"read", "run"})
        assert issuer.jwks_fetches == 2
        # A token signed by the retired key is refused once the JWKS no longer lists it.
        claims = {"iss": issuer.url, "aud": "forge-api", "sub": "x", "exp": int(time.time()) + 60}
        old = jwt.encode(claims, retired, algorithm="RS256", headers={"kid": "retired"})
        with pytest.raises(AuthenticationFailed):
            await verifier.verify(old)
        await cache.aclose()

    issuer = LocalIssuer()
    try:
        asyncio.run(scenario(issuer))
    finally:
        issuer.close()


def test_jwks_is_cached_between_tokens() -> None:
    async def scenario(issuer: LocalIssuer) -> None:
        cache = JwksCache(issuer.url, min_refresh=60)
        for _ in range(5):
            await cache.key(issuer.kid)
        assert issuer.jwks_fetches == 1
        for unknown in ("unknown", "unknown-again"):
            with pytest.raises(AuthenticationFailed):
                await cache.key(unknown)
        assert issuer.jwks_fetches == 1  # unknown key ids do not hammer the issuer
        await cache.aclose()

    issuer = LocalIssuer()
    try:
        asyncio.run(scenario(issuer))
    finally:
        issuer.close()


def exchange(api: Api, token: str) -> httpx.Response:
    return api.client.post("/v1/auth/github/exchange", json={"token": token})


def test_github_exchange_gives_a_short_lived_token_with_the_repositorys_permissions(
    api: Api, github_issuer: LocalIssuer
) -> None:
    github_token = github_issuer.token(
        "catalyst-forge", repository="acme/app", ref="refs/heads/main", run_id="77"
    )
    response = exchange(api, github_token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["permissions"], body["expires_in"]) == (["read", "run"], 900)
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert api.client.get("/v1/auth/me", headers=bearer).json()["subject"] == "github:acme/app"
    # The exchanged token carries the allow-list's permissions only: no deploying.
    deployment = {"release_id": "00000000-0000-4000-8000-000000000000", "environment": "dev"}
    assert api.client.post("/v1/deployments", json=deployment, headers=bearer).status_code == 403


def test_an_exchanged_token_acts_on_its_own_repository_only(api: Api, github_issuer: LocalIssuer) -> None:
    github_token = github_issuer.token("catalyst-forge", repository="acme/app")
    bearer = {"Authorization": f"Bearer {exchange(api, github_token).json()['access_token']}"}
    run = {"commit_sha": "a" * 40, "branch": "main", "triggered_by": "ci", "trigger_type": "push"}
    other = api.client.post("/v1/runs", json={**run, "repository": "acme/other"}, headers=bearer)
    assert error_of(other) == (403, "authorization_failed")
    assert "acme/app only" in other.json()["error"]["message"]
    own = api.client.post("/v1/runs", json={**run, "repository": "acme/app"}, headers=bearer)
    assert own.status_code == 201, own.text
    # and it reads that repository only
    elsewhere = api.client.post("/v1/runs", json={**run, "commit_sha": "b" * 40, "repository": "acme/other"},
                                headers=api.headers("developer"))
    assert elsewhere.status_code == 201, elsewhere.text
    # another repository's run is answered as if it did not exist
    assert error_of(api.client.get(f"/v1/runs/{elsewhere.json()['id']}", headers=bearer)) == (
        404, "resource_not_found"
    )
    listed = api.client.get("/v1/runs", headers=bearer).json()["runs"]
    assert [r["repository"] for r in listed] == ["acme/app"]
    assert error_of(api.client.get("/v1/runs", params={"repository": "acme/other"}, headers=bearer))[0] == 403
    assert error_of(api.client.get("/v1/releases/acme/other/api", headers=bearer))[0] == 403


def test_github_exchange_refuses_a_repository_outside_the_allow_list(
    api: Api, github_issuer: LocalIssuer
) -> None:
    token = github_issuer.token("catalyst-forge", repository="evil/fork")
    assert error_of(exchange(api, token)) == (403, "authorization_failed")


def test_github_exchange_refuses_the_wrong_audience_and_bad_signatures(
    api: Api, github_issuer: LocalIssuer
) -> None:
    wrong_audience = github_issuer.token("someone-else", repository="acme/app")
    assert error_of(exchange(api, wrong_audience)) == FAILED
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = github_issuer.token("catalyst-forge", repository="acme/app", key=other_key)
    assert error_of(exchange(api, forged)) == FAILED
    expired = github_issuer.token("catalyst-forge", ttl=-300, repository="acme/app")
    assert error_of(exchange(api, expired)) == FAILED


@pytest.fixture
def keycloak() -> Iterator[LocalIssuer]:
    issuer = LocalIssuer()
    yield issuer
    issuer.close()


@pytest.fixture
def exchanging_api(
    database_url: str, tmp_path: Path, keycloak: LocalIssuer, github_issuer: LocalIssuer
) -> Iterator[Api]:
    client_id, secret = keycloak.exchange_client
    exchange = {
        "token_url": f"{keycloak.url}/token",
        "client_id": client_id,
        "client_secret": secret,
    }
    settings = make_settings(database_url, tmp_path, keycloak.url, github_issuer.url)
    github = settings.auth.github.model_copy(
        update={"keycloak": KeycloakExchangeSettings.model_validate(exchange)}
    )
    settings.auth = settings.auth.model_copy(update={"github": github})
    with TestClient(create_app(settings, load_plugins(settings.plugins))) as client:
        yield Api(client, settings, platform_key(settings))


def test_github_exchange_through_keycloak_returns_keycloaks_token(
    exchanging_api: Api, keycloak: LocalIssuer, github_issuer: LocalIssuer
) -> None:
    github_token = github_issuer.token("catalyst-forge", repository="acme/app")
    response = exchange(exchanging_api, github_token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["permissions"], body["expires_in"]) == (["read", "run"], 300)
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["iss"] == keycloak.url
    sent = keycloak.exchanges[-1]
    assert sent["subject_token"] == github_token
    assert (sent["subject_issuer"], sent["subject_token_type"]) == ("github", JWT_TOKEN_TYPE)
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert exchanging_api.client.get("/v1/runs", headers=bearer).status_code == 200


def test_github_exchange_through_keycloak_checks_the_allow_list_first(
    exchanging_api: Api, keycloak: LocalIssuer, github_issuer: LocalIssuer
) -> None:
    token = github_issuer.token("catalyst-forge", repository="evil/fork")
    assert error_of(exchange(exchanging_api, token)) == (403, "authorization_failed")
    assert keycloak.exchanges == []


def test_a_refused_keycloak_exchange_is_401(
    exchanging_api: Api, keycloak: LocalIssuer, github_issuer: LocalIssuer
) -> None:
    keycloak.exchange_client = ("forge-exchange", "rotated-secret")
    github_token = github_issuer.token("catalyst-forge", repository="acme/app")
    response = exchange(exchanging_api, github_token)
    assert error_of(response) == FAILED
    assert "unauthorized_client" in response.json()["error"]["message"]


def test_keycloak_exchange_needs_the_oidc_issuer() -> None:
    exchange = {"token_url": "http://127.0.0.1:9/token", "client_id": "c", "client_secret": "s"}
    with pytest.raises(ValueError, match="FORGE_AUTH__OIDC__ISSUER"):
        AuthSettings.model_validate({"github": {"keycloak": exchange}})


def test_the_allow_list_matches_a_repository_whatever_its_case(
    api: Api, github_issuer: LocalIssuer
) -> None:
    # GitHub ignores case in names: "ACME/App" is the allow-list's "acme/app", and its token's
    # scope reaches that repository's entities under either spelling.
    body = exchange(api, github_issuer.token("catalyst-forge", repository="ACME/App")).json()
    assert (body["repository"], body["permissions"]) == ("ACME/App", ["read", "run"])
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    me = api.client.get("/v1/auth/me", headers=bearer).json()
    assert me["repository"] == "ACME/App"
    run = {"repository": "acme/app", "commit_sha": new_sha(), "triggered_by": "ci"}
    created = api.client.post("/v1/runs", json=run, headers=bearer)
    assert created.status_code == 201, created.text
    assert api.client.get(f"/v1/runs/{created.json()['id']}", headers=bearer).status_code == 200


def test_a_verified_token_is_remembered_until_its_expiry_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from forge_core.adapters.auth import tokens

    key = load_or_create(Path(tempfile.mkdtemp()) / "k.pem", issuer="catalyst-forge", audience="forge-api")
    verifier = TokenVerifier(AuthSettings(), key, None)
    decoded: list[str] = []
    real_decode = tokens.decode

    def counting(token: str, *args: Any) -> dict[str, Any]:
        decoded.append(token)
        return real_decode(token, *args)

    monkeypatch.setattr(tokens, "decode", counting)
    token = key.mint("alice", roles=["viewer"], ttl_seconds=60)
    first = asyncio.run(verifier.verify(token))
    again = asyncio.run(verifier.verify(token))
    assert again == first and first.permissions == frozenset({"read"}) and len(decoded) == 1
    # A token that differs from a remembered one in any byte is checked in full (and refused).
    with pytest.raises(AuthenticationFailed):
        asyncio.run(verifier.verify(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")))
    assert len(decoded) == 2
    # Past the token's expiry the remembered answer is dropped and the token checked again.
    expiry = jwt.decode(token, options={"verify_signature": False})["exp"]
    monkeypatch.setattr(tokens.time, "time", lambda: expiry + 1.0)
    asyncio.run(verifier.verify(token))
    assert len(decoded) == 3
