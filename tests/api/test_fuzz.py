"""Schemathesis over the OpenAPI schema: no server errors, responses as documented.

Runs against SQLite and PostgreSQL (the ``database_url`` parameter) with an admin token, so the
operations get past authentication and reach the database. The schema comes from an application
that is never started; each call goes to the application of the database under test.

``positive_data_acceptance`` is left out: some valid-looking requests break business rules the
schema cannot express (an environment the settings do not know, two artifacts with one name) and
are rightly refused with a documented 400/404/409.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from forge_core.adapters.auth.keys import platform_key
from forge_core.api.app import create_app
from forge_core.plugin.host import load_plugins

from .conftest import LocalIssuer, make_settings

UNUSED = "http://127.0.0.1:9"
KEY = Path(tempfile.mkdtemp(prefix="forge-fuzz-")) / "signing-key.pem"


def _app(database_url: str, state: Path, oidc: str, github: str) -> Any:
    app_settings = make_settings(database_url, state, oidc, github, signing_key=KEY)
    return create_app(app_settings, load_plugins(app_settings.plugins)), app_settings


_schema_app, _schema_settings = _app("sqlite+aiosqlite:///unused.db", KEY.parent, UNUSED, UNUSED)
TOKEN = platform_key(_schema_settings).mint("fuzzer", roles=["admin"], ttl_seconds=3600)
schema = schemathesis.openapi.from_dict(_schema_app.openapi())
schema.app = _schema_app


@schema.auth()
class AdminToken:
    """An admin token signed with the key every application of this module shares."""

    def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
        return TOKEN

    def set(self, case: schemathesis.Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(scope="session")
def target(
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    oidc_issuer: str,
    github_issuer: LocalIssuer,
) -> Any:
    app, _ = _app(database_url, tmp_path_factory.mktemp("fuzz"), oidc_issuer, github_issuer.url)
    return app


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_schema(case: schemathesis.Case, target: Any) -> None:
    case.call_and_validate(app=target, excluded_checks=[positive_data_acceptance])
