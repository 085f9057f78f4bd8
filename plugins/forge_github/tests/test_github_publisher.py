"""The github publisher against the GitHub stand-in (releases and assets endpoints on loopback)."""

from __future__ import annotations

import hashlib
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forge_core.sdk import (
    ConfigurationError,
    ExecutionContext,
    ProducedArtifact,
    PublishTarget,
    WorkWithdrawn,
)
from forge_github.api import GithubCredentialsRefused, GithubPublishError, GithubUnavailable
from forge_github.assets import UntaggedCommit
from forge_github.publisher import AssetConflict, GithubReleasePublisher
from forge_github.testing import GithubStandIn

TOKEN = "ghp_s3cretTOKENvalue"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "acme/monorepo"
TAG = "acmectl/v1.2.0"


class RecordingStop(threading.Event):
    """A stop event that records every wait the publisher makes (how long it backs off)."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return super().wait(timeout)


@pytest.fixture
def github() -> Iterator[GithubStandIn]:
    with GithubStandIn(token=TOKEN) as stand_in:
        yield stand_in


@pytest.fixture
def lines() -> list[str]:
    return []


@pytest.fixture
def ctx(tmp_path: Path, lines: list[str]) -> ExecutionContext:
    return ExecutionContext(workdir=tmp_path, secrets={"default": TOKEN}, log=lines.append, stop=RecordingStop())


def target(github: GithubStandIn, **settings: Any) -> PublishTarget:
    return PublishTarget(name="releases", type="github",
                         settings={"repository": REPO, "apiUrl": github.url, **settings})


def binary(tmp_path: Path, content: bytes = b"\x7fELF acmectl 1.2.0\n", **metadata: Any) -> ProducedArtifact:
    path = tmp_path / "out" / "acmectl"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    meta = {"tag": TAG, "platform": "linux/amd64", **metadata}
    return ProducedArtifact(name="acmectl", type="binary", project="cli", commit=COMMIT, files=(path,),
                            metadata={k: v for k, v in meta.items() if v is not None})


def archives(tmp_path: Path, platforms: dict[str, bytes]) -> ProducedArtifact:
    """One ``.tar.gz`` per platform, as a producer building for several platforms writes them."""
    files = {}
    for platform, content in platforms.items():
        path = tmp_path / f"docs_{platform.replace('/', '_')}.tar.gz"
        path.write_bytes(content)
        files[path] = platform
    return ProducedArtifact(
        name="docs", type="archive", project="docs", commit=COMMIT, files=tuple(files),
        metadata={"tag": "docs/v0.3.0", "platforms": {p.name: platform for p, platform in files.items()}},
    )


def test_creates_the_release_of_the_tag_and_uploads_the_binary(
    github: GithubStandIn, tmp_path: Path, ctx: ExecutionContext
) -> None:
    artifact = binary(tmp_path)
    location = GithubReleasePublisher().publish(artifact, target(github), ctx)

    release = github.release(REPO, TAG)
    assert release is not None
    assert (release["name"], release["target_commitish"], release["draft"], release["prerelease"]) == (
        TAG, COMMIT, False, False)
    [asset] = release["assets"]
    assert asset["name"] == "acmectl-linux-amd64"
    assert asset["content_type"] == "application/octet-stream"
    assert github.content(asset["id"]) == artifact.files[0].read_bytes()
    expected = f"sha256:{hashlib.sha256(artifact.files[0].read_bytes()).hexdigest()}"
    assert location.uri == asset["browser_download_url"]
    assert location.digest == expected == asset["digest"]
    assert location.metadata["releaseId"] == release["id"]
    assert location.metadata["releaseUrl"] == release["html_url"]
    assert location.metadata["assets"][0]["uploaded"] is True
    upload = next(r for r in github.requests if r.path.startswith("/uploads/"))
    assert upload.headers["Authorization"] == f"Bearer {TOKEN}"
    assert upload.headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert upload.headers["Accept"] == "application/vnd.github+json"
    assert upload.query["name"] == ["acmectl-linux-amd64"]


def test_several_platform_archives_become_one_asset_each(
    github: GithubStandIn, tmp_path: Path, ctx: ExecutionContext
) -> None:
    artifact = archives(tmp_path, {"linux/amd64": b"linux docs", "darwin/arm64": b"mac docs"})
    location = GithubReleasePublisher().publish(artifact, target(github, name="Docs {tag}", prerelease=True), ctx)

    release = github.release(REPO, "docs/v0.3.0")
    assert release is not None and release["name"] == "Docs docs/v0.3.0" and release["prerelease"] is True
    stored = {a["name"]: (github.content(a["id"]), a["content_type"]) for a in release["assets"]}
    assert stored == {"docs-linux-amd64.tar.gz": (b"linux docs", "application/gzip"),
                      "docs-darwin-arm64.tar.gz": (b"mac docs", "application/gzip")}
    assert location.uri == release["html_url"] and location.digest is None
    assert {a["name"]: a["digest"] for a in location.metadata["assets"]} == {
        a["name"]: a["digest"] for a in release["assets"]}


def test_a_rerun_uploads_nothing(github: GithubStandIn, tmp_path: Path, ctx: ExecutionContext) -> None:
    artifact = binary(tmp_path)
    first = GithubReleasePublisher().publish(artifact, target(github), ctx)
    uploads = github.uploads()

    again = GithubReleasePublisher().publish(artifact, target(github), ctx)

    assert github.uploads() == uploads == ["acmectl-linux-amd64"]
    assert (again.uri, again.digest) == (first.uri, first.digest)
    assert again.metadata["assets"][0]["uploaded"] is False
    assert len(github.releases) == 1


def test_without_a_digest_field_the_existing_asset_is_downloaded_and_compared(
    github: GithubStandIn, tmp_path: Path, ctx: ExecutionContext, lines: list[str]
) -> None:
    github.digests = False  # a server from before GitHub added ``digest`` to assets
    artifact = binary(tmp_path)
    GithubReleasePublisher().publish(artifact, target(github), ctx)

    GithubReleasePublisher().publish(artifact, target(github), ctx)

    assert github.uploads() == ["acmectl-linux-amd64"]
    assert any("/releases/download/" in r.path for r in github.requests)
    assert any("downloading it to compare" in line for line in lines)


def test_an_asset_with_different_content_is_refused_and_nothing_is_uploaded(
    github: GithubStandIn, tmp_path: Path, ctx: ExecutionContext
) -> None:
    GithubReleasePublisher().publish(binary(tmp_path, b"first build"), target(github), ctx)
    changed = binary(tmp_path, b"another build")
    extra = tmp_path / "out" / "acmectl.sig"
    extra.write_bytes(b"signature")
    both = changed.model_copy(update={"files": (*changed.files, extra),
                                      "metadata": {"tag": TAG, "platforms": {"acmectl": "linux/amd64"}}})

    with pytest.raises(AssetConflict) as refused:
        GithubReleasePublisher().publish(both, target(github), ctx)

    assert "acmectl-linux-amd64" in str(refused.value) and "refusing to overwrite" in str(refused.value)
    assert "releases" in str(refused.value)  # names the target
    assert github.uploads() == ["acmectl-linux-amd64"]  # neither the conflicting nor the new file
    release = github.release(REPO, TAG)
    assert release is not None
    assert [github.content(a["id"]) for a in release["assets"]] == [b"first build"]


def test_replace_deletes_the_different_asset_and_uploads_the_new_one(
    github: GithubStandIn, tmp_path: Path, ctx: ExecutionContext
) -> None:
    GithubReleasePublisher().publish(binary(tmp_path, b"first build"), target(github), ctx)

    location = GithubReleasePublisher().publish(binary(tmp_path, b"second build"), target(github, replace=True), ctx)

    release = github.release(REPO, TAG)
    assert release is not None
    [asset] = release["assets"]
    assert github.content(asset["id"]) == b"second build"
    assert location.digest == f"sha256:{hashlib.sha256(b'second build').hexdigest()}"
    assert any(r.method == "DELETE" for r in github.requests)


def test_a_commit_without_a_tag_is_refused_before_contacting_github(
    github: GithubStandIn, tmp_path: Path, ctx: ExecutionContext
) -> None:
    with pytest.raises(UntaggedCommit) as refused:
        GithubReleasePublisher().publish(binary(tmp_path, tag=None), target(github), ctx)

    assert "the github publisher publishes only tagged commits" in str(refused.value)
    assert "acmectl" in str(refused.value) and "releases" in str(refused.value)
    assert github.requests == []


def test_a_refused_token_is_a_clear_error_that_never_shows_it(
    github: GithubStandIn, tmp_path: Path, lines: list[str]
) -> None:
    wrong = "ghp_wrongTOKENvalue"
    ctx = ExecutionContext(workdir=tmp_path, secrets={"default": wrong}, log=lines.append)

    with pytest.raises(GithubCredentialsRefused) as refused:
        GithubReleasePublisher().publish(binary(tmp_path), target(github), ctx)

    message = str(refused.value)
    assert "401" in message and "Bad credentials" in message and "releases" in message
    assert wrong not in message and all(wrong not in line for line in lines)
    assert github.release(REPO, TAG) is None


def test_a_target_without_credentials_is_a_configuration_error(github: GithubStandIn, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no credentials"):
        GithubReleasePublisher().publish(binary(tmp_path), target(github), ExecutionContext(workdir=tmp_path))
    assert github.requests == []


def test_server_errors_are_retried_until_the_upload_succeeds(
    github: GithubStandIn, tmp_path: Path, ctx: ExecutionContext, lines: list[str]
) -> None:
    github.fail(502, times=2, on="/uploads/")
    github.fail(503, on="/releases/tags/")

    location = GithubReleasePublisher().publish(binary(tmp_path), target(github), ctx)

    assert github.uploads() == ["acmectl-linux-amd64"] * 3
    release = github.release(REPO, TAG)
    assert release is not None and [a["name"] for a in release["assets"]] == ["acmectl-linux-amd64"]
    assert location.uri == release["assets"][0]["browser_download_url"]
    assert sum("retrying" in line for line in lines) == 3
    assert isinstance(ctx.stop, RecordingStop) and ctx.stop.waits == [0.5, 0.5, 1.0]  # backoff per request


def test_github_down_for_every_attempt_fails_naming_the_call(
    github: GithubStandIn, tmp_path: Path, ctx: ExecutionContext
) -> None:
    github.fail(500, times=10, on="/uploads/")

    with pytest.raises(GithubUnavailable) as failed:
        GithubReleasePublisher().publish(binary(tmp_path), target(github, attempts=2), ctx)

    assert "uploading acmectl-linux-amd64" in str(failed.value) and "after 2 attempts" in str(failed.value)
    release = github.release(REPO, TAG)
    assert release is not None and release["assets"] == []


def test_an_unreachable_api_is_retried_then_named(tmp_path: Path, ctx: ExecutionContext) -> None:
    stand_in = GithubStandIn(token=TOKEN).start()
    stand_in.stop()  # nothing listens on its port now

    with pytest.raises(GithubUnavailable) as failed:
        GithubReleasePublisher().publish(binary(tmp_path), target(stand_in, attempts=2), ctx)

    assert "ConnectError" in str(failed.value) and stand_in.url in str(failed.value)


def test_a_429_with_retry_after_is_honoured(
    github: GithubStandIn, tmp_path: Path, ctx: ExecutionContext
) -> None:
    github.fail(429, on="/releases/tags/", headers={"Retry-After": "1"})

    started = time.monotonic()
    GithubReleasePublisher().publish(binary(tmp_path), target(github), ctx)

    assert isinstance(ctx.stop, RecordingStop) and ctx.stop.waits == [1.0]
    assert time.monotonic() - started >= 1.0
    assert github.uploads() == ["acmectl-linux-amd64"]


def test_an_exhausted_rate_limit_waits_for_its_reset(
    github: GithubStandIn, tmp_path: Path, ctx: ExecutionContext
) -> None:
    reset = int(time.time()) + 1
    github.fail(403, on="/releases/tags/", headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)})

    GithubReleasePublisher().publish(binary(tmp_path), target(github), ctx)

    assert isinstance(ctx.stop, RecordingStop) and len(ctx.stop.waits) == 1
    assert 0 < (ctx.stop.waits[0] or 0) <= 2.5
    assert github.uploads() == ["acmectl-linux-amd64"]


def test_a_rate_limit_longer_than_max_wait_fails_at_once(
    github: GithubStandIn, tmp_path: Path, ctx: ExecutionContext
) -> None:
    reset = int(time.time()) + 3600
    github.fail(403, on="/releases/tags/", headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)})

    with pytest.raises(GithubUnavailable, match=r"rate limit.*maxWait"):
        GithubReleasePublisher().publish(binary(tmp_path), target(github, maxWait=5), ctx)

    assert isinstance(ctx.stop, RecordingStop) and ctx.stop.waits == []


def test_an_upload_that_landed_although_its_answer_was_lost_is_not_repeated(
    github: GithubStandIn, tmp_path: Path, ctx: ExecutionContext
) -> None:
    github.fail(502, on="/uploads/", after=True)  # stored, then answered 502

    location = GithubReleasePublisher().publish(binary(tmp_path), target(github), ctx)

    release = github.release(REPO, TAG)
    assert release is not None and len(release["assets"]) == 1
    assert location.digest == release["assets"][0]["digest"]
    assert len(github.uploads()) == 2  # the retry was answered 422 already_exists, then compared


def test_a_broken_off_upload_is_deleted_and_made_again(
    github: GithubStandIn, tmp_path: Path, ctx: ExecutionContext
) -> None:
    artifact = binary(tmp_path)
    GithubReleasePublisher().publish(artifact, target(github), ctx)
    [asset] = github.assets.values()
    asset.update(state="starter", size=3, digest=None)  # what an interrupted upload leaves on GitHub

    GithubReleasePublisher().publish(artifact, target(github), ctx)

    release = github.release(REPO, TAG)
    assert release is not None
    [again] = release["assets"]
    assert again["state"] == "uploaded" and github.content(again["id"]) == artifact.files[0].read_bytes()


def test_every_page_of_assets_is_read(github: GithubStandIn, tmp_path: Path, ctx: ExecutionContext) -> None:
    files = []
    for number in range(105):  # more than one page of 100
        path = tmp_path / f"part-{number:03}.txt"
        path.write_text(f"part {number}\n")
        files.append(path)
    artifact = ProducedArtifact(name="parts", type="archive", project="docs", commit=COMMIT, files=tuple(files),
                                metadata={"tag": TAG})
    GithubReleasePublisher().publish(artifact, target(github), ctx)

    GithubReleasePublisher().publish(artifact, target(github), ctx)

    assert len(github.uploads()) == 105
    assert any(r.query.get("page") == ["2"] for r in github.requests)


def test_a_50_mb_file_is_streamed(github: GithubStandIn, tmp_path: Path, ctx: ExecutionContext) -> None:
    size = 50 * 2**20
    big = tmp_path / "out" / "acmectl"
    big.parent.mkdir()
    with big.open("wb") as out:
        for number in range(50):
            out.write(bytes([number]) * 2**20)
    artifact = ProducedArtifact(name="acmectl", type="binary", project="cli", commit=COMMIT, files=(big,),
                                metadata={"tag": TAG, "platform": "linux/arm64"})

    tracemalloc.start()
    try:
        location = GithubReleasePublisher().publish(artifact, target(github), ctx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < size / 5, f"peak {peak} bytes for a {size}-byte upload"  # client and stand-in together
    release = github.release(REPO, TAG)
    assert release is not None and release["assets"][0]["size"] == size
    digest = hashlib.sha256()
    with big.open("rb") as stream:
        while chunk := stream.read(2**20):
            digest.update(chunk)
    assert location.digest == release["assets"][0]["digest"] == f"sha256:{digest.hexdigest()}"


def test_a_withdrawn_publish_stops_between_chunks(github: GithubStandIn, tmp_path: Path) -> None:
    stop = threading.Event()
    beats = 0

    def heartbeat() -> None:
        nonlocal beats
        beats += 1
        if beats == 2:
            stop.set()

    big = tmp_path / "big"
    big.write_bytes(b"x" * 8 * 2**20)
    artifact = ProducedArtifact(name="big", type="binary", project="cli", commit=COMMIT, files=(big,),
                                metadata={"tag": TAG})
    ctx = ExecutionContext(workdir=tmp_path, secrets={"default": TOKEN}, stop=stop, heartbeat=heartbeat)

    with pytest.raises(WorkWithdrawn):
        GithubReleasePublisher().publish(artifact, target(github), ctx)

    release = github.release(REPO, TAG)
    assert release is not None and all(a["state"] != "uploaded" for a in release["assets"])
    # the next run deletes what the withdrawn upload left and uploads it whole
    ctx = ExecutionContext(workdir=tmp_path, secrets={"default": TOKEN})
    location = GithubReleasePublisher().publish(artifact, target(github), ctx)
    release = github.release(REPO, TAG)
    assert release is not None
    [asset] = release["assets"]
    assert asset["state"] == "uploaded" and asset["size"] == big.stat().st_size == 8 * 2**20
    assert location.digest == asset["digest"]


def test_plan_contacts_nothing_and_predicts_the_publish(
    github: GithubStandIn, tmp_path: Path, ctx: ExecutionContext
) -> None:
    artifact = archives(tmp_path, {"linux/amd64": b"linux docs", "windows/amd64": b"windows docs"})

    planned = GithubReleasePublisher().plan(artifact, target(github))

    assert github.requests == []
    assert planned.metadata["tag"] == "docs/v0.3.0" and planned.metadata["releaseId"] is None
    assert [a["name"] for a in planned.metadata["assets"]] == ["docs-linux-amd64.tar.gz", "docs-windows-amd64.tar.gz"]
    published = GithubReleasePublisher().publish(artifact, target(github), ctx)
    assert planned.uri == published.uri
    assert [a["url"] for a in planned.metadata["assets"]] == [a["url"] for a in published.metadata["assets"]]


def test_plan_for_github_com_names_its_download_urls(tmp_path: Path) -> None:
    publish_to = PublishTarget(name="releases", type="github", settings={"repository": REPO})

    planned = GithubReleasePublisher().plan(binary(tmp_path, version="1.2.0"), publish_to)

    assert planned.uri == f"https://github.com/{REPO}/releases/download/{TAG}/acmectl-linux-amd64"


@pytest.mark.parametrize(
    ("settings", "metadata", "message"),
    [
        ({"assetName": "{artifact}-{flavour}"}, {}, "unknown placeholder {flavour}"),
        ({"assetName": "{artifact}-{version}"}, {}, "uses {version}, but the artifact gives none"),
        ({"assetName": "{project}"}, {"platform": None}, None),
        ({"assetName": "acme ctl"}, {}, "characters GitHub would replace"),
        ({}, {"platform": "linux"}, "not os/arch"),
        ({"repository": "monorepo"}, {}, "invalid settings: repository"),
        ({"replace": "sometimes"}, {}, "invalid settings: replace"),
    ],
)
def test_bad_settings_and_metadata_are_named(
    settings: dict[str, Any], metadata: dict[str, Any], message: str | None, tmp_path: Path
) -> None:
    publish_to = PublishTarget(name="releases", type="github", settings={"repository": REPO, **settings})
    artifact = binary(tmp_path, **metadata)
    if message is None:
        assert GithubReleasePublisher().plan(artifact, publish_to).metadata["assets"][0]["name"] == "cli"
        return
    with pytest.raises(ConfigurationError) as refused:
        GithubReleasePublisher().plan(artifact, publish_to)
    assert message in str(refused.value) and "github target 'releases'" in str(refused.value)


def test_two_files_of_one_asset_name_are_refused(tmp_path: Path) -> None:
    one, two = tmp_path / "a", tmp_path / "b"
    one.write_bytes(b"1")
    two.write_bytes(b"2")
    artifact = ProducedArtifact(name="x", type="binary", project="cli", commit=COMMIT, files=(one, two),
                                metadata={"tag": TAG, "platform": "linux/amd64"})
    publish_to = PublishTarget(name="releases", type="github", settings={"repository": REPO})

    with pytest.raises(ConfigurationError, match="several files the asset name x-linux-amd64"):
        GithubReleasePublisher().plan(artifact, publish_to)


def test_a_file_of_2_gib_or_more_is_refused_before_contacting_github(
    github: GithubStandIn, tmp_path: Path, ctx: ExecutionContext
) -> None:
    huge = tmp_path / "acmectl"
    with huge.open("wb") as sparse:
        sparse.truncate(2**31)  # sparse: no disk, no memory
    artifact = ProducedArtifact(name="acmectl", type="binary", project="cli", commit=COMMIT, files=(huge,),
                                metadata={"tag": TAG})

    with pytest.raises(GithubPublishError, match="under 2 GiB"):
        GithubReleasePublisher().publish(artifact, target(github), ctx)
    assert github.requests == []
