"""The OCI store on a registry: the OCI Distribution API (v1.1) over httpx.

Why httpx and not oras-py (0.2.43) for the transport: oras-py's monolithic upload reads the whole
blob into memory (``fd.read()``), which a 2 GB artifact cannot afford; its authentication turns a
refused credential into a bare ``ValueError``, and its retry decorator sleeps a fixed time without
looking at 429 or ``Retry-After``; it has no blob mounts, no ``artifactType`` on push and no
referrers. Everything oras-py would still do here is a handful of requests of the Distribution
spec, so the client speaks it directly; manifests are built by :mod:`forge_core.domain.oci`.
oras-py stays the independent client the tests and ``benchmarks/oci_push.py`` compare against.

What it does: basic and bearer-token auth (:mod:`.auth`: the ``WWW-Authenticate`` challenge, tokens per
scope), plain http for loopback and configured insecure registries, bounded retries with
exponential backoff on connection errors, 5xx and 429, cross-repository mounts, monolithic or
chunked uploads streamed from disk, digest checks on everything read, and the referrers API with
the tag-schema fallback for registries without it (distribution 2.8).
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

import httpx

from forge_core.adapters.oci.auth import RegistryAuth
from forge_core.adapters.oci.streams import BLOCK, file_chunks, file_digest, receive
from forge_core.domain.oci import (
    INDEX,
    MANIFEST_TYPES,
    Descriptor,
    FetchedManifest,
    Index,
    Manifest,
    OciAuthError,
    OciConflict,
    OciDigestMismatch,
    OciNotFound,
    OciReferenceError,
    OciRejected,
    OciTooLarge,
    OciUnavailable,
    RegistryCredentials,
    canonical_json,
    check_digest,
    check_repository,
    check_tag,
    fallback_tag,
    manifest_bytes,
    parse_manifest,
    referrer_descriptor,
    sha256_digest,
)
from forge_core.domain.registry_hosts import is_loopback
from forge_core.ports.oci import DEFAULT_MAX_BLOB_SIZE, fallback_referrers
from forge_core.settings.oci import OciSettings

log = logging.getLogger("forge.oci")

MAX_MANIFEST_SIZE = 4 * 1024**2  # what the distribution spec asks registries to accept at least
_ACCEPT = ", ".join(MANIFEST_TYPES)

Body = Callable[[], Iterator[bytes]] | bytes | None


class _Transient(Exception):
    """One try failed in a way worth retrying (connection error, 5xx, 429)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after



def _registry_errors(response: httpx.Response) -> str:
    """The registry's own error codes and messages (``MANIFEST_BLOB_UNKNOWN: …``), or the status."""
    try:
        errors = response.json().get("errors") or []
        parts = [
            f"{e.get('code')}: {e.get('message')}" + (f" ({e['detail']})" if e.get("detail") else "") for e in errors
        ]
    except (ValueError, AttributeError):
        parts = []
    return "; ".join(parts) or f"HTTP {response.status_code}"


class TlsOnDemand(httpx.BaseTransport):
    """httpx's transport, with the verifying TLS context built on the first https request.

    A plain-http registry (loopback, insecure) needs TLS only if its token realm or a redirect is
    https; building the default context (loading the CA bundle) up front costs tens of
    milliseconds, which the Argo CD plugin would pay on every cold render. Plain http requests go
    through a transport without certificates: no TLS happens on them."""

    def __init__(self) -> None:
        self._plain = httpx.HTTPTransport(verify=False)
        self._tls: httpx.HTTPTransport | None = None
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "http":
            return self._plain.handle_request(request)
        with self._lock:
            if self._tls is None:
                self._tls = httpx.HTTPTransport()
        return self._tls.handle_request(request)

    def close(self) -> None:
        self._plain.close()
        if self._tls is not None:
            self._tls.close()


class RegistryStore:
    """An :class:`~forge_core.ports.oci.OciStore` on one registry (``host[:port]``)."""

    def __init__(
        self,
        registry: str,
        *,
        credentials: RegistryCredentials | None = None,
        settings: OciSettings | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._registry = registry
        self._settings = settings or OciSettings()
        insecure = is_loopback(registry) or registry in self._settings.insecure_registries
        self._base = f"{'http' if insecure else 'https'}://{registry}"
        if transport is None and insecure:
            transport = TlsOnDemand()
        self._http = httpx.Client(timeout=self._settings.timeout, follow_redirects=True, transport=transport)
        self._auth = RegistryAuth(registry, credentials, self._http)
        self._referrers_api: bool | None = None  # unknown until asked once

    @property
    def location(self) -> str:
        return self._registry

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- the port -----------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        check_repository(repository, registry=self._registry)
        check_digest(digest, registry=self._registry, reference=repository)
        response = self._request("HEAD", f"/v2/{repository}/blobs/{digest}", scope=_pull(repository))
        if response.status_code == 404:
            return False
        self._expect(response, {200}, f"{repository}@{digest}")
        return True

    def push_blob(
        self,
        repository: str,
        content: Path | bytes,
        media_type: str,
        *,
        annotations: dict[str, str] | None = None,
        mount_from: Sequence[str] = (),
    ) -> Descriptor:
        check_repository(repository, registry=self._registry)
        digest, size = (sha256_digest(content), len(content)) if isinstance(content, bytes) else file_digest(content)
        descriptor = Descriptor(media_type=media_type, digest=digest, size=size, annotations=annotations)
        if self.blob_exists(repository, digest):
            return descriptor
        for source in mount_from:
            if source != repository and self._mount(repository, source, digest):
                return descriptor
        self._upload(repository, content, digest, size)
        return descriptor

    def push_manifest(
        self, repository: str, manifest: Manifest | Index | FetchedManifest, *, tags: Sequence[str] = ()
    ) -> Descriptor:
        descriptor, _ = self._put_manifest(repository, manifest, tags)
        return descriptor

    def resolve(self, repository: str, tag: str) -> Descriptor:
        check_repository(repository, registry=self._registry)
        check_tag(tag, registry=self._registry, reference=repository)
        reference = f"{repository}:{tag}"
        response = self._request(
            "HEAD", f"/v2/{repository}/manifests/{tag}", scope=_pull(repository), headers={"Accept": _ACCEPT}
        )
        if response.status_code == 404:
            raise OciNotFound(f"no tag {tag!r}", registry=self._registry, reference=reference)
        self._expect(response, {200}, reference)
        digest = response.headers.get("Docker-Content-Digest")
        media_type = response.headers.get("Content-Type", "").split(";")[0]
        size = response.headers.get("Content-Length")
        if digest and media_type and size is not None:
            return Descriptor(
                media_type=media_type, digest=check_digest(digest, registry=self._registry), size=int(size)
            )
        return self.fetch_manifest(repository, tag).descriptor

    def fetch_manifest(self, repository: str, reference: str) -> FetchedManifest:
        check_repository(repository, registry=self._registry)
        pinned = ":" in reference  # a digest (tags have no colon)
        if pinned:
            check_digest(reference, registry=self._registry, reference=repository)
        else:
            check_tag(reference, registry=self._registry, reference=repository)
        where = f"{repository}{'@' if pinned else ':'}{reference}"
        response = self._request(
            "GET", f"/v2/{repository}/manifests/{reference}", scope=_pull(repository), headers={"Accept": _ACCEPT}
        )
        if response.status_code == 404:
            raise OciNotFound("no such manifest", registry=self._registry, reference=where)
        self._expect(response, {200}, where)
        raw = response.content
        if len(raw) > MAX_MANIFEST_SIZE:
            raise OciTooLarge(
                f"manifest of {len(raw)} bytes, over {MAX_MANIFEST_SIZE}", registry=self._registry, reference=where
            )
        digest = sha256_digest(raw)
        claimed = reference if pinned else response.headers.get("Docker-Content-Digest", digest)
        if digest != claimed:
            raise OciDigestMismatch(
                f"manifest bytes hash to {digest}, the registry said {claimed}",
                registry=self._registry,
                reference=where,
            )
        media_type = response.headers.get("Content-Type", "").split(";")[0] or None
        document = parse_manifest(raw, media_type, registry=self._registry, reference=where)
        descriptor = Descriptor(
            media_type=document.media_type or media_type or "",
            digest=digest,
            size=len(raw),
        )
        return FetchedManifest(descriptor, raw, document)

    def fetch_blob(
        self, repository: str, descriptor: Descriptor, destination: Path, *, max_size: int = DEFAULT_MAX_BLOB_SIZE
    ) -> Path:
        check_repository(repository, registry=self._registry)
        where = f"{repository}@{descriptor.digest}"
        if descriptor.size > max_size:
            raise OciTooLarge(
                f"blob of {descriptor.size} bytes, over the limit of {max_size}",
                registry=self._registry,
                reference=where,
            )
        response = self._request(
            "GET", f"/v2/{repository}/blobs/{descriptor.digest}", scope=_pull(repository), stream=True
        )
        try:
            if response.status_code == 404:
                raise OciNotFound("no such blob", registry=self._registry, reference=where)
            self._expect(response, {200}, where)
            receive(response.iter_bytes(BLOCK), descriptor, destination, registry=self._registry, where=where)
        except httpx.TransportError as exc:
            raise OciUnavailable(f"the download broke off: {exc}", registry=self._registry, reference=where) from exc
        finally:
            response.close()
        return destination

    def referrers(self, repository: str, subject: str, *, artifact_type: str | None = None) -> list[Descriptor]:
        check_repository(repository, registry=self._registry)
        check_digest(subject, registry=self._registry, reference=repository)
        found: list[Descriptor] | None = None
        if self._referrers_api is not False:
            found = self._referrers_from_api(repository, subject, artifact_type)
        if found is None:
            return fallback_referrers(self, repository, subject, artifact_type)
        return [d for d in found if artifact_type is None or d.artifact_type == artifact_type]

    def attach_referrer(self, repository: str, manifest: Manifest, *, tags: Sequence[str] = ()) -> Descriptor:
        if manifest.subject is None:
            raise OciReferenceError("a referrer needs a subject", registry=self._registry, reference=repository)
        descriptor, indexed_by_registry = self._put_manifest(repository, manifest, tags)
        if indexed_by_registry:
            self._referrers_api = True
            return descriptor
        self._add_to_fallback(
            repository, manifest.subject.digest, referrer_descriptor(manifest, canonical_json(manifest))
        )
        return descriptor

    # --- manifests and referrers ------------------------------------------------------------------

    def _put_manifest(
        self, repository: str, manifest: Manifest | Index | FetchedManifest, tags: Sequence[str]
    ) -> tuple[Descriptor, bool]:
        """Push under every tag (or the digest alone); True when the registry indexed its subject."""
        check_repository(repository, registry=self._registry)
        for tag in tags:
            check_tag(tag, registry=self._registry, reference=repository)
        _, media_type, raw = manifest_bytes(manifest)
        descriptor = Descriptor(media_type=media_type, digest=sha256_digest(raw), size=len(raw))
        indexed = False
        for target in tags or [descriptor.digest]:
            where = f"{repository}{'@' if target == descriptor.digest else ':'}{target}"
            response = self._request(
                "PUT",
                f"/v2/{repository}/manifests/{target}",
                scope=_push(repository),
                headers={"Content-Type": media_type},
                body=raw,
            )
            self._expect(response, {201}, where, action="push manifest")
            returned = response.headers.get("Docker-Content-Digest")
            if returned and returned != descriptor.digest:
                raise OciDigestMismatch(
                    f"the registry stored the manifest as {returned}, expected {descriptor.digest}",
                    registry=self._registry,
                    reference=where,
                )
            indexed = indexed or "OCI-Subject" in response.headers
        return descriptor, indexed

    def _referrers_from_api(self, repository: str, subject: str, artifact_type: str | None) -> list[Descriptor] | None:
        """The referrers API's answer (every page), or None when the registry has no such API."""
        found: list[Descriptor] = []
        url = f"/v2/{repository}/referrers/{subject}"
        if artifact_type:
            url += f"?artifactType={quote(artifact_type, safe='')}"
        while url:
            response = self._request("GET", url, scope=_pull(repository), headers={"Accept": INDEX})
            content_type = response.headers.get("Content-Type", "").split(";")[0]
            if response.status_code == 404 or (response.status_code == 200 and content_type != INDEX):
                self._referrers_api = False
                return None
            self._expect(response, {200}, f"{repository}@{subject}")
            self._referrers_api = True
            index = parse_manifest(
                response.content, INDEX, registry=self._registry, reference=f"{repository}@{subject}"
            )
            found.extend(index.manifests if isinstance(index, Index) else [])
            url = response.links.get("next", {}).get("url", "")
        return found

    def _add_to_fallback(self, repository: str, subject: str, entry: Descriptor) -> None:
        """Merge ``entry`` into the fallback index, then read it back: a registry without
        conditional PUTs lets a concurrent writer replace our write, so re-merge until it stays.

        Writers in this process take turns (a lock per registry, repository and subject). Writers
        in other processes can still race: before reading back, wait one to two times as long as
        our own read-and-write took, as a writer that read the index before our write lands
        within about that long."""
        tag = fallback_tag(subject)
        with _fallback_lock(self._registry, repository, tag):
            for attempt in range(self._settings.attempts * 2):
                started = time.monotonic()
                entries = self._fallback_entries(repository, tag)
                if not any(e.digest == entry.digest for e in entries):
                    self._put_manifest(repository, Index(manifests=[*entries, entry]), [tag])
                time.sleep((time.monotonic() - started) * random.uniform(1.0, 2.0) * (attempt + 1))
                if any(e.digest == entry.digest for e in self._fallback_entries(repository, tag)):
                    return
            raise OciConflict(
                f"concurrent writers kept replacing the referrers index {tag}",
                registry=self._registry,
                reference=f"{repository}:{tag}",
            )

    def _fallback_entries(self, repository: str, tag: str) -> list[Descriptor]:
        try:
            document = self.fetch_manifest(repository, tag).document
        except OciNotFound:
            return []
        if not isinstance(document, Index):
            raise OciRejected(
                f"the referrers fallback tag {tag} holds a manifest, not an index",
                registry=self._registry,
                reference=f"{repository}:{tag}",
            )
        return list(document.manifests)

    # --- blob uploads ----------------------------------------------------------------------------

    def _mount(self, repository: str, source: str, digest: str) -> bool:
        check_repository(source, registry=self._registry)
        response = self._request(
            "POST",
            f"/v2/{repository}/blobs/uploads/?mount={digest}&from={quote(source, safe='/')}",
            scope=f"{_push(repository)} {_pull(source)}",
            headers={"Content-Length": "0"},
        )
        if response.status_code == 201:
            return True
        self._expect(response, {202}, f"{repository}@{digest}", action="mount blob")
        self._cancel(response, repository)  # the registry opened an upload instead; ours starts afresh
        return False

    def _upload(self, repository: str, content: Path | bytes, digest: str, size: int) -> None:
        """Upload in one PUT or in PATCH chunks; a broken upload starts again from a new session."""
        where = f"{repository}@{digest}"
        delay = self._settings.backoff
        for attempt in range(1, self._settings.attempts + 1):
            try:
                self._upload_once(repository, content, digest, size, where)
                return
            except _Transient as exc:
                if attempt == self._settings.attempts:
                    raise OciUnavailable(
                        f"registry {self._registry} did not take the blob after {attempt} tries: {exc}",
                        registry=self._registry,
                        reference=where,
                    ) from None
                log.warning("registry %s: upload of %s broke off (%s), starting again", self._registry, where, exc)
                time.sleep(exc.retry_after or delay)
                delay = min(delay * 2, self._settings.max_backoff)

    def _upload_once(self, repository: str, content: Path | bytes, digest: str, size: int, where: str) -> None:
        started = self._request(
            "POST", f"/v2/{repository}/blobs/uploads/", scope=_push(repository), headers={"Content-Length": "0"}
        )
        self._expect(started, {202}, where, action="start upload")
        location = self._location(started, where)
        chunk = self._settings.chunk_size
        if size > chunk:
            for start in range(0, size, chunk):
                length = min(chunk, size - start)
                body: Body = (
                    content[start : start + length]
                    if isinstance(content, bytes)
                    else file_chunks(content, start, length)
                )
                patched = self._request(
                    "PATCH",
                    location,
                    scope=_push(repository),
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{start}-{start + length - 1}",
                        "Content-Length": str(length),
                    },
                    body=body,
                    retry=False,
                )
                self._expect(patched, {202}, where, action="upload chunk")
                location = self._location(patched, where)
            final_body: Body = None
            final_length = 0
        else:
            final_body = content if isinstance(content, bytes) else file_chunks(content)
            final_length = size
        url = str(httpx.URL(location).copy_add_param("digest", digest))
        done = self._request(
            "PUT",
            url,
            scope=_push(repository),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(final_length)},
            body=final_body,
            retry=False,
        )
        self._expect(done, {201}, where, action="upload blob")

    def _location(self, response: httpx.Response, where: str) -> str:
        location: str = response.headers.get("Location", "")
        if not location:
            raise OciRejected("the registry gave no upload location", registry=self._registry, reference=where)
        return location if location.startswith(("http://", "https://")) else self._base + location

    def _cancel(self, response: httpx.Response, repository: str) -> None:
        location = response.headers.get("Location")
        if location:
            url = location if location.startswith(("http://", "https://")) else self._base + location
            # An abandoned upload session expires on its own; cancelling is a courtesy.
            with contextlib.suppress(httpx.TransportError):
                self._http.delete(url, headers=self._auth.headers(_push(repository)))

    # --- requests, retries, auth -----------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        headers: dict[str, str] | None = None,
        body: Body = None,
        stream: bool = False,
        retry: bool = True,
    ) -> httpx.Response:
        """Send with auth, answering one 401 challenge; retried with backoff when ``retry``, else a
        transient failure raises :class:`_Transient` for the caller to restart a larger unit."""
        url = path if path.startswith(("http://", "https://")) else self._base + path
        delay = self._settings.backoff
        attempts = self._settings.attempts if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                response = self._send_authenticated(method, url, scope, headers or {}, body, stream)
                if response.status_code == 429 or response.status_code >= 500:
                    if stream:
                        response.close()
                    raise _Transient(f"HTTP {response.status_code}", _retry_after(response))
                return response
            except (httpx.TransportError, _Transient) as exc:
                transient = exc if isinstance(exc, _Transient) else _Transient(f"{type(exc).__name__}: {exc}")
                if not retry:
                    raise transient from None
                if attempt == attempts:
                    raise OciUnavailable(
                        f"registry {self._registry} did not answer {method} after {attempts} tries: {transient}",
                        registry=self._registry,
                        reference=_reference_of(path),
                    ) from None
                wait = min(transient.retry_after or delay, self._settings.max_backoff)
                log.warning(
                    "registry %s: %s %s failed (%s), try %d of %d in %.2f s",
                    self._registry, method, httpx.URL(url).path, transient, attempt + 1, attempts, wait,
                )  # fmt: skip
                time.sleep(wait)
                delay = min(delay * 2, self._settings.max_backoff)
        raise AssertionError("unreachable")

    def _send_authenticated(
        self, method: str, url: str, scope: str, headers: dict[str, str], body: Body, stream: bool
    ) -> httpx.Response:
        response = self._send(method, url, {**headers, **self._auth.headers(scope)}, body, stream)
        if response.status_code != 401:
            self._raise_if_denied(response, url)
            return response
        response.close()
        self._auth.answer(response, scope, _reference_of(url))
        response = self._send(method, url, {**headers, **self._auth.headers(scope)}, body, stream)
        if response.status_code == 401:
            response.close()
            raise self._auth.refused(_reference_of(url))
        self._raise_if_denied(response, url)
        return response

    def _send(self, method: str, url: str, headers: dict[str, str], body: Body, stream: bool) -> httpx.Response:
        content = body() if callable(body) else body
        request = self._http.build_request(method, url, headers=headers, content=content)
        return self._http.send(request, stream=stream)

    def _raise_if_denied(self, response: httpx.Response, url: str) -> None:
        if response.status_code == 403:
            response.read()
            raise OciAuthError(
                f"registry {self._registry} denied access: {_registry_errors(response)}",
                registry=self._registry,
                reference=_reference_of(url),
            )

    def _expect(self, response: httpx.Response, statuses: set[int], where: str, *, action: str = "read") -> None:
        if response.status_code in statuses:
            return
        response.read()
        raise OciRejected(
            f"registry {self._registry} refused to {action}: {_registry_errors(response)}",
            registry=self._registry,
            reference=where,
        )


_fallback_locks: dict[tuple[str, str, str], threading.Lock] = {}
_fallback_locks_guard = threading.Lock()


def _fallback_lock(registry: str, repository: str, tag: str) -> threading.Lock:
    with _fallback_locks_guard:
        return _fallback_locks.setdefault((registry, repository, tag), threading.Lock())


def _pull(repository: str) -> str:
    return f"repository:{repository}:pull"


def _push(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def _reference_of(url: str) -> str | None:
    """``repository@digest`` / ``repository:tag`` / ``repository`` from a Distribution API URL."""
    path = httpx.URL(url).path if url.startswith(("http://", "https://")) else url.split("?")[0]
    match = re.match(r"/v2/(.+?)/(manifests|blobs|referrers)/(.*)$", path)
    if not match:
        return None
    repository, _, target = match.groups()
    if not target or target.startswith("uploads"):
        return repository
    return f"{repository}{'@' if target.startswith('sha256:') else ':'}{target}"
