"""The registry adapter against the real registry (Debian's docker-registry 2.8): uploads, mounts,
auth, retries and the faults a push meets."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from forge_core.adapters.oci.registry import RegistryStore, is_loopback
from forge_core.domain.oci import (
    EMPTY,
    EMPTY_JSON,
    INDEX,
    MANIFEST,
    Descriptor,
    Manifest,
    OciAuthError,
    OciDigestMismatch,
    OciNotFound,
    OciUnavailable,
    RegistryCredentials,
    sha256_digest,
)
from forge_core.settings.oci import OciSettings
from forge_core.testing.registry import USER, RegistryServer, free_port

from .conftest import FAST, Recorder


def test_a_blob_the_registry_has_is_not_sent_again(
    registry_store: RegistryStore, recorder: Recorder, repository: str
) -> None:
    first = registry_store.push_blob(repository, b"payload", "application/octet-stream")
    uploads = len(recorder.uploads())
    again = registry_store.push_blob(repository, b"payload", "application/octet-stream")

    assert again == first
    assert uploads == 2  # POST to open, PUT to finish
    assert len(recorder.uploads()) == uploads
    assert recorder.seen[-1][:1] == ("HEAD",)


def test_a_blob_held_by_another_repository_is_mounted_not_uploaded(
    registry_store: RegistryStore, recorder: Recorder, repository: str, tmp_path: Path
) -> None:
    source = tmp_path / "layer"
    source.write_bytes(b"shared layer " * 4096)
    registry_store.push_blob(f"{repository}-a", source, "application/octet-stream")
    before = len(recorder.seen)

    mounted = registry_store.push_blob(
        f"{repository}-b", source, "application/octet-stream", mount_from=[f"{repository}-a"]
    )

    sent = recorder.seen[before:]
    assert [(m, s) for m, t, s in sent if "/uploads/" in t] == [("POST", 201)]
    assert f"from={repository}-a" in next(t for m, t, s in sent if m == "POST")
    assert registry_store.blob_exists(f"{repository}-b", mounted.digest)


def test_a_large_blob_is_uploaded_in_chunks(oci_registry: RegistryServer, repository: str, tmp_path: Path) -> None:
    recorder = Recorder()
    source = tmp_path / "chunks"
    source.write_bytes(bytes(range(256)) * (4096 * 3 + 100))  # a little over 3 MiB
    settings = OciSettings(chunk_size=1024**2)
    with RegistryStore(oci_registry.address, settings=settings, transport=recorder) as store:
        pushed = store.push_blob(repository, source, "application/octet-stream")
        store.fetch_blob(repository, pushed, tmp_path / "back")

    assert [m for m, t, s in recorder.uploads()] == ["POST", "PATCH", "PATCH", "PATCH", "PATCH", "PUT"]
    assert (tmp_path / "back").read_bytes() == source.read_bytes()


_STREAM_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    from forge_core.adapters.oci.registry import RegistryStore
    from forge_core.settings.oci import OciSettings
    address, folder, size, chunk = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    blob = folder / "sparse"
    with blob.open("wb") as file:
        file.truncate(size)
        file.write(b"start")
    store = RegistryStore(address, settings=OciSettings(chunk_size=chunk))
    pushed = store.push_blob(sys.argv[5], blob, "application/octet-stream")
    store.fetch_blob(sys.argv[5], pushed, folder / "pulled")
    assert (folder / "pulled").stat().st_size == size
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """
)


def _peak_rss_kib(address: str, folder: Path, size: int, chunk: int, repository: str) -> int:
    folder.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", _STREAM_SCRIPT, address, str(folder), str(size), str(chunk), repository],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return int(result.stdout.strip())


@pytest.mark.parametrize("chunk", [1024**3, 64 * 1024**2], ids=["monolithic", "chunked"])
def test_memory_stays_flat_pushing_and_pulling_a_200_mb_blob(
    oci_registry: RegistryServer, repository: str, tmp_path: Path, chunk: int
) -> None:
    small = _peak_rss_kib(oci_registry.address, tmp_path / "small", 1024**2, chunk, f"{repository}-s")
    large = _peak_rss_kib(oci_registry.address, tmp_path / "large", 200 * 1024**2, chunk, f"{repository}-l")
    assert large - small < 30 * 1024, f"peak RSS grew by {(large - small) // 1024} MiB for 199 MiB more blob"


def test_basic_auth_pushes_with_the_right_password(oci_registry_basic: RegistryServer, repository: str) -> None:
    assert oci_registry_basic.password is not None
    credentials = RegistryCredentials(USER, oci_registry_basic.password)
    with RegistryStore(oci_registry_basic.address, credentials=credentials, settings=FAST) as store:
        blob = store.push_blob(repository, b"authorised", "text/plain")
        assert store.blob_exists(repository, blob.digest)


def test_bearer_tokens_are_fetched_from_the_challenge_and_used(
    oci_registry_token: RegistryServer, repository: str, tmp_path: Path
) -> None:
    assert oci_registry_token.password is not None
    credentials = RegistryCredentials(USER, oci_registry_token.password)
    with RegistryStore(oci_registry_token.address, credentials=credentials, settings=FAST) as store:
        store.push_blob(repository, EMPTY_JSON, EMPTY)
        layer = store.push_blob(repository, b"token protected", "text/plain")
        pushed = store.push_manifest(repository, Manifest(artifact_type="x/y", layers=[layer]), tags=["v1"])
        assert store.resolve(repository, "v1") == pushed
        store.push_blob(f"{repository}-copy", b"token protected", "text/plain", mount_from=[repository])
        assert store.blob_exists(f"{repository}-copy", layer.digest)


@pytest.mark.parametrize("fixture", ["oci_registry_basic", "oci_registry_token"])
def test_refused_credentials_are_a_clear_error_without_the_password(
    fixture: str, repository: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    server: RegistryServer = request.getfixturevalue(fixture)
    wrong = "wrong-password-7f3a9c"
    caplog.set_level(logging.DEBUG)
    with RegistryStore(server.address, credentials=RegistryCredentials(USER, wrong), settings=FAST) as store:
        with pytest.raises(OciAuthError) as caught:
            store.push_blob(repository, b"refused", "text/plain")
        error = caught.value
    assert server.address in str(error)
    assert "refused" in str(error)
    assert USER in str(error)
    for text in (
        str(error),
        repr(error),
        json.dumps(error.details),
        caplog.text,
        repr(RegistryCredentials(USER, wrong)),
    ):
        assert wrong not in text


@pytest.mark.parametrize("fixture", ["oci_registry_basic", "oci_registry_token"])
def test_no_credentials_for_a_protected_registry_is_a_clear_error(
    fixture: str, repository: str, request: pytest.FixtureRequest
) -> None:
    server: RegistryServer = request.getfixturevalue(fixture)
    with RegistryStore(server.address, settings=FAST) as store, pytest.raises(OciAuthError) as caught:
        store.blob_exists(repository, sha256_digest(b"x"))
    assert server.address in str(caught.value)


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A registry this test may stop and start again (same port, same storage)."""
    server = RegistryServer(tmp_path / "registry").start()
    yield server
    server.stop()


def test_the_registry_going_down_mid_push_fails_naming_it_and_tags_nothing(
    own_registry: RegistryServer, repository: str
) -> None:
    store = RegistryStore(own_registry.address, settings=FAST)
    store.push_blob(repository, EMPTY_JSON, EMPTY)
    layer = store.push_blob(repository, b"first layer", "text/plain")
    own_registry.stop()

    started = time.monotonic()
    with pytest.raises(OciUnavailable) as caught:
        store.push_blob(repository, b"second layer", "text/plain")
    assert time.monotonic() - started >= FAST.backoff + FAST.backoff * 2 * 0.9  # it did back off and retry
    assert own_registry.address in str(caught.value)
    assert "after 3 tries" in str(caught.value)

    own_registry.start()
    with pytest.raises(OciNotFound):
        store.resolve(repository, "release")
    assert store.blob_exists(repository, layer.digest)
    store.close()


def test_a_registry_back_within_the_retries_completes_the_push(own_registry: RegistryServer, repository: str) -> None:
    settings = OciSettings(attempts=8, backoff=0.1, max_backoff=0.5)
    store = RegistryStore(own_registry.address, settings=settings)
    own_registry.stop()
    threading.Timer(0.4, own_registry.start).start()

    pushed = store.push_blob(repository, b"patient", "text/plain")

    assert store.blob_exists(repository, pushed.digest)
    store.close()


def test_a_blob_whose_bytes_do_not_match_its_digest_is_refused_on_pull(
    own_registry: RegistryServer, repository: str, tmp_path: Path
) -> None:
    with RegistryStore(own_registry.address, settings=FAST) as store:
        blob = store.push_blob(repository, b"genuine content", "text/plain")
        own_registry.blob_file(blob.digest).write_bytes(b"tampered value!")  # same size, other bytes
        with pytest.raises(OciDigestMismatch) as caught:
            store.fetch_blob(repository, blob, tmp_path / "pulled" / "blob")
    assert blob.digest in str(caught.value)
    assert list((tmp_path / "pulled").iterdir()) == []  # neither the blob nor a temporary file


class _Failing(BaseHTTPRequestHandler):
    """Answers every request with the status in the server's ``status`` (and counts them)."""

    def _answer(self) -> None:
        server = self.server
        server.count += 1  # type: ignore[attr-defined]
        self.send_response(server.status)  # type: ignore[attr-defined]
        self.send_header("Retry-After", "0")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET = do_POST = do_PUT = _answer

    def log_message(self, *_args: object) -> None:
        pass


@pytest.mark.parametrize("status", [503, 429])
def test_5xx_and_429_are_retried_a_bounded_number_of_times(status: int) -> None:
    # A stand-in: docker-registry cannot be made to answer 503 or 429 on purpose.
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Failing)
    server.status, server.count = status, 0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"127.0.0.1:{server.server_address[1]}"
    try:
        with RegistryStore(address, settings=FAST) as store, pytest.raises(OciUnavailable) as caught:
            store.resolve("some/repo", "tag")
    finally:
        server.shutdown()
        server.server_close()
    assert server.count == FAST.attempts  # type: ignore[attr-defined]
    assert f"HTTP {status}" in str(caught.value)
    assert caught.value.reference == "some/repo:tag"


def test_a_manifest_with_a_subject_pushes_to_a_registry_that_has_no_referrers_api(
    registry_store: RegistryStore, recorder: Recorder, repository: str
) -> None:
    registry_store.push_blob(repository, EMPTY_JSON, EMPTY)
    subject = registry_store.push_manifest(repository, Manifest(artifact_type="x/subject"), tags=["s"])
    registry_store.attach_referrer(repository, Manifest(artifact_type="x/ref", subject=subject))
    registry_store.referrers(repository, subject.digest)
    assert ("GET", f"/v2/{repository}/referrers/{subject.digest}", 404) in recorder.seen


def test_loopback_registries_are_plain_http() -> None:
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost:1") and is_loopback("[::1]:5000")
    assert not is_loopback("registry.example:5000")
    assert not is_loopback("10.0.0.1:5000")


def test_a_descriptor_size_lie_is_refused(registry_store: RegistryStore, repository: str, tmp_path: Path) -> None:
    blob = registry_store.push_blob(repository, b"twelve bytes", "text/plain")
    with pytest.raises(OciDigestMismatch):
        registry_store.fetch_blob(
            repository, Descriptor(media_type="text/plain", digest=blob.digest, size=5), tmp_path / "x"
        )


def test_a_manifest_whose_bytes_do_not_match_its_digest_is_refused(
    own_registry: RegistryServer, repository: str
) -> None:
    with RegistryStore(own_registry.address, settings=FAST) as store:
        store.push_blob(repository, EMPTY_JSON, EMPTY)
        pushed = store.push_manifest(repository, Manifest(artifact_type="x/aaaa"), tags=["v1"])
        stored = own_registry.blob_file(pushed.digest)
        stored.write_bytes(stored.read_bytes().replace(b"x/aaaa", b"x/bbbb"))
        with pytest.raises(OciDigestMismatch) as caught:
            store.fetch_manifest(repository, pushed.digest)
    assert pushed.digest in str(caught.value)


def test_a_registry_with_the_referrers_api_is_asked_directly_page_by_page() -> None:
    # A stand-in speaking distribution-spec 1.1's referrers API: no registry here has one (2.8 does not).
    subject = sha256_digest(b"subject manifest")
    pages = {
        f"/v2/r/referrers/{subject}": (
            [{"mediaType": MANIFEST, "digest": sha256_digest(b"a"), "size": 1, "artifactType": "x/a"}],
            f'</v2/r/referrers/{subject}?n=1&last=a>; rel="next"',
        ),
        f"/v2/r/referrers/{subject}?n=1&last=a": (
            [{"mediaType": MANIFEST, "digest": sha256_digest(b"b"), "size": 1, "artifactType": "x/b"}],
            None,
        ),
    }
    pushed: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            pushed.append(request.url.path)
            return httpx.Response(201, headers={"OCI-Subject": subject})
        wanted = request.url.params.get("artifactType")
        url = request.url.copy_remove_param("artifactType")
        manifests, link = pages[url.raw_path.decode()]
        headers = {"Content-Type": INDEX, **({"Link": link} if link else {})}
        if wanted:
            manifests = [m for m in manifests if m["artifactType"] == wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        return httpx.Response(
            200, json={"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}, headers=headers
        )

    with RegistryStore("127.0.0.1:9", settings=FAST, transport=httpx.MockTransport(handle)) as store:
        assert [d.artifact_type for d in store.referrers("r", subject)] == ["x/a", "x/b"]
        assert [d.artifact_type for d in store.referrers("r", subject, artifact_type="x/b")] == ["x/b"]
        subject_descriptor = Descriptor(media_type=MANIFEST, digest=subject, size=16)
        store.attach_referrer("r", Manifest(artifact_type="x/c", subject=subject_descriptor))
    assert len(pushed) == 1  # the registry indexed it (OCI-Subject): no fallback index written


def test_a_plain_http_registry_builds_its_tls_context_only_for_an_https_request(
    oci_registry: RegistryServer, repository: str, tmp_path: Path
) -> None:
    from forge_core.adapters.oci.registry import TlsOnDemand

    transport = TlsOnDemand()
    with RegistryStore(oci_registry.address, transport=transport) as store:
        pushed = store.push_blob(repository, b"plain http", "application/octet-stream")
        fetched = store.fetch_blob(repository, pushed, tmp_path / "blob")
        assert fetched.read_bytes() == b"plain http"
    assert transport._tls is None  # no TLS context was built for the registry's plain http
    client = httpx.Client(transport=transport)
    with pytest.raises(httpx.ConnectError):  # an https realm or redirect gets a verifying transport
        client.get(f"https://127.0.0.1:{free_port()}/token")
    assert isinstance(transport._tls, httpx.HTTPTransport)
    client.close()
