"""The console's security, over HTTP: sessions and their expiry, cookies, the Content Security
Policy, login links, the OIDC login with PKCE, repository scope, open redirects; and that the
wheel ships the templates and static files."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from starlette.requests import Request

from forge_core.api.ui.render import CSP
from forge_core.api.ui.session import LOGIN_PURPOSE, SESSION_COOKIE, secure_cookies

from .conftest import Console, serving
from .oidc_standin import OidcStandIn

ROOT = Path(__file__).resolve().parents[2]


def client(console: Console) -> httpx.Client:
    return httpx.Client(base_url=console.url, follow_redirects=False, timeout=30)


def logged_in(console: Console, subject: str = "alice", permissions: tuple[str, ...] = ("read",),
              **extra: object) -> httpx.Client:
    http = client(console)
    token = console.token(subject, permissions=permissions, purpose=LOGIN_PURPOSE, **extra)
    assert http.get("/ui/session", params={"token": token}).status_code == 303
    return http


def test_a_page_without_a_session_goes_to_the_login_and_a_fragment_is_401(console: Console) -> None:
    http = client(console)
    page = http.get("/ui/runs?branch=main")
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/login?next=%2Fui%2Fruns%3Fbranch%3Dmain"
    assert "forge ui" in http.get("/ui/login").text  # no issuer: how to open a local session
    fragment = http.get("/ui/runs/table", headers={"HX-Request": "true"})
    assert fragment.status_code == 401 and "not logged in" in fragment.text


def test_the_session_cookie_is_httponly_samesite_and_secure_except_on_loopback_http(console: Console) -> None:
    http = client(console)
    token = console.token("alice", permissions=("read",), purpose=LOGIN_PURPOSE)
    answer = http.get("/ui/session", params={"token": token, "next": "/ui/plugins"})
    assert answer.headers["location"] == "/ui/plugins"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/ui" in cookie and f"Max-Age={console.settings.api.ui.session_ttl_seconds}" in cookie
    assert "Secure" not in cookie  # plain http on 127.0.0.1: a browser would never send a Secure one back

    def request(url: str) -> Request:
        parsed = urlparse(url)
        return Request({"type": "http", "scheme": parsed.scheme, "server": (parsed.hostname, parsed.port or 80),
                        "path": parsed.path, "headers": [(b"host", parsed.netloc.encode())], "query_string": b""})

    assert secure_cookies(request("https://forge.example.com/ui/runs"))
    assert secure_cookies(request("http://forge.example.com/ui/runs"))  # never sent back over http: right
    assert not secure_cookies(request("http://127.0.0.1:8080/ui/runs"))
    assert not secure_cookies(request("http://localhost:8080/ui/runs"))


def test_every_page_carries_the_content_security_policy(console: Console) -> None:
    http = logged_in(console)
    for path in ("/ui/runs", "/ui/plugins", "/ui/environments", "/ui/login", "/ui/runs/not-a-uuid"):
        answer = http.get(path)
        assert answer.headers["content-security-policy"] == CSP, path
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP and "frame-ancestors 'none'" in CSP
    page = http.get("/ui/runs").text
    assert "<script>" not in page and " on" not in page.split("<body>")[1].split("=")[0]  # no inline script
    assert 'name="htmx-config"' in page


def test_an_expired_session_ends(console: Console) -> None:
    http = client(console)
    expired = console.key.mint("alice", permissions=["read"], ttl_seconds=-30)
    http.cookies.set(SESSION_COOKIE, expired)
    answer = http.get("/ui/runs")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login")


def test_a_login_link_must_be_one_and_cannot_redirect_away(console: Console) -> None:
    http = client(console)
    api_token = console.token("alice", permissions=("read",))  # an ordinary API token: never in a URL
    refused = http.get("/ui/session", params={"token": api_token})
    assert refused.status_code == 401 and "not a console login link" in refused.text
    assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")
    link = console.token("alice", permissions=("read",), purpose=LOGIN_PURPOSE)
    for target in ("https://evil.example/", "//evil.example/ui/", "/ui/\\evil", "/v1/runs"):
        answer = http.get("/ui/session", params={"token": link, "next": target})
        assert answer.headers["location"] == "/ui/runs", target


def test_a_session_of_one_repository_sees_nothing_of_another(console: Console) -> None:
    mine = console.run_with_plan(repository="acme/app")
    theirs = console.run_with_plan(repository="acme/other")
    http = logged_in(console, "ci", ("read",), repository="acme/app")
    assert http.get(f"/ui/runs/{mine['id']}").status_code == 200
    hidden = http.get(f"/ui/runs/{theirs['id']}")
    assert hidden.status_code == 404 and f"pipeline run {theirs['id']} does not exist" in hidden.text
    step = theirs["task"]["steps"][0]["id"]
    assert http.get(f"/ui/runs/{mine['id']}/steps/{step}/log").status_code == 404
    listing = http.get("/ui/runs").text
    assert mine["id"] in listing and theirs["id"] not in listing
    assert http.get("/ui/runs", params={"repository": "acme/other"}).status_code == 403
    assert http.get("/ui/releases/acme/other").status_code == 403
    assert http.get("/ui/environments", params={"repository": "acme/other"}).status_code == 403


def test_a_reader_is_refused_an_action_with_a_valid_csrf_token(console: Console) -> None:
    http = logged_in(console, "dave", ("read",))
    page = http.get("/ui/runs").text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    form = {"csrf": csrf, "repository": "acme/app", "project": "web", "environment": "dev", "confirm": "yes"}
    refused = http.post("/ui/environments/promote", data=form)
    assert refused.status_code == 403 and "dave lacks the &#39;deploy&#39; permission" in refused.text
    other = logged_in(console, "erin", ("read", "deploy"))
    assert other.post("/ui/environments/promote", data=form).status_code == 403  # dave's token is not erin's


@pytest.fixture(scope="module")
def oidc_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Console, OidcStandIn]]:
    provider = OidcStandIn(client_id="forge-api")
    try:
        with serving(tmp_path_factory.mktemp("oidc-console"), auth={
            "oidc": {"issuer": provider.url, "audience": "forge-api", "client_id": "forge-api",
                     "jwks_min_refresh_seconds": 0},
        }) as served:
            yield served, provider
    finally:
        provider.close()


def test_the_oidc_login_is_the_authorization_code_flow_with_pkce(oidc_console: tuple[Console, OidcStandIn]) -> None:
    console, provider = oidc_console
    http = client(console)
    started = http.get("/ui/login", params={"next": "/ui/plugins"})
    assert started.status_code == 303
    location = urlparse(started.headers["location"])
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{provider.url}/authorize"
    assert query["response_type"] == "code" and query["code_challenge_method"] == "S256"
    assert query["redirect_uri"] == f"{console.url}/ui/login/callback" and len(query["code_challenge"]) == 43
    at_issuer = httpx.get(started.headers["location"], follow_redirects=False)
    callback = at_issuer.headers["location"]
    done = http.get(callback)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/ui/plugins"
    page = http.get("/ui/plugins")
    assert page.status_code == 200 and "carol" in page.text  # the issuer's user, as the API sees her


def test_an_oidc_login_with_another_verifier_or_state_is_refused(oidc_console: tuple[Console, OidcStandIn]) -> None:
    console, _ = oidc_console
    http = client(console)
    started = http.get("/ui/login")
    waiting = json.loads(base64.urlsafe_b64decode(http.cookies["forge_login"]))
    callback = httpx.get(started.headers["location"], follow_redirects=False).headers["location"]
    forged = base64.urlsafe_b64encode(json.dumps({**waiting, "verifier": "x" * 64}).encode()).decode()
    http.cookies.set("forge_login", forged, path="/ui/login")
    refused = http.get(callback)
    assert refused.status_code == 401 and "refused the login: invalid_grant" in refused.text
    assert SESSION_COOKIE not in http.cookies
    other = client(console)
    other.get("/ui/login")
    code = parse_qs(urlparse(callback).query)["code"][0]
    mismatch = other.get("/ui/login/callback", params={"code": code, "state": "not-the-state"})
    assert mismatch.status_code == 401 and "state does not match" in mismatch.text


def test_the_wheel_ships_the_templates_and_static_files(tmp_path: Path) -> None:
    built = subprocess.run(
        [str(Path(sys.executable).parent / "uv"), "build", "--quiet", "--wheel", "--no-build-isolation",
         "--python", sys.executable, "--out-dir", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, check=False,
    )
    assert built.returncode == 0, built.stderr
    names = set(zipfile.ZipFile(next(tmp_path.glob("catalyst_forge_core-*.whl"))).namelist())
    for name in ("templates/base.html", "templates/run_tree.html", "templates/environments.html",
                 "static/htmx.min.js", "static/htmx.LICENSE", "static/htmx-ext-sse.min.js",
                 "static/htmx-ext-sse.LICENSE", "static/console.css"):
        assert f"forge_core/api/ui/{name}" in names, name


def test_the_page_names_the_progress_the_store_reports_so_its_stream_starts_quiet(console: Console) -> None:
    """The run page's ``since`` is computed from the run it rendered; the stream compares it with
    the store's progress: equal when nothing changed, so nothing is sent again."""
    import asyncio

    from forge_core.adapters.db.engine import create_engine
    from forge_core.adapters.db.store import SqlStore
    from forge_core.api.ui.live import digest, progress_of

    run = console.run_with_plan(steps=("unit", "lint"))
    key = console.write_log(run, run["task"]["steps"][0], ["ok"])
    console.call("PUT", f"/v1/steps/{run['task']['steps'][0]['id']}/status",
                 json={"status": "failed", "exit_code": 1, "logs_s3_key": key})
    console.call("PUT", f"/v1/tasks/{run['task']['id']}/status", json={"status": "failed", "error": "x"})

    async def both() -> tuple[str, str]:
        engine = create_engine(console.settings.database)
        try:
            store = SqlStore(engine)
            whole = await store.get_run(uuid.UUID(run["id"]))
            return digest(progress_of(whole)), digest(await store.run_progress(whole.id))
        finally:
            await engine.dispose()

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as thread:  # a browser test may have left its event loop in this one
        from_page, from_store = thread.submit(asyncio.run, both()).result()
    assert from_page == from_store


def test_the_plugins_page_shows_what_loaded_from_where_and_what_failed(
    tmp_path: Path, make_distribution: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_distribution("acme-forge-broken", "0.3.1", plugin_id="acme_broken",
                             source="raise RuntimeError('boom <at> import')")
    monkeypatch.syspath_prepend(str(site))
    with serving(tmp_path / "state", plugins={"block": ["forge_s3"]}) as served:
        page = logged_in(served).get("/ui/plugins").text
    rows = {row.split("<td>")[1].split("<")[0].strip(): row for row in page.split("<tr>")[2:]}
    assert "catalyst-forge-docker" in rows["forge_docker"] and ">loaded<" in rows["forge_docker"]
    assert ">disabled<" in rows["forge_s3"]
    broken = rows["acme_broken"]
    assert "acme-forge-broken 0.3.1" in broken and ">failed<" in broken
    assert "RuntimeError: boom &lt;at&gt; import" in broken


def test_logging_out_needs_the_csrf_token_and_ends_the_session(console: Console) -> None:
    http = logged_in(console)
    csrf = http.get("/ui/runs").text.split('name="csrf" value="')[1].split('"')[0]
    assert http.post("/ui/logout", data={"next": "/"}).status_code == 403  # a cross-site form cannot log you out
    out = http.post("/ui/logout", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert f'{SESSION_COOKIE}=""' in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
