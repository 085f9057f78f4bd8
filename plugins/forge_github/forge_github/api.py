"""A small client of GitHub's REST API for the publisher: retries, rate limits and clear errors.

Every request carries ``Authorization: Bearer <token>``, ``Accept: application/vnd.github+json``
and ``X-GitHub-Api-Version: 2022-11-28``. 5xx answers, 429s and connection errors are retried
with exponential backoff; a ``Retry-After`` header, or an exhausted rate limit
(``x-ratelimit-remaining: 0`` with ``x-ratelimit-reset``, on a 403 or a 429), sets the wait
instead, up to ``max_wait`` seconds. The token never appears in a log line or an error.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from forge_core.sdk import ExecutionContext, ForgeError, WorkWithdrawn, mask_secrets

API_VERSION = "2022-11-28"
MAX_BACKOFF = 8.0
T = TypeVar("T")


class GithubPublishError(ForgeError):
    """A release or an upload that could not be made; the message names the target and the call."""

    code = "github_publish_failed"


class GithubCredentialsRefused(GithubPublishError):
    code = "github_credentials_refused"


class GithubUnavailable(GithubPublishError):
    code = "github_unavailable"


class _Retry(Exception):
    """One attempt failed in a way worth another: what happened, and how long to wait."""

    def __init__(self, problem: str, delay: float | None = None) -> None:
        super().__init__(problem)
        self.problem, self.delay = problem, delay


@dataclass
class GithubApi:
    """Requests to one GitHub API on behalf of one publish target (``where`` names it)."""

    api_url: str
    token: str
    ctx: ExecutionContext
    where: str
    attempts: int = 5
    max_wait: float = 60.0
    timeout: float = 60.0

    def __post_init__(self) -> None:
        self.api_url = self.api_url.rstrip("/")
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "catalyst-forge-github",
        }
        self.client = httpx.Client(headers=headers, timeout=httpx.Timeout(self.timeout, connect=10.0))

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> GithubApi:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        return f"{self.api_url}{path}"

    def call(
        self,
        method: str,
        url: str,
        *,
        what: str,
        expected: tuple[int, ...],
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        body: Callable[[], Iterator[bytes]] | None = None,
    ) -> httpx.Response:
        """One request, retried while it fails transiently; an answer outside ``expected`` (and not
        transient) raises an error saying what GitHub answered to ``what``. ``body`` makes a fresh
        stream of the request body for each attempt."""

        def once() -> httpx.Response:
            response = self.client.request(
                method, url, json=json, params=params, headers=headers, content=body() if body else None
            )
            self._check(response, what, expected)
            return response

        return self.retrying(what, once)

    def download_sha256(self, url: str, *, what: str) -> str:
        """The SHA-256 (hex) of an asset's content, streamed from ``url`` (its API ``url``)."""

        def once() -> str:
            digest = hashlib.sha256()
            request = self.client.build_request("GET", url, headers={"Accept": "application/octet-stream"})
            response = self.client.send(request, stream=True, follow_redirects=True)
            try:
                self._check(response, what, (200,))
                for chunk in response.iter_bytes(2**20):
                    self._check_stop(what)
                    digest.update(chunk)
            finally:
                response.close()
            return digest.hexdigest()

        return self.retrying(what, once)

    def retrying(self, what: str, once: Callable[[], T]) -> T:
        problem = ""
        for attempt in range(1, self.attempts + 1):
            self._check_stop(what)
            try:
                return once()
            except httpx.TransportError as exc:
                problem, delay = f"{type(exc).__name__} reaching {self.api_url}", None
            except _Retry as retry:
                problem, delay = retry.problem, retry.delay
            if attempt == self.attempts:
                break
            wait = _backoff(attempt) if delay is None else delay
            self.ctx.log(f"github: {what}: {problem}; retrying in {wait:g}s (attempt {attempt + 1} of {self.attempts})")
            if self.ctx.stop.wait(wait):
                raise WorkWithdrawn(f"the github publish was withdrawn during {what}", where=self.where)
        raise GithubUnavailable(f"{what} failed after {self.attempts} attempts: {problem}", where=self.where)

    def _check(self, response: httpx.Response, what: str, expected: tuple[int, ...]) -> None:
        status = response.status_code
        if status in expected:
            return
        if status == 429 or (status == 403 and _rate_limited(response)):
            response.read()
            raise _Retry(f"GitHub's rate limit answered {status}", self._rate_limit_wait(response, what))
        if status >= 500:
            response.read()
            raise _Retry(f"GitHub answered {status}", _retry_after(response))
        response.read()
        message = self.message(response)
        if status == 401:
            raise GithubCredentialsRefused(
                f"GitHub refused the token (401 {message}) during {what}; the target's credentials must hold a "
                "token with contents: write on the repository",
                where=self.where,
            )
        if status == 403:
            raise GithubCredentialsRefused(
                f"the token may not do this (403 {message}) during {what}; it needs contents: write on the repository",
                where=self.where,
            )
        raise GithubPublishError(f"GitHub answered {status} to {what}: {message}", where=self.where)

    def _rate_limit_wait(self, response: httpx.Response, what: str) -> float | None:
        wait = _retry_after(response)
        reset = response.headers.get("x-ratelimit-reset")
        if wait is None and response.headers.get("x-ratelimit-remaining") == "0" and reset and reset.isdigit():
            wait = max(0.0, int(reset) - time.time()) + 1  # the reset second itself is still limited
        if wait is not None and wait > self.max_wait:
            when = datetime.fromtimestamp(time.time() + wait, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            raise GithubUnavailable(
                f"GitHub's rate limit stops {what} until {when}, longer than the target's maxWait "
                f"({self.max_wait:g}s)",
                where=self.where,
            )
        return wait

    def message(self, response: httpx.Response) -> str:
        """GitHub's ``message`` and error codes, short, with the token masked (never echoed, but sure)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            text = str(body.get("message") or "")
            codes = [
                ":".join(str(e.get(k)) for k in ("field", "code") if e.get(k))
                for e in body.get("errors") or []
                if isinstance(e, dict)
            ]
            if codes:
                text += f" ({', '.join(codes)})"
        else:
            text = response.text
        return mask_secrets(text[:300] or response.reason_phrase, [self.token])

    def _check_stop(self, what: str) -> None:
        if self.ctx.stop.is_set():
            raise WorkWithdrawn(f"the github publish was withdrawn during {what}", where=self.where)


def error_codes(response: httpx.Response) -> set[str]:
    """The ``errors[].code`` values of a 422 Validation Failed answer (``already_exists``, …)."""
    try:
        body = response.json()
    except ValueError:
        return set()
    errors = body.get("errors") if isinstance(body, dict) else None
    return {str(e.get("code")) for e in errors or [] if isinstance(e, dict)}


def _rate_limited(response: httpx.Response) -> bool:
    return response.headers.get("x-ratelimit-remaining") == "0" or "retry-after" in response.headers


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # absent, or an HTTP date: the backoff decides


def _backoff(attempt: int) -> float:
    return min(MAX_BACKOFF, 0.5 * 2.0 ** (attempt - 1))
