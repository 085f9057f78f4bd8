"""Pure ASGI middleware: the body size limit, the JSON nesting limit, request ids with one log
event per request, and latency metrics by route."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forge_core.api.errors import error_response
from forge_core.domain.json_depth import nests_deeper_than, too_deep_message

log = structlog.get_logger("forge.api")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class BodyLimit:
    """Refuse bodies over ``limit`` bytes: by Content-Length at once, or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                response = error_response(
                    413, "invalid_request", f"request body over the limit of {self.limit} bytes",
                    {"limit_bytes": self.limit},
                )
                await response(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, f"request body over the limit of {self.limit} bytes")
            return message

        await self.app(scope, limited, send)


class JsonDepthLimit:
    """Refuse JSON bodies nested more than ``limit`` levels deep with a 400, before anything
    parses them (a parser recurses per level: a deep enough body is a RecursionError, a 500).

    Every body that says it is JSON (``application/json``, ``*+json``) or says nothing of its type
    is read whole (the body size limit, outside, bounds it), measured, then handed on unchanged."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope) or not _says_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":  # the client went away
                    await self.app(scope, _replay([message], receive), send)
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except HTTPException as exc:  # the body size limit, hit while streaming
            await error_response(exc.status_code, "invalid_request", str(exc.detail))(scope, receive, send)
            return
        body = b"".join(chunks)
        if nests_deeper_than(body, self.limit):
            response = error_response(
                400, "invalid_request", too_deep_message(self.limit),
                {"where": "body", "limit_depth": self.limit},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)


def _has_body(scope: Scope) -> bool:
    headers = dict(scope["headers"])
    return b"transfer-encoding" in headers or headers.get(b"content-length", b"0") != b"0"


def _says_json(scope: Scope) -> bool:
    kind = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"content-type"), "")
    media = kind.split(";", 1)[0].strip().lower()
    return media in ("", "application/json") or media.endswith("+json")


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``messages`` first, then whatever ``receive`` gives (a disconnect)."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


class Observe:
    """Binds a request id (X-Request-ID, or a new one) to the logs, echoes it, logs and times."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.latency = Histogram(
            "forge_http_request_duration_seconds",
            "Latency of API requests",
            ["method", "route", "status"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                header = (b"x-request-id", request_id.encode())
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.latency.labels(scope["method"], template, str(status)).observe(elapsed)
            log.info(
                "request",
                method=scope["method"],
                route=template,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
