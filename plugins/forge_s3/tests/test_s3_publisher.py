"""The s3 publisher against a real moto server: keys, re-publishing, refusals, faults, streaming."""

import hashlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forge_core.sdk import (
    ConfigurationError,
    ExecutionContext,
    Family,
    ForgeError,
    ProducedArtifact,
    PublishTarget,
    WorkWithdrawn,
)
from forge_core.testing import PluginHost
from forge_s3.testing import MotoS3

MiB = 2**20


@pytest.fixture
def bucket(moto_s3: MotoS3) -> str:
    return moto_s3.bucket(f"forge-{uuid.uuid4().hex[:16]}")


@pytest.fixture
def publisher(forge_installed_host: PluginHost) -> Any:
    return forge_installed_host.create(Family.PUBLISHER, "s3")


def target(server: MotoS3, bucket: str, **settings: Any) -> PublishTarget:
    return PublishTarget(
        name="artifacts", type="s3", settings={"bucket": bucket, "endpointUrl": server.endpoint, **settings}
    )


def context(tmp_path: Path, secrets: dict[str, str], lines: list[str] | None = None, **given: Any) -> ExecutionContext:
    sink = lines.append if lines is not None else (lambda _line: None)
    return ExecutionContext(workdir=tmp_path, secrets=secrets, log=sink, **given)


def binary(
    tmp_path: Path, content: bytes = b"acmectl 1.2.0\n", name: str = "acmectl", **fields: Any
) -> ProducedArtifact:
    path = tmp_path / name
    path.write_bytes(content)
    return ProducedArtifact(name="acmectl", type="binary", project="cli", commit="c" * 40, files=(path,), **fields)


def key_pair(access_key_id: str, secret_access_key: str) -> dict[str, str]:
    return {"default": json.dumps({"access_key_id": access_key_id, "secret_access_key": secret_access_key})}


def keys(server: MotoS3, bucket: str) -> list[str]:
    return [o["Key"] for o in server.client().list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_the_key_has_project_artifact_version_and_file(
    publisher: Any, moto_s3: MotoS3, bucket: str, tmp_path: Path
) -> None:
    artifact = binary(tmp_path, metadata={"version": "1.2.0"})
    lines: list[str] = []
    location = publisher.publish(
        artifact, target(moto_s3, bucket, prefix="/releases/"), context(tmp_path, moto_s3.secrets, lines)
    )
    assert location.uri == f"s3://{bucket}/releases/cli/acmectl/1.2.0/acmectl"
    assert keys(moto_s3, bucket) == ["releases/cli/acmectl/1.2.0/acmectl"]
    got = moto_s3.client().get_object(Bucket=bucket, Key="releases/cli/acmectl/1.2.0/acmectl")
    assert got["Body"].read() == b"acmectl 1.2.0\n"
    assert got["ContentType"] == "application/octet-stream"
    assert lines == [f"s3: acmectl -> {location.uri}: uploaded"]


def test_an_archive_gets_its_content_type_and_the_commit_without_a_version(
    publisher: Any, moto_s3: MotoS3, bucket: str, tmp_path: Path
) -> None:
    archive = binary(tmp_path, b"\x1f\x8b not really", name="docs.tar.gz").model_copy(update={"type": "archive"})
    location = publisher.publish(archive, target(moto_s3, bucket), context(tmp_path, moto_s3.secrets))
    assert location.uri == f"s3://{bucket}/cli/acmectl/{'c' * 40}/docs.tar.gz"
    head = moto_s3.client().head_object(Bucket=bucket, Key=f"cli/acmectl/{'c' * 40}/docs.tar.gz")
    assert head["ContentType"] == "application/gzip"


def test_plan_computes_the_same_location_without_the_server(
    publisher: Any, moto_s3: MotoS3, bucket: str, tmp_path: Path
) -> None:
    artifact = binary(tmp_path, metadata={"version": "2.0.0"})
    nowhere = PublishTarget(
        name="artifacts", type="s3", settings={"bucket": bucket, "endpointUrl": "http://127.0.0.1:9"}
    )
    planned = publisher.plan(artifact, nowhere)
    published = publisher.publish(artifact, target(moto_s3, bucket), context(tmp_path, moto_s3.secrets))
    assert planned.uri == published.uri
    assert [o["key"] for o in planned.metadata["objects"]] == [o["key"] for o in published.metadata["objects"]]


def test_several_files_share_one_folder(publisher: Any, moto_s3: MotoS3, bucket: str, tmp_path: Path) -> None:
    linux, darwin = tmp_path / "acmectl-linux", tmp_path / "acmectl-darwin"
    linux.write_bytes(b"elf")
    darwin.write_bytes(b"macho")
    artifact = ProducedArtifact(name="acmectl", type="binary", project="cli", commit="c" * 40, files=(linux, darwin))
    location = publisher.publish(artifact, target(moto_s3, bucket), context(tmp_path, moto_s3.secrets))
    assert location.uri == f"s3://{bucket}/cli/acmectl/{'c' * 40}/"
    assert location.digest is None
    assert sorted(keys(moto_s3, bucket)) == [
        f"cli/acmectl/{'c' * 40}/acmectl-darwin",
        f"cli/acmectl/{'c' * 40}/acmectl-linux",
    ]
    assert {o["sha256"] for o in location.metadata["objects"]} == {
        hashlib.sha256(b).hexdigest() for b in (b"elf", b"macho")
    }


def test_publishing_the_same_file_again_is_a_no_op(
    publisher: Any, moto_s3: MotoS3, bucket: str, tmp_path: Path
) -> None:
    artifact = binary(tmp_path)
    first = publisher.publish(artifact, target(moto_s3, bucket), context(tmp_path, moto_s3.secrets))
    key = first.uri.split("/", 3)[3]
    before = moto_s3.client().head_object(Bucket=bucket, Key=key)
    lines: list[str] = []
    again = publisher.publish(artifact, target(moto_s3, bucket), context(tmp_path, moto_s3.secrets, lines))
    after = moto_s3.client().head_object(Bucket=bucket, Key=key)
    assert (again.uri, again.digest) == (first.uri, first.digest)
    assert again.metadata["objects"][0]["uploaded"] is False
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])
    assert lines == [f"s3: acmectl -> {first.uri}: already there (same SHA-256)"]


def test_a_different_object_at_the_key_is_refused_and_nothing_is_written(
    publisher: Any, moto_s3: MotoS3, bucket: str, tmp_path: Path
) -> None:
    first, second = tmp_path / "a-first", tmp_path / "b-second"
    first.write_bytes(b"one")
    second.write_bytes(b"two")
    folder = f"cli/acmectl/{'c' * 40}"
    moto_s3.client().put_object(Bucket=bucket, Key=f"{folder}/b-second", Body=b"someone else's")
    artifact = ProducedArtifact(name="acmectl", type="binary", project="cli", commit="c" * 40, files=(first, second))
    with pytest.raises(ForgeError) as refused:
        publisher.publish(artifact, target(moto_s3, bucket), context(tmp_path, moto_s3.secrets))
    assert f"s3://{bucket}/{folder}/b-second already holds a different object" in str(refused.value)
    assert "refusing to overwrite" in str(refused.value)
    # every key is checked before any upload: the first file was not written either
    assert keys(moto_s3, bucket) == [f"{folder}/b-second"]
    body = moto_s3.client().get_object(Bucket=bucket, Key=f"{folder}/b-second")["Body"].read()
    assert body == b"someone else's"


@pytest.mark.parametrize("wrong", ["secret", "key"])
def test_refused_credentials_give_a_clear_error_without_the_secret(
    publisher: Any, moto_s3: MotoS3, bucket: str, tmp_path: Path, wrong: str
) -> None:
    secret = "wR0ng-s3cr3t-" + uuid.uuid4().hex
    access_key_id = "AKIAFORGEUNKNOWN0000" if wrong == "key" else moto_s3.credentials["access_key_id"]
    secrets = key_pair(access_key_id, secret)
    lines: list[str] = []
    with pytest.raises(ForgeError) as refused:
        publisher.publish(binary(tmp_path), target(moto_s3, bucket), context(tmp_path, secrets, lines))
    message = str(refused.value)
    assert f"{moto_s3.endpoint} refused the credentials (access_key_id, secret_access_key)" in message
    assert "'artifacts'" in message
    assert secret not in message and secret not in repr(refused.value) and not any(secret in line for line in lines)
    assert refused.value.__cause__ is None and refused.value.__suppress_context__
    assert keys(moto_s3, bucket) == []


@pytest.mark.parametrize(
    ("secrets", "wrong"),
    [
        ({}, "has no credentials: give it a JSON object with access_key_id, secret_access_key"),
        ({"default": "AKIA:not-json-s3cr3t"}, "its credentials secret is not a JSON object"),
        ({"default": '["AKIA"]'}, "its credentials secret is not a JSON object"),
        ({"default": '{"access_key_id": "AKIA", "secret_access_key": ""}'}, "lacks secret_access_key"),
    ],
)
def test_unusable_credentials_are_named_without_their_value(
    publisher: Any, moto_s3: MotoS3, bucket: str, tmp_path: Path, secrets: dict[str, str], wrong: str
) -> None:
    with pytest.raises(ConfigurationError, match=wrong) as refused:
        publisher.publish(binary(tmp_path), target(moto_s3, bucket), context(tmp_path, secrets))
    assert "s3cr3t" not in str(refused.value) and "AKIA" not in str(refused.value)


def test_a_missing_bucket_is_named(publisher: Any, moto_s3: MotoS3, tmp_path: Path) -> None:
    with pytest.raises(ForgeError, match="the bucket 'forge-nowhere-at-all' does not exist"):
        publisher.publish(binary(tmp_path), target(moto_s3, "forge-nowhere-at-all"), context(tmp_path, moto_s3.secrets))


@pytest.mark.parametrize(
    ("fields", "wrong"),
    [({"metadata": {"version": "../1.0"}}, "version '../1.0'"), ({"project": "a/b"}, "project 'a/b'")],
)
def test_a_name_that_cannot_be_a_key_segment_is_refused(
    publisher: Any, moto_s3: MotoS3, bucket: str, tmp_path: Path, fields: dict[str, Any], wrong: str
) -> None:
    artifact = binary(tmp_path).model_copy(update=fields)
    with pytest.raises(ConfigurationError, match=wrong):
        publisher.plan(artifact, target(moto_s3, bucket))


@pytest.fixture
def closing_endpoint() -> Iterator[tuple[str, list[int]]]:
    """A loopback port that accepts every connection and closes it at once (a server going down)."""
    accepted: list[int] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    done.set()
    thread.join()
    listener.close()


def test_an_endpoint_that_drops_connections_is_retried_then_named(
    publisher: Any, closing_endpoint: tuple[str, list[int]], tmp_path: Path
) -> None:
    endpoint, accepted = closing_endpoint
    down = PublishTarget(
        name="artifacts", type="s3", settings={"bucket": "forge-down", "endpointUrl": endpoint, "maxAttempts": 3}
    )
    with pytest.raises(ForgeError) as failed:
        publisher.publish(binary(tmp_path), down, context(tmp_path, key_pair("a", "b")))
    assert f"{endpoint} cannot be reached after 3 attempts" in str(failed.value)
    assert len(accepted) == 3  # the first try and two retries


def test_a_closed_port_is_named(publisher: Any, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"  # bound, never listening: refused
        down = PublishTarget(
            name="artifacts", type="s3", settings={"bucket": "forge-down", "endpointUrl": endpoint, "maxAttempts": 2}
        )
        with pytest.raises(
            ForgeError, match=rf"{endpoint} cannot be reached after 2 attempts \(EndpointConnectionError\)"
        ):
            publisher.publish(binary(tmp_path), down, context(tmp_path, key_pair("a", "b")))


def large_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = hashlib.sha256(b"forge").digest() * (MiB // 32)
    with path.open("wb") as out:
        for i in range(size // MiB):
            chunk = i.to_bytes(8, "big") + block[8:]
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def test_a_withdrawn_multipart_upload_is_aborted(publisher: Any, moto_s3: MotoS3, bucket: str, tmp_path: Path) -> None:
    path = tmp_path / "acmectl"
    large_file(path, 20 * MiB)
    artifact = ProducedArtifact(name="acmectl", type="binary", project="cli", commit="c" * 40, files=(path,))
    stop = threading.Event()
    ctx = ExecutionContext(workdir=tmp_path, secrets=moto_s3.secrets, heartbeat=stop.set, stop=stop)
    with pytest.raises(WorkWithdrawn):
        publisher.publish(artifact, target(moto_s3, bucket), ctx)  # stop is set after the first part
    assert keys(moto_s3, bucket) == []
    assert moto_s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_a_200_mb_file_is_streamed_with_flat_memory(
    publisher: Any, moto_s3: MotoS3, bucket: str, tmp_path: Path
) -> None:
    path = tmp_path / "acmectl"
    expected = large_file(path, 200 * MiB)
    artifact = ProducedArtifact(name="acmectl", type="binary", project="cli", commit="c" * 40, files=(path,))
    peak, done = [_rss()], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak.append(_rss())
            time.sleep(0.02)

    baseline = peak[0]
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        location = publisher.publish(artifact, target(moto_s3, bucket), context(tmp_path, moto_s3.secrets))
    finally:
        done.set()
        sampler.join()
    growth = max(peak) - baseline
    assert growth < 48 * MiB, f"memory grew by {growth / MiB:.0f} MiB while uploading 200 MiB"
    assert location.digest == f"sha256:{expected}"
    head = moto_s3.client().head_object(Bucket=bucket, Key=location.uri.split("/", 3)[3])
    assert (head["ContentLength"], head["Metadata"]["sha256"]) == (200 * MiB, expected)


@pytest.mark.parametrize("same", [True, False])
def test_a_concurrent_writer_of_the_key_is_caught_by_the_conditional_put(
    publisher: Any, moto_s3: MotoS3, bucket: str, tmp_path: Path, same: bool
) -> None:
    """Another publisher writes the key between the check and the upload's completion."""
    path = tmp_path / "acmectl"
    large_file(path, 12 * MiB)
    artifact = ProducedArtifact(name="acmectl", type="binary", project="cli", commit="c" * 40, files=(path,))
    key = f"cli/acmectl/{'c' * 40}/acmectl"
    content = path.read_bytes() if same else b"someone else's"

    def concurrent_writer() -> None:  # called after each uploaded part
        if not keys(moto_s3, bucket):
            moto_s3.client().put_object(Bucket=bucket, Key=key, Body=content, ChecksumAlgorithm="SHA256")

    ctx = ExecutionContext(workdir=tmp_path, secrets=moto_s3.secrets, heartbeat=concurrent_writer)
    if same:
        location = publisher.publish(artifact, target(moto_s3, bucket), ctx)
        assert location.metadata["objects"][0]["uploaded"] is False
    else:
        with pytest.raises(ForgeError, match=f"s3://{bucket}/{key} already holds a different object"):
            publisher.publish(artifact, target(moto_s3, bucket), ctx)
    assert moto_s3.client().get_object(Bucket=bucket, Key=key)["Body"].read() == content
    assert moto_s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_invalid_settings_name_the_field_not_its_value(publisher: Any, tmp_path: Path) -> None:
    wrong = PublishTarget(name="artifacts", type="s3", settings={"bucket": "Private_Bucket", "maxAttempts": 0})
    with pytest.raises(ConfigurationError) as refused:
        publisher.plan(binary(tmp_path), wrong)
    message = str(refused.value)
    assert message.startswith("s3 target 'artifacts': invalid settings: bucket: String should match pattern")
    assert "maxAttempts: Input should be greater than or equal to 1" in message
    assert "Private_Bucket" not in message
