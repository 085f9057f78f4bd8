"""Fixtures of the Platform API tests. Every test that uses ``api`` runs against SQLite and
against the real PostgreSQL (a database per xdist worker, created and dropped here)."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from fastapi.testclient import TestClient

from forge_core.adapters.auth.keys import SigningKey, platform_key
from forge_core.api.app import create_app
from forge_core.plugin.host import load_plugins
from forge_core.settings import Settings, load_settings

from .issuer import LocalIssuer

POSTGRES = os.environ.get("FORGE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
WEBHOOK_SECRET = "webhook-s3cret"
OIDC_CLIENT = "forge-api"


def _admin_dsn() -> str:
    return POSTGRES.replace("postgresql+asyncpg://", "postgresql://")


async def _postgres(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_admin_dsn())
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'forge.db'}"
        return
    worker = re.sub(r"\W", "", os.environ.get("PYTEST_XDIST_WORKER", "main"))
    name = f"forge_api_{worker}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_postgres(f'CREATE DATABASE "{name}"'))
    base = _admin_dsn().rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def oidc_issuer() -> Iterator[str]:
    """A real OpenID provider (oidc-provider-mock) on a loopback port."""
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread(port=0) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="session")
def github_issuer() -> Iterator[LocalIssuer]:
    issuer = LocalIssuer()
    yield issuer
    issuer.close()


def make_settings(
    database_url: str,
    state_dir: Path,
    oidc_issuer: str,
    github_issuer: str,
    signing_key: Path | None = None,
    **api: Any,
) -> Settings:
    return load_settings(
        database={"url": database_url, "state_dir": str(state_dir)},
        auth={
            "oidc": {"issuer": oidc_issuer, "audience": OIDC_CLIENT, "client_id": OIDC_CLIENT,
                     "jwks_min_refresh_seconds": 0},
            "github": {"issuer": github_issuer, "audience": "catalyst-forge",
                       "allow": {"acme/app": ["run", "read"], "acme/deployer": ["deploy", "read"]}},
            "signing_key": str(signing_key) if signing_key else None,
        },
        api={"webhook_secret": WEBHOOK_SECRET, **api},
    )


@dataclass
class Api:
    """A running API (TestClient) and tokens for it."""

    client: TestClient
    settings: Settings
    key: SigningKey

    def token(self, *roles: str, subject: str = "alice", ttl: int = 3600, **extra: Any) -> str:
        return self.key.mint(subject, roles=roles, ttl_seconds=ttl, extra=extra or None)

    def headers(self, *roles: str, subject: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(*roles, subject=subject)}"}

    def as_admin(self) -> dict[str, str]:
        return self.headers("admin")

    def call(self, method: str, path: str, *roles: str, **kwargs: Any) -> httpx.Response:
        """A request with a token of ``roles`` (admin if none are given)."""
        headers = {**self.headers(*(roles or ("admin",))), **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, *roles: str, **kwargs: Any) -> httpx.Response:
        return self.call("GET", path, *roles, **kwargs)

    def post(self, path: str, *roles: str, **kwargs: Any) -> httpx.Response:
        return self.call("POST", path, *roles, **kwargs)

    def put(self, path: str, *roles: str, **kwargs: Any) -> httpx.Response:
        return self.call("PUT", path, *roles, **kwargs)

    def delete(self, path: str, *roles: str, **kwargs: Any) -> httpx.Response:
        return self.call("DELETE", path, *roles, **kwargs)


@pytest.fixture(scope="session")
def api(
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    oidc_issuer: str,
    github_issuer: LocalIssuer,
) -> Iterator[Api]:
    state = tmp_path_factory.mktemp("state")
    settings = make_settings(database_url, state, oidc_issuer, github_issuer.url)
    app = create_app(settings, load_plugins(settings.plugins))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, settings, platform_key(settings))


def unique_repo() -> str:
    return f"acme/r{uuid.uuid4().hex[:10]}"


def new_sha() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex[:8]


def create_run(
    api: Api, repository: str | None = None, sha: str | None = None, **fields: Any
) -> dict[str, Any]:
    body = {
        "repository": repository or unique_repo(),
        "commit_sha": sha or new_sha(),
        "triggered_by": "alice",
        "branch": "main",
        "trigger_type": "push",
        **fields,
    }
    response = api.post("/v1/runs", json=body)
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


def create_release(
    api: Api, repository: str, project: str = "svc", sha: str | None = None, **fields: Any
) -> dict[str, Any]:
    body = {"repository": repository, "project": project, "commit_sha": sha or new_sha(), **fields}
    response = api.post("/v1/releases", json=body)
    assert response.status_code == 201, response.text
    release: dict[str, Any] = response.json()
    return release


def oidc_token(issuer: str, subject: str, claims: dict[str, Any]) -> str:
    """An ID token from the OIDC provider, through its authorization code flow."""
    with httpx.Client(base_url=issuer, timeout=10) as http:
        http.put(f"/users/{subject}", json=claims).raise_for_status()
        redirect = "http://127.0.0.1/callback"
        answer = http.post(
            "/oauth2/authorize",
            params={
                "client_id": OIDC_CLIENT,
                "redirect_uri": redirect,
                "response_type": "code",
                "scope": "openid",
                "state": "x",
            },
            data={"sub": subject},
        )
        code = parse_qs(urlparse(answer.headers["location"]).query)["code"][0]
        tokens = http.post(
            "/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect,
                "client_id": OIDC_CLIENT,
                "client_secret": "secret",
            },
        )
        tokens.raise_for_status()
        token: str = tokens.json()["id_token"]
        return token
