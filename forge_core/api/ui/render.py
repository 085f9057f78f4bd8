"""Rendering the console's pages: one Jinja2 environment (autoescape always on: branch names, step
output and CUE values are user input), the security headers every page carries, and errors as
pages instead of JSON."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.responses import HTMLResponse, RedirectResponse, Response

from forge_core.api.errors import STATUS_OF_CODE
from forge_core.api.ui.session import CSRF_FIELD, LoginRequired
from forge_core.domain.errors import ForgeError

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _duration(started: datetime | None, completed: datetime | None) -> str:
    if started is None or completed is None:
        return ""
    seconds = (completed - started).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


templates = Environment(
    loader=PackageLoader("forge_core.api.ui", "templates"),
    autoescape=True,
    undefined=StrictUndefined,  # a misspelt name is an error in the tests, not an empty cell
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["duration"] = _duration
templates.filters["when"] = _when
templates.filters["segment"] = lambda value: quote(str(value), safe="")
templates.globals["csrf_field"] = CSRF_FIELD


def render(name: str, **context: Any) -> str:
    return templates.get_template(name).render(**context)


def page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(name, **context), status_code=status_code, headers=HEADERS)


def error_page(request: Request, status_code: int, message: str, where: str | None = None) -> HTMLResponse:
    fragment = request.headers.get("HX-Request") == "true"
    name = "error_fragment.html" if fragment else "error.html"
    return page(name, status_code, title=f"{status_code}", message=message, where=where, session=None)


class ConsoleRoute(APIRoute):
    """A console route: errors become pages with the API's status codes (a missing or expired
    session redirects to the login, or is a 401 for fragments and streams); every answer carries
    the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired as missing:
                if request.method == "GET" and request.headers.get("HX-Request") != "true" \
                        and "text/event-stream" not in request.headers.get("accept", ""):
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    response = RedirectResponse(f"/ui/login?next={quote(target, safe='')}", status_code=303)
                else:
                    response = error_page(request, 401, missing.reason)
            except RequestValidationError as invalid:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in invalid.errors()[:5]
                )
                response = error_page(request, 400, f"invalid request: {problems}")
            except ForgeError as error:
                status = 503 if error.code == "service_unavailable" else STATUS_OF_CODE.get(error.code, 400)
                response = error_page(request, status, error.message, error.where)
            for name, value in HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return handle
