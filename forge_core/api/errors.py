"""Every error leaves as ``{"error": {"code", "message", "details"}}`` with the spec's codes."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from forge_core.domain.errors import ForgeError

log = structlog.get_logger("forge.api")

STATUS_OF_CODE = {
    "invalid_request": 400,
    "authentication_failed": 401,
    "authorization_failed": 403,
    "resource_not_found": 404,
    "resource_conflict": 409,
    "internal_error": 500,
}
CODE_OF_STATUS = {
    400: "invalid_request",
    401: "authentication_failed",
    403: "authorization_failed",
    404: "resource_not_found",
    405: "invalid_request",
    409: "resource_conflict",
    413: "invalid_request",
    415: "invalid_request",
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any]


class ErrorBody(BaseModel):
    error: ErrorDetail


def _described(status: int, text: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": text}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _described(400, "Invalid request (a bad value, an unknown field, malformed JSON)"),
    401: _described(401, "Missing or invalid credentials"),
    403: _described(403, "The credentials lack the permission"),
    404: _described(404, "Not found"),
    409: _described(409, "Conflicts with existing state"),
    413: _described(413, "Body over the size limit"),
    500: _described(500, "Platform error"),
}


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ForgeError)
    async def forge_error(_request: Request, exc: ForgeError) -> JSONResponse:
        status = STATUS_OF_CODE.get(exc.code, 400)
        details = dict(exc.details)
        if exc.where:
            details.setdefault("where", exc.where)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return error_response(status, exc.code, exc.message, details, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Only where and why: the offending input itself may be large or secret.
        problems = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ())),
                "message": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        message = f"invalid request: {summary}"
        return error_response(400, "invalid_request", message, {"errors": problems})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        fallback = "invalid_request" if exc.status_code < 500 else "internal_error"
        code = CODE_OF_STATUS.get(exc.status_code, fallback)
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # Starlette names only the first route's methods; list every route of this path.
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return error_response(exc.status_code, code, str(exc.detail), headers=headers or None)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        message = "internal error; the request id names it in the logs"
        return error_response(500, "internal_error", message)


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.routes:
        if not isinstance(route, Route) or not route.methods:
            continue
        if route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods - {"HEAD"}
    return sorted(methods)
