"""A GitHub stand-in for tests: commit statuses and releases with their assets, on a loopback port.

It implements the REST endpoints the plugin uses, with GitHub's documented request and response
shapes, token check (401 ``Bad credentials``) and validation (422 ``Validation Failed`` with
``errors[].code``, ``already_exists`` for a duplicate release tag or asset name):

- ``POST /repos/{o}/{r}/statuses/{sha}``, ``GET /repos/{o}/{r}/commits/{sha}/statuses``;
- ``GET /repos/{o}/{r}/releases/tags/{tag}``, ``GET /repos/{o}/{r}/releases/{id}``,
  ``POST /repos/{o}/{r}/releases``;
- ``GET /repos/{o}/{r}/releases/{id}/assets`` (paged: ``per_page``, ``page``, a ``Link`` header);
- ``POST /uploads/repos/{o}/{r}/releases/{id}/assets?name=…`` (the release's ``upload_url``: a
  separate path of the same server, as ``uploads.github.com`` is a separate host), raw body with
  ``Content-Type`` and ``Content-Length``; the body goes to a file, never into memory;
- ``GET /repos/{o}/{r}/releases/assets/{id}`` (JSON; with ``Accept: application/octet-stream`` a 302
  to the ``browser_download_url``), ``GET /{o}/{r}/releases/download/{tag}/{name}``,
  ``DELETE /repos/{o}/{r}/releases/assets/{id}``.

Assets carry ``digest`` (``sha256:…``) unless ``digests`` is False (a server from before the field).
``fail(...)`` makes the next matching requests answer an error (a 5xx, or a 429 with
``Retry-After``, or a 403 with an exhausted rate limit); ``requests`` records every request.
``stop()`` closes the port (GitHub is down); ``start()`` opens the same port again.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from forge_core.testing.http import JsonHandler

POST_STATUS = re.compile(r"^/repos/([^/]+/[^/]+)/statuses/([0-9a-f]{7,64})$")
GET_STATUSES = re.compile(r"^/repos/([^/]+/[^/]+)/commits/([0-9a-f]{7,64})/statuses$")
RELEASES = re.compile(r"^/repos/([^/]+/[^/]+)/releases$")
RELEASE_BY_TAG = re.compile(r"^/repos/([^/]+/[^/]+)/releases/tags/(.+)$")
RELEASE = re.compile(r"^/repos/([^/]+/[^/]+)/releases/(\d+)$")
RELEASE_ASSETS = re.compile(r"^/repos/([^/]+/[^/]+)/releases/(\d+)/assets$")
UPLOAD = re.compile(r"^/uploads/repos/([^/]+/[^/]+)/releases/(\d+)/assets$")
ASSET = re.compile(r"^/repos/([^/]+/[^/]+)/releases/assets/(\d+)$")
DOWNLOAD = re.compile(r"^/([^/]+/[^/]+)/releases/download/(.+)/([^/]+)$")
STATES = {"error", "failure", "pending", "success"}
CHUNK = 2**20


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class Fault:
    """The next ``times`` requests whose ``METHOD path`` contains ``on`` answer ``status``.

    ``after``: the request is carried out first and only its answer is replaced (an upload that
    landed although the client saw it fail)."""

    status: int
    times: int = 1
    on: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    after: bool = False


@dataclass
class GithubStandIn:
    token: str | None = None
    port: int = 0
    digests: bool = True
    statuses: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    releases: dict[int, dict[str, Any]] = field(default_factory=dict)
    assets: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    _files: Path | None = None
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def received(self, repository: str, sha: str) -> list[dict[str, Any]]:
        """The statuses of a commit in the order they arrived."""
        return list(self.statuses.get((repository, sha), []))

    def fail(self, status: int, *, times: int = 1, on: str = "", headers: dict[str, str] | None = None,
             after: bool = False) -> None:
        """Answer ``status`` (with ``headers``) to the next ``times`` requests matching ``on``."""
        with self._lock:
            self.faults.append(Fault(status, times, on, dict(headers or {}), after))

    def uploads(self) -> list[str]:
        """The asset names of every upload request that reached the server, in order."""
        return [r.query.get("name", [""])[0] for r in self.requests if r.method == "POST" and UPLOAD.match(r.path)]

    def release(self, repository: str, tag: str) -> dict[str, Any] | None:
        """The release of ``tag`` as GitHub shows it, with its assets."""
        with self._lock:
            found = self._release_by_tag(repository, tag)
            return self._release_json(found) if found else None

    def content(self, asset_id: int) -> bytes:
        """The bytes stored for an asset."""
        return Path(self.assets[asset_id]["_file"]).read_bytes()

    def start(self) -> GithubStandIn:
        if not self.port:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
        if self._files is None:
            self._files = Path(tempfile.mkdtemp(prefix="github-stand-in-"))
        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> GithubStandIn:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
        if self._files is not None:
            shutil.rmtree(self._files, ignore_errors=True)
            self._files = None

    # --- state, called with the lock held ----------------------------------------------------

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _release_by_tag(self, repository: str, tag: str) -> dict[str, Any] | None:
        return next((r for r in self.releases.values()
                     if r["_repository"] == repository and r["tag_name"] == tag and not r["draft"]), None)

    def _release_json(self, release: dict[str, Any]) -> dict[str, Any]:
        assets = [self._asset_json(a) for a in self.assets.values() if a["_release"] == release["id"]]
        return {**_public(release), "assets": assets}

    def _asset_json(self, asset: dict[str, Any]) -> dict[str, Any]:
        shown = _public(asset)
        if not self.digests:
            shown.pop("digest", None)
        return shown

    def _fault(self, line: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.on in line:
                fault.times -= 1
                return fault
        return None


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Reply = tuple[int, Any, dict[str, str]]
"""A route's answer: status, JSON body (None: empty), extra headers."""

DOCS = "https://docs.github.com/rest"
NOT_FOUND: Reply = (404, {"message": "Not Found", "documentation_url": DOCS}, {})


def _invalid(resource: str, code: str, field: str) -> Reply:
    return 422, {"message": "Validation Failed", "errors": [{"resource": resource, "code": code, "field": field}]}, {}


def _handler(stand_in: GithubStandIn) -> type[BaseHTTPRequestHandler]:
    lock = stand_in._lock

    class Handler(JsonHandler):
        path_only = ""
        query: dict[str, list[str]] = {}
        _body_read = False

        def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _drain(self) -> None:
            left = int(self.headers.get("Content-Length") or 0)
            while left > 0:
                chunk = self.rfile.read(min(CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)

        def _json_body(self) -> Any:
            try:
                return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            except ValueError:
                return None

        def _authorised(self) -> bool:
            if stand_in.token is None:
                return True
            return self.headers.get("Authorization") in (f"Bearer {stand_in.token}", f"token {stand_in.token}")

        def _dispatch(self, routes: list[tuple[re.Pattern[str], Any]], public: bool = False) -> None:
            """Record the request, apply a pending fault, else answer what the matching route says."""
            parts = urlsplit(self.path)
            self.path_only, self.query = parts.path, parse_qs(parts.query)
            with lock:
                stand_in.requests.append(Request(self.command, self.path_only, self.query, dict(self.headers)))
                fault = stand_in._fault(f"{self.command} {self.path_only}")
            failed: Reply | None = None
            if fault is not None:
                message = "Server Error" if fault.status >= 500 else "API rate limit exceeded"
                failed = (fault.status, {"message": message}, fault.headers)
            reply: Reply | None = NOT_FOUND
            if fault is not None and not fault.after:
                reply = failed
            else:
                route = next(((r, m) for p, r in routes if (m := p.match(self.path_only))), None)
                if route is not None and not public and not self._authorised():
                    reply = (401, {"message": "Bad credentials", "documentation_url": DOCS}, {})
                elif route is not None:
                    reply = route[0](route[1])
                    if failed is not None:
                        reply = failed
            self._drain_unread()
            if reply is not None:
                self._answer(*reply)

        def _drain_unread(self) -> None:
            # a route that did not read the body (an error, a fault) reads it now, as a server does
            if not getattr(self, "_body_read", False):
                self._drain()
            self._body_read = False

        def _read_json(self) -> Any:
            self._body_read = True
            return self._json_body()

        # --- methods ------------------------------------------------------------------------

        def do_GET(self) -> None:
            if DOWNLOAD.match(urlsplit(self.path).path):
                self._dispatch([(DOWNLOAD, self._download)], public=True)
                return
            self._dispatch([(GET_STATUSES, self._list_statuses), (RELEASE_BY_TAG, self._get_release_by_tag),
                            (RELEASE_ASSETS, self._list_assets), (RELEASE, self._get_release),
                            (ASSET, self._get_asset)])

        def do_POST(self) -> None:
            self._dispatch([(POST_STATUS, self._post_status), (RELEASES, self._create_release),
                            (UPLOAD, self._upload)])

        def do_DELETE(self) -> None:
            self._dispatch([(ASSET, self._delete_asset)])

        # --- commit statuses ------------------------------------------------------------------

        def _post_status(self, match: re.Match[str]) -> Reply:
            body = self._read_json()
            if body is None:
                return 400, {"message": "Problems parsing JSON"}, {}
            if not isinstance(body, dict) or body.get("state") not in STATES:
                return 422, {"message": "Validation Failed", "errors": [{"field": "state", "code": "invalid"}]}, {}
            status = {
                "state": body["state"], "context": body.get("context", "default"),
                "description": body.get("description"), "target_url": body.get("target_url"),
            }
            with lock:
                stored = stand_in.statuses.setdefault((match[1], match[2]), [])
                status["id"] = len(stored) + 1
                stored.append(status)
            return 201, status, {}

        def _list_statuses(self, match: re.Match[str]) -> Reply:
            return 200, list(reversed(stand_in.received(match[1], match[2]))), {}

        # --- releases -------------------------------------------------------------------------

        def _get_release_by_tag(self, match: re.Match[str]) -> Reply:
            with lock:
                found = stand_in._release_by_tag(match[1], unquote(match[2]))
                return (200, stand_in._release_json(found), {}) if found else NOT_FOUND

        def _get_release(self, match: re.Match[str]) -> Reply:
            with lock:
                found = stand_in.releases.get(int(match[2]))
                if found is None or found["_repository"] != match[1]:
                    return NOT_FOUND
                return 200, stand_in._release_json(found), {}

        def _create_release(self, match: re.Match[str]) -> Reply:
            body = self._read_json()
            if not isinstance(body, dict):
                return 400, {"message": "Problems parsing JSON"}, {}
            tag = body.get("tag_name")
            if not isinstance(tag, str) or not tag:
                return _invalid("Release", "missing_field", "tag_name")
            repository = match[1]
            with lock:
                if stand_in._release_by_tag(repository, tag):
                    return _invalid("Release", "already_exists", "tag_name")
                ident = stand_in._next_id()
                base = f"{stand_in.url}/repos/{repository}/releases/{ident}"
                release = {
                    "url": base, "html_url": f"{stand_in.url}/{repository}/releases/tag/{tag}",
                    "assets_url": f"{base}/assets",
                    "upload_url": f"{stand_in.url}/uploads/repos/{repository}/releases/{ident}/assets{{?name,label}}",
                    "tarball_url": f"{stand_in.url}/repos/{repository}/tarball/{tag}",
                    "zipball_url": f"{stand_in.url}/repos/{repository}/zipball/{tag}",
                    "id": ident, "node_id": f"RE_{ident}", "tag_name": tag,
                    "target_commitish": body.get("target_commitish") or "main",
                    "name": body.get("name") or tag, "body": body.get("body"),
                    "draft": bool(body.get("draft", False)), "prerelease": bool(body.get("prerelease", False)),
                    "created_at": _now(), "published_at": None if body.get("draft") else _now(),
                    "author": {"login": "forge-bot"}, "_repository": repository,
                }
                stand_in.releases[ident] = release
                shown = stand_in._release_json(release)
            return 201, shown, {"Location": base}

        # --- assets ---------------------------------------------------------------------------

        def _list_assets(self, match: re.Match[str]) -> Reply:
            per_page = min(100, int(self.query.get("per_page", ["30"])[0]))
            page = max(1, int(self.query.get("page", ["1"])[0]))
            with lock:
                release = stand_in.releases.get(int(match[2]))
                if release is None or release["_repository"] != match[1]:
                    return NOT_FOUND
                listed = sorted((stand_in._asset_json(a) for a in stand_in.assets.values()
                                 if a["_release"] == release["id"]), key=lambda a: int(a["id"]))
            headers = {}
            if page * per_page < len(listed):
                next_url = f"{stand_in.url}{self.path_only}?per_page={per_page}&page={page + 1}"
                headers["Link"] = f'<{next_url}>; rel="next"'
            return 200, listed[(page - 1) * per_page: page * per_page], headers

        def _upload(self, match: re.Match[str]) -> Reply | None:
            repository, release_id = match[1], int(match[2])
            name = self.query.get("name", [""])[0]
            length = self.headers.get("Content-Length")
            content_type = self.headers.get("Content-Type")
            if length is None or not length.isdigit():
                return 411, {"message": "Length Required"}, {}
            assert stand_in._files is not None
            with lock:
                release = stand_in.releases.get(release_id)
                if release is None or release["_repository"] != repository:
                    return NOT_FOUND
                if not name or not content_type:
                    return _invalid("ReleaseAsset", "missing_field", "name" if not name else "content_type")
                if any(a["_release"] == release_id and a["name"] == name for a in stand_in.assets.values()):
                    return _invalid("ReleaseAsset", "already_exists", "name")
                ident = stand_in._next_id()
                stored = stand_in._files / f"asset-{ident}"
                download = f"{stand_in.url}/{repository}/releases/download/{release['tag_name']}/{name}"
                asset = {
                    "url": f"{stand_in.url}/repos/{repository}/releases/assets/{ident}",
                    "browser_download_url": download,
                    "id": ident, "node_id": f"RA_{ident}", "name": name,
                    "label": self.query.get("label", [""])[0], "state": "starter", "content_type": content_type,
                    "size": 0, "digest": None, "download_count": 0, "created_at": _now(), "updated_at": _now(),
                    "uploader": {"login": "forge-bot"}, "_release": release_id,
                    "_file": str(stored),
                }
                stand_in.assets[ident] = asset
            self._body_read = True
            digest, left = hashlib.sha256(), int(length)
            with stored.open("wb") as out:
                while left > 0:
                    chunk = self.rfile.read(min(CHUNK, left))
                    if not chunk:
                        return None  # the client went away: the asset stays a "starter", as on GitHub
                    digest.update(chunk)
                    out.write(chunk)
                    left -= len(chunk)
            with lock:
                asset.update(state="uploaded", size=int(length), digest=f"sha256:{digest.hexdigest()}",
                             updated_at=_now())
                return 201, stand_in._asset_json(asset), {}

        def _get_asset(self, match: re.Match[str]) -> Reply:
            with lock:
                asset = stand_in.assets.get(int(match[2]))
                if asset is None:
                    return NOT_FOUND
                shown = stand_in._asset_json(asset)
            if self.headers.get("Accept") == "application/octet-stream":
                return 302, None, {"Location": shown["browser_download_url"]}
            return 200, shown, {}

        def _download(self, match: re.Match[str]) -> Reply | None:
            repository, tag, name = match[1], unquote(match[2]), unquote(match[3])
            with lock:
                release = stand_in._release_by_tag(repository, tag)
                asset = next((a for a in stand_in.assets.values() if release and a["_release"] == release["id"]
                              and a["name"] == name and a["state"] == "uploaded"), None)
            if asset is None:
                return NOT_FOUND
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(asset["size"]))
            self.end_headers()
            with open(asset["_file"], "rb") as stored:
                while chunk := stored.read(CHUNK):
                    self.wfile.write(chunk)
            return None

        def _delete_asset(self, match: re.Match[str]) -> Reply:
            with lock:
                asset = stand_in.assets.pop(int(match[2]), None)
            if asset is None:
                return NOT_FOUND
            Path(asset["_file"]).unlink(missing_ok=True)
            return 204, None, {}

    return Handler
