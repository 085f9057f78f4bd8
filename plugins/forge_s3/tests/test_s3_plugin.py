import base64
import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest
import s3fs
from pydantic import ValidationError

from forge_core.sdk import ExecutionContext, Family, ProducedArtifact, PublishedLocation, PublishTarget
from forge_core.testing import PluginHost
from forge_core.testing.contracts import PublisherContract
from forge_s3.testing import MotoS3


def fresh_bucket(server: MotoS3) -> str:
    return server.bucket(f"forge-{uuid.uuid4().hex[:16]}")


class TestS3Publisher(PublisherContract):
    plugin_id = "forge_s3"
    distribution = "catalyst-forge-s3"
    names = ("s3",)

    @pytest.fixture(autouse=True)
    def _server(self, moto_s3: MotoS3) -> None:
        self.server = moto_s3

    def target_settings(self, name: str, tmp_path: Path) -> dict[str, Any]:
        return {"bucket": fresh_bucket(self.server), "prefix": "releases", "endpointUrl": self.server.endpoint}

    def case(self, name: str, tmp_path: Path) -> tuple[ProducedArtifact, PublishTarget, ExecutionContext]:
        artifact, target, _ = super().case(name, tmp_path)
        return artifact, target, ExecutionContext(workdir=tmp_path, secrets=self.server.secrets)

    def verify(self, name: str, result: Any, case: Any) -> None:
        artifact, target, _ = case
        payload = artifact.files[0].read_bytes()
        expected = hashlib.sha256(payload).hexdigest()
        assert (
            result.uri == f"s3://{target.settings['bucket']}/releases/demo/contract/{'0' * 40}/{artifact.files[0].name}"
        )
        assert result.digest == f"sha256:{expected}"
        # read back through an independent client (fsspec's s3fs), checksum included
        fs = s3fs.S3FileSystem(
            endpoint_url=self.server.endpoint,
            key=self.server.credentials["access_key_id"],
            secret=self.server.credentials["secret_access_key"],
        )
        path = result.uri.removeprefix("s3://")
        with fs.open(path, "rb") as stream:
            assert hashlib.sha256(stream.read()).hexdigest() == expected
        head = self.server.client().head_object(
            Bucket=target.settings["bucket"], Key=path.split("/", 1)[1], ChecksumMode="ENABLED"
        )
        assert head["Metadata"]["sha256"] == expected
        assert bytes.fromhex(expected) == base64.b64decode(head["ChecksumSHA256"])


def test_s3_publishes_binaries_and_archives(forge_installed_host: PluginHost) -> None:
    assert forge_installed_host.get(Family.PUBLISHER, "s3").options["artifact_types"] == ("binary", "archive")


def test_an_s3_target_names_a_valid_bucket(forge_installed_host: PluginHost) -> None:
    schema = forge_installed_host.get(Family.PUBLISHER, "s3").options["settings"]
    target = schema.model_validate(
        {"bucket": "acme-artifacts", "prefix": "releases", "endpointUrl": "http://127.0.0.1:9000"}
    )
    assert (target.bucket, target.prefix, target.endpoint_url) == (
        "acme-artifacts",
        "releases",
        "http://127.0.0.1:9000",
    )
    assert target.max_attempts == 5
    for wrong in (
        {},
        {"bucket": "Acme_Artifacts"},
        {"bucket": "acme", "endpoint": "http://127.0.0.1"},
        {"bucket": "acme", "maxAttempts": 0},
    ):
        with pytest.raises(ValidationError):
            schema.model_validate(wrong)


def test_the_location_is_a_published_location(forge_installed_host: PluginHost, tmp_path: Path) -> None:
    """``plan`` is a method of this plugin's publisher (not of the protocol)."""
    publisher = forge_installed_host.create(Family.PUBLISHER, "s3")
    payload = tmp_path / "acmectl"
    payload.write_bytes(b"x")
    artifact = ProducedArtifact(name="acmectl", type="binary", project="cli", commit="a" * 40, files=(payload,))
    target = PublishTarget(name="bucket", type="s3", settings={"bucket": "acme-artifacts"})
    planned = publisher.plan(artifact, target)
    assert isinstance(planned, PublishedLocation)
    assert planned.uri == f"s3://acme-artifacts/cli/acmectl/{'a' * 40}/acmectl"
