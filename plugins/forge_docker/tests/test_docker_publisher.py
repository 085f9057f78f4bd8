"""The docker publisher against a real registry (Debian's docker-registry on loopback)."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from forge_core.sdk import (
    REGISTRY_TOKEN_USERNAME,
    ConfigurationError,
    Descriptor,
    ExecutionContext,
    Family,
    Manifest,
    OciAuthError,
    OciError,
    OciNotFound,
    OciUnavailable,
    ProducedArtifact,
    PublishTarget,
    RegistryReference,
    WorkWithdrawn,
    open_store,
    parse_reference,
)
from forge_core.testing import PluginHost
from forge_core.testing.registry import USER, RegistryServer, TokenServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"

OneImage = Callable[..., tuple[str, str]]
TwoPlatforms = Callable[..., tuple[str, str, list[str]]]


@pytest.fixture
def publisher(forge_installed_host: PluginHost) -> Any:
    return forge_installed_host.create(Family.PUBLISHER, "docker")


def artifact(reference: str, *, name: str = "api", commit: str = COMMIT, **metadata: Any) -> ProducedArtifact:
    return ProducedArtifact(
        name=name, type="container", project="api", commit=commit, reference=reference, metadata=metadata
    )


def target(registry: RegistryServer, namespace: str, **settings: Any) -> PublishTarget:
    return PublishTarget(
        name="registry", type="docker", settings={"registry": registry.address, "namespace": namespace, **settings}
    )


def context(tmp_path: Path, lines: list[str], **fields: Any) -> ExecutionContext:
    return ExecutionContext(workdir=tmp_path, **{"log": lines.append, **fields})


def served_digest(reference: str, *, creds: tuple[str, str] | None = None) -> str:
    """The digest of what the registry serves, read by skopeo (an independent client)."""
    login = [f"--creds={creds[0]}:{creds[1]}"] if creds else []
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", *login, f"docker://{reference}"],
        check=True,
        capture_output=True,
    ).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def test_an_image_is_published_under_its_commit_version_and_alias_tags(
    publisher: Any, oci_registry: RegistryServer, one_image: OneImage, tmp_path: Path
) -> None:
    reference, digest = one_image(tmp_path / "api", {"app/hello": b"hello\n"})
    lines: list[str] = []
    location = publisher.publish(
        artifact(reference, tag="api/v1.2.0"),
        target(oci_registry, "tags", aliases=["latest"]),
        context(tmp_path, lines),
    )
    base = f"{oci_registry.address}/tags/api"
    assert location.uri == f"{base}:1.2.0@{digest}"
    assert location.digest == digest
    assert location.publisher == "registry" and location.type == "docker"
    assert location.metadata["tags"] == [f"sha-{COMMIT}", "1.2.0", "latest"]
    for tag in (f"sha-{COMMIT}", "1.2.0", "latest"):
        assert served_digest(f"{base}:{tag}") == digest
    assert sum("uploaded" in line for line in lines) == 2  # the config and the layer


def test_the_pulled_back_image_has_the_layouts_blobs(
    publisher: Any, oci_registry: RegistryServer, one_image: OneImage, tmp_path: Path
) -> None:
    reference, digest = one_image(tmp_path / "api", {"app/hello": b"pull me back\n"})
    publisher.publish(artifact(reference), target(oci_registry, "pull"), context(tmp_path, []))
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--preserve-digests",
         f"docker://{oci_registry.address}/pull/api:sha-{COMMIT}", f"oci:{tmp_path / 'back'}:back"],
        check=True, capture_output=True,
    )  # fmt: skip
    back = open_store(parse_reference(f"oci-layout:{tmp_path / 'back'}"))
    fetched = back.fetch_manifest("back", "back")
    assert fetched.descriptor.digest == digest
    assert isinstance(fetched.document, Manifest)
    layer = back.fetch_blob("back", fetched.document.layers[0], tmp_path / "layer.tar.gz")
    original = tmp_path / "api" / "blobs" / "sha256" / fetched.document.layers[0].digest.removeprefix("sha256:")
    assert layer.read_bytes() == original.read_bytes()


def test_a_layout_another_tool_wrote_keeps_its_digest(
    publisher: Any, oci_registry: RegistryServer, tmp_path: Path
) -> None:
    """Pretty-printed manifests without ``mediaType`` (as umoci writes them) are copied byte for byte."""
    layout = tmp_path / "foreign"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    config = blob(b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": [],
        },
        indent=2,
    ).encode()
    entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **blob(manifest)}
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}, indent=2))
    location = publisher.publish(
        artifact(f"oci-layout:{layout}"), target(oci_registry, "foreign"), context(tmp_path, [])
    )
    assert location.digest == entry["digest"]
    assert served_digest(f"{oci_registry.address}/foreign/api:sha-{COMMIT}") == entry["digest"]


def test_a_two_platform_index_is_copied_whole(
    publisher: Any, oci_registry: RegistryServer, two_platforms: TwoPlatforms, tmp_path: Path
) -> None:
    reference, digest, children = two_platforms(tmp_path / "multi", {"app/hello": b"everywhere\n"})
    location = publisher.publish(
        artifact(reference, version="2.0.0"), target(oci_registry, "multi"), context(tmp_path, [])
    )
    assert location.uri == f"{oci_registry.address}/multi/api:2.0.0@{digest}"
    assert served_digest(f"{oci_registry.address}/multi/api:2.0.0") == digest
    for child in children:
        assert served_digest(f"{oci_registry.address}/multi/api@{child}") == child


def test_publishing_again_sends_nothing_and_returns_the_same_digest(
    publisher: Any, oci_registry: RegistryServer, two_platforms: TwoPlatforms, tmp_path: Path
) -> None:
    reference, digest, _ = two_platforms(tmp_path / "again", {"app/hello": b"twice\n"})
    first = publisher.publish(artifact(reference), target(oci_registry, "again"), context(tmp_path, []))
    lines: list[str] = []
    second = publisher.publish(artifact(reference), target(oci_registry, "again"), context(tmp_path, lines))
    assert second == first and second.digest == digest
    assert not any("uploaded" in line or "mounted" in line for line in lines)
    assert any("already published" in line for line in lines)


def test_a_new_alias_moves_without_sending_blobs_again(
    publisher: Any, oci_registry: RegistryServer, one_image: OneImage, tmp_path: Path
) -> None:
    first, _ = one_image(tmp_path / "one", {"app/hello": b"one\n"})
    second, digest = one_image(tmp_path / "two", {"app/hello": b"two\n"})
    publisher.publish(artifact(first), target(oci_registry, "moving", aliases=["latest"]), context(tmp_path, []))
    publisher.publish(
        artifact(second, commit=OTHER_COMMIT), target(oci_registry, "moving", aliases=["latest"]), context(tmp_path, [])
    )
    assert served_digest(f"{oci_registry.address}/moving/api:latest") == digest


def test_an_immutable_tag_holding_another_image_is_refused_before_anything_is_sent(
    publisher: Any, oci_registry: RegistryServer, one_image: OneImage, tmp_path: Path
) -> None:
    first, first_digest = one_image(tmp_path / "first", {"app/hello": b"first\n"})
    other, other_digest = one_image(tmp_path / "other", {"app/hello": b"rebuilt differently\n"})
    publisher.publish(artifact(first, tag="v3.0.0"), target(oci_registry, "immutable"), context(tmp_path, []))
    lines: list[str] = []
    with pytest.raises(OciError, match=r"tag '3\.0\.0' already points at") as refused:
        publisher.publish(
            artifact(other, commit=OTHER_COMMIT, tag="v3.0.0"),
            target(oci_registry, "immutable"),
            context(tmp_path, lines),
        )
    assert refused.value.registry == oci_registry.address
    assert not any("uploaded" in line for line in lines)
    store = open_store(RegistryReference(oci_registry.address, "immutable/api"))
    assert store.resolve("immutable/api", "3.0.0").digest == first_digest
    with pytest.raises(OciNotFound):
        store.resolve("immutable/api", f"sha-{OTHER_COMMIT}")
    assert not store.blob_exists("immutable/api", _layer_of(tmp_path / "other", other_digest))


def _layer_of(layout: Path, digest: str) -> str:
    document = open_store(parse_reference(f"oci-layout:{layout}")).fetch_manifest(layout.name, digest).document
    assert isinstance(document, Manifest)
    return document.layers[0].digest


def test_blobs_another_repository_has_are_mounted(
    publisher: Any, oci_registry: RegistryServer, one_image: OneImage, tmp_path: Path
) -> None:
    reference, digest = one_image(tmp_path / "api", {"app/hello": b"shared base\n"})
    publisher.publish(artifact(reference, name="base"), target(oci_registry, "mount"), context(tmp_path, []))
    lines: list[str] = []
    publisher.publish(
        artifact(reference, name="api"),
        target(oci_registry, "mount", mountFrom=["mount/base"]),
        context(tmp_path, lines),
    )
    assert sum("mounted from mount/base" in line for line in lines) == 2
    assert not any("uploaded" in line for line in lines)
    assert served_digest(f"{oci_registry.address}/mount/api:sha-{COMMIT}") == digest


def test_credentials_come_from_the_context_secrets(
    publisher: Any, oci_registry_basic: RegistryServer, one_image: OneImage, tmp_path: Path
) -> None:
    reference, digest = one_image(tmp_path / "api", {"app/hello": b"private\n"})
    assert oci_registry_basic.password is not None
    secrets = {"username": USER, "password": oci_registry_basic.password}
    location = publisher.publish(
        artifact(reference), target(oci_registry_basic, "private"), context(tmp_path, [], secrets=secrets)
    )
    assert location.digest == digest


def test_refused_credentials_are_a_clear_error_that_never_shows_the_password(
    publisher: Any, oci_registry_basic: RegistryServer, one_image: OneImage, tmp_path: Path
) -> None:
    reference, _ = one_image(tmp_path / "api", {"app/hello": b"refused\n"})
    wrong = "not-the-password-" + "x" * 8
    lines: list[str] = []
    with pytest.raises(OciAuthError) as refused:
        publisher.publish(
            artifact(reference),
            target(oci_registry_basic, "refused"),
            context(tmp_path, lines, secrets={"username": USER, "password": wrong}),
        )
    assert refused.value.registry == oci_registry_basic.address
    assert wrong not in str(refused.value) and wrong not in repr(refused.value.details)
    assert not any(wrong in line for line in lines)


def test_a_user_name_without_a_password_is_refused_naming_the_target(
    publisher: Any, oci_registry: RegistryServer, one_image: OneImage, tmp_path: Path
) -> None:
    reference, _ = one_image(tmp_path / "api", {"app/hello": b"half\n"})
    with pytest.raises(ConfigurationError, match="'username' is given without 'password'") as refused:
        publisher.publish(
            artifact(reference),
            target(oci_registry, "half"),
            context(tmp_path, [], secrets={"username": "s3cret-user"}),
        )
    assert "docker target 'registry'" in str(refused.value) and "s3cret-user" not in str(refused.value)


@pytest.mark.parametrize("form", ["user:password", "password-only"])
def test_repo_cue_s_one_credentials_reference_logs_in_as_user_colon_password(
    publisher: Any, oci_registry_basic: RegistryServer, one_image: OneImage, tmp_path: Path, form: str
) -> None:
    """``repo.cue`` gives a target one reference (``ctx.secrets["default"]``): ``user:password``;
    a value without a colon is a token, sent as the password of ``REGISTRY_TOKEN_USERNAME`` — this
    registry's htpasswd knows only ``USER``, so the token form is refused, naming that user."""
    reference, digest = one_image(tmp_path / "api", {"app/hello": f"{form}\n".encode()})
    assert oci_registry_basic.password is not None
    if form == "user:password":
        secrets = {"default": f"{USER}:{oci_registry_basic.password}"}
        location = publisher.publish(
            artifact(reference), target(oci_registry_basic, "from-cue"), context(tmp_path, [], secrets=secrets)
        )
        assert location.digest == digest
        assert served_digest(f"{oci_registry_basic.address}/from-cue/api:sha-{COMMIT}",
                             creds=(USER, oci_registry_basic.password)) == digest
    else:
        with pytest.raises(OciAuthError, match=f"user {REGISTRY_TOKEN_USERNAME!r}") as refused:
            publisher.publish(
                artifact(reference),
                target(oci_registry_basic, "from-cue"),
                context(tmp_path, [], secrets={"default": oci_registry_basic.password}),
            )
        assert oci_registry_basic.password not in str(refused.value)


def test_a_token_alone_logs_in_to_a_bearer_token_registry(
    publisher: Any, one_image: OneImage, tmp_path: Path
) -> None:
    """A bearer-token registry whose token server, like those taking personal access tokens,
    accepts the token beside the user name forge sends for a token alone."""
    token = "pat-" + "7" * 24
    tokens = TokenServer(tmp_path, REGISTRY_TOKEN_USERNAME, token).start()
    registry = RegistryServer(tmp_path / "registry", auth=tokens.registry_auth()).start()
    try:
        reference, digest = one_image(tmp_path / "api", {"app/hello": b"token\n"})
        lines: list[str] = []
        location = publisher.publish(
            artifact(reference), target(registry, "tokened"), context(tmp_path, lines, secrets={"default": token})
        )
        assert location.digest == digest
        assert tokens.requests, "the registry never sent forge to its token server"
        assert served_digest(f"{registry.address}/tokened/api:sha-{COMMIT}",
                             creds=(REGISTRY_TOKEN_USERNAME, token)) == digest
        assert not any(token in line for line in lines)
    finally:
        registry.stop()
        tokens.stop()


def test_a_registry_down_mid_push_is_retried_then_fails_naming_it_and_sets_no_tag(
    publisher: Any, one_image: OneImage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="forge.oci")
    registry = RegistryServer(tmp_path / "registry").start()
    try:
        reference, _ = one_image(tmp_path / "api", {"app/hello": b"interrupted\n"})
        lines: list[str] = []

        def log(line: str) -> None:
            lines.append(line)
            if "uploaded" in line:  # the first blob is in: the registry goes away mid-push
                registry.stop()

        with pytest.raises(OciUnavailable, match="did not answer") as down:
            publisher.publish(artifact(reference), target(registry, "down"), context(tmp_path, [], log=log))
        assert down.value.registry == registry.address
        assert any("try 5 of 5" in record.getMessage() for record in caplog.records)
        assert sum("uploaded" in line for line in lines) == 1
        assert not any("published" in line for line in lines)
        registry.start()
        store = open_store(RegistryReference(registry.address, "down/api"))
        with pytest.raises(OciNotFound):
            store.resolve("down/api", f"sha-{COMMIT}")
    finally:
        registry.stop()


def test_a_withdrawn_publish_stops_between_blobs_and_sets_no_tag(
    publisher: Any, oci_registry: RegistryServer, one_image: OneImage, tmp_path: Path
) -> None:
    reference, _ = one_image(tmp_path / "api", {"app/hello": b"withdrawn\n"})
    stop = threading.Event()

    def log(line: str) -> None:
        if "uploaded" in line:
            stop.set()

    with pytest.raises(WorkWithdrawn):
        publisher.publish(
            artifact(reference), target(oci_registry, "withdrawn"), context(tmp_path, [], log=log, stop=stop)
        )
    with pytest.raises(OciNotFound):
        open_store(RegistryReference(oci_registry.address, "withdrawn/api")).resolve("withdrawn/api", f"sha-{COMMIT}")


def test_plan_computes_the_location_without_contacting_the_registry(
    publisher: Any, one_image: OneImage, tmp_path: Path
) -> None:
    reference, digest = one_image(tmp_path / "api", {"app/hello": b"planned\n"})
    unreachable = PublishTarget(
        name="registry", type="docker", settings={"registry": "127.0.0.1:9", "namespace": "acme", "aliases": ["latest"]}
    )
    planned = publisher.plan(artifact(reference, tag="api/v1.2.0"), unreachable)
    assert planned.uri == f"127.0.0.1:9/acme/api:1.2.0@{digest}"
    assert planned.metadata["tags"] == [f"sha-{COMMIT}", "1.2.0", "latest"]
    assert planned.metadata["planned"] is True


def test_an_untagged_layout_reference_takes_its_one_image(publisher: Any, one_image: OneImage, tmp_path: Path) -> None:
    _, digest = one_image(tmp_path / "api", {"app/hello": b"untagged\n"})
    unreachable = PublishTarget(name="registry", type="docker", settings={"registry": "127.0.0.1:9"})
    assert publisher.plan(artifact(f"oci-layout:{tmp_path / 'api'}"), unreachable).digest == digest


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        (None, "needs reference='oci-layout:PATH"),
        ("ghcr.io/acme/api:1.0", "is not an OCI image layout"),
        ("oci-layout:/nonexistent/api", "no oci-layout file"),
        ("oci-layout:build/api:latest", "must be absolute"),
    ],
)
def test_an_artifact_without_a_layout_is_refused_naming_it(publisher: Any, reference: str | None, message: str) -> None:
    broken = ProducedArtifact(name="api", type="container", project="api", commit=COMMIT, reference=reference)
    with pytest.raises(ConfigurationError, match=message) as refused:
        publisher.plan(broken, PublishTarget(name="registry", type="docker", settings={}))
    assert "artifact 'api'" in str(refused.value)


def test_an_artifact_digest_that_is_not_the_layouts_is_refused(
    publisher: Any, one_image: OneImage, tmp_path: Path
) -> None:
    reference, _ = one_image(tmp_path / "api", {"app/hello": b"digest\n"})
    wrong = artifact(reference).model_copy(update={"digest": "sha256:" + "0" * 64})
    with pytest.raises(OciError, match="the artifact says sha256:0000"):
        publisher.plan(wrong, PublishTarget(name="registry", type="docker", settings={}))


def test_a_release_version_that_is_no_valid_tag_is_refused(publisher: Any, one_image: OneImage, tmp_path: Path) -> None:
    reference, _ = one_image(tmp_path / "api", {"app/hello": b"bad tag\n"})
    with pytest.raises(OciError, match=r"bad tag '1\.2\.0\+build'"):
        publisher.plan(
            artifact(reference, tag="v1.2.0+build"), PublishTarget(name="registry", type="docker", settings={})
        )


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_a_2_gib_layer_is_streamed_to_the_registry_with_flat_memory(
    publisher: Any, tmp_path: Path
) -> None:
    """A 2 GiB layer (a sparse file: no disk or time spent writing it) pushed to a registry of its
    own, removed after; the process's resident memory is sampled throughout the push. ~30-60 s."""
    size = 2 * 1024**3
    folder = tmp_path / "big"
    store = open_store(parse_reference(f"oci-layout:{folder}"))
    config = store.push_blob("big", b'{"os":"linux"}', "application/vnd.oci.image.config.v1+json")
    zeros, block = hashlib.sha256(), bytes(8 * 1024**2)
    for _ in range(size // len(block)):
        zeros.update(block)
    digest = f"sha256:{zeros.hexdigest()}"
    blob = folder / "blobs" / "sha256" / zeros.hexdigest()
    with blob.open("wb") as sparse:
        sparse.truncate(size)
    layer = Descriptor(media_type="application/vnd.oci.image.layer.v1.tar", digest=digest, size=size)
    image = store.push_manifest("big", Manifest(config=config, layers=[layer]), tags=["v1"])
    registry = RegistryServer(tmp_path / "registry").start()
    peak, done = [_rss()], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak.append(_rss())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    try:
        location = publisher.publish(
            artifact(f"oci-layout:{folder}:v1", name="big"), target(registry, "large"), context(tmp_path, [])
        )
        took = time.monotonic() - started
        growth = max(peak) - peak[0]
        assert growth < 64 * 1024**2, f"memory grew by {growth / 1024**2:.0f} MiB pushing a 2 GiB layer"
        assert location.digest == image.digest
        assert registry.blob_file(digest).stat().st_size == size
        head = httpx.head(f"http://{registry.address}/v2/large/big/blobs/{digest}")
        assert (head.status_code, int(head.headers["Content-Length"])) == (200, size)
        print(f"2 GiB layer pushed in {took:.1f} s, resident memory grew by {growth / 1024**2:.1f} MiB")
    finally:
        done.set()
        sampler.join()
        registry.stop()
        shutil.rmtree(registry.storage, ignore_errors=True)  # 2 GiB of real zeros on the registry's side
        blob.unlink()


def _blob_uploads(requests: list[str]) -> list[str]:
    """The digests of the blob uploads the registry completed (``PUT …/blobs/uploads/…?digest=``)."""
    return [line.split("digest=")[1] for line in requests if line.startswith("PUT") and "digest=" in line]


def test_an_interrupted_publish_redelivered_sends_each_blob_once_and_keeps_the_digest(
    publisher: Any, one_image: OneImage, tmp_path: Path
) -> None:
    """A worker stopped mid-push (the job withdrawn after its first upload) and the job delivered
    again: the second publish completes with the same digest, and the registry's access log shows
    no blob uploaded twice (the one already there is skipped) and one manifest per tag."""
    registry = RegistryServer(tmp_path / "registry", access_log=True).start()
    try:
        reference, digest = one_image(tmp_path / "api", {"app/hello": b"redelivered\n"})
        stop = threading.Event()

        def log(line: str) -> None:
            if "uploaded" in line:
                stop.set()

        with pytest.raises(WorkWithdrawn):
            publisher.publish(artifact(reference), target(registry, "again"), context(tmp_path, [], log=log, stop=stop))
        first = registry.requests()
        assert not any(line.startswith("PUT /v2/again/api/manifests/") for line in first)

        lines: list[str] = []
        location = publisher.publish(artifact(reference), target(registry, "again"), context(tmp_path, lines))
        assert location.digest == digest == served_digest(f"{registry.address}/again/api:sha-{COMMIT}")
        uploads = _blob_uploads(registry.requests())
        assert _blob_uploads(first), "the interrupted publish uploaded nothing: the test would prove nothing"
        assert len(uploads) > len(_blob_uploads(first)) and len(uploads) == len(set(uploads)), uploads
        manifests = [line for line in registry.requests() if line.startswith("PUT /v2/again/api/manifests/")]
        assert manifests == [f"PUT /v2/again/api/manifests/sha-{COMMIT}"]

        # delivered a third time: nothing is sent at all
        before = len(registry.requests())
        publisher.publish(artifact(reference), target(registry, "again"), context(tmp_path, []))
        assert [line for line in registry.requests()[before:] if not line.startswith(("GET", "HEAD"))] == []
    finally:
        registry.stop()
