"""Reading what a PyPI-compatible index already holds for a project, through its simple API
(PEP 691 JSON when offered, else PEP 503 HTML): file name -> SHA-256 (None when it gives none)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from html.parser import HTMLParser

from forge_core.sdk import ForgeError, WorkWithdrawn

ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class IndexUnavailable(ForgeError):
    """The index could not be reached, or kept failing, after every attempt."""

    code = "index_unavailable"


class CredentialsRefused(ForgeError):
    """The index refused the target's credentials (or wants some)."""

    code = "credentials_refused"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def _from_json(body: bytes) -> dict[str, str | None]:
    files = json.loads(body).get("files", [])
    return {f["filename"]: f.get("hashes", {}).get("sha256") for f in files}


def _from_html(body: bytes) -> dict[str, str | None]:
    parser = _Links()
    parser.feed(body.decode("utf-8", "replace"))
    found: dict[str, str | None] = {}
    for href in parser.hrefs:
        url, _, fragment = href.partition("#")
        filename = urllib.parse.unquote(url.rstrip("/").rsplit("/", 1)[-1])
        algorithm, _, value = fragment.partition("=")
        found[filename] = value.lower() if algorithm == "sha256" and value else None
    return found


def project_files(
    page: str,
    *,
    username: str | None,
    password: str | None,
    attempts: int,
    where: str,
    log: Callable[[str], None],
    wait: Callable[[float], bool],
) -> dict[str, str | None]:
    """The files the index lists at ``page`` (a project's simple page); empty when it has none.

    Transient failures (no connection, 5xx, 429) are retried ``attempts`` times with backoff;
    ``wait(seconds)`` sleeps and returns True when the work was withdrawn meanwhile (then
    WorkWithdrawn is raised).
    """
    request = urllib.request.Request(page, headers={"Accept": ACCEPT})
    if username is not None and password is not None:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    problem = ""
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = response.read()
                kind = response.headers.get_content_type()
            return _from_json(body) if kind.endswith("+json") else _from_html(body)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return {}
            if error.code in (401, 403):
                raise CredentialsRefused(f"the index refused the credentials ({error.code}) reading {page}",
                                         where=where) from None
            if error.code not in TRANSIENT_STATUS:
                raise ForgeError(f"the index answered {error.code} {error.reason} for {page}", where=where) from None
            problem = f"{error.code} {error.reason}"
        except (urllib.error.URLError, OSError) as error:
            problem = str(getattr(error, "reason", error))
        if attempt < attempts:
            delay = 0.5 * 2 ** (attempt - 1)
            log(f"index {page}: {problem}; attempt {attempt} of {attempts} failed, retrying in {delay:g}s")
            if wait(delay):
                raise WorkWithdrawn(f"reading {page} withdrawn", where=where)
    raise IndexUnavailable(f"the index at {page} is unavailable after {attempts} attempts: {problem}", where=where)

