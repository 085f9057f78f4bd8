"""The ``s3`` publisher: uploads an artifact's files to a bucket, never overwriting a different object.

Keys are ``<prefix>/<project>/<artifact>/<version>/<file name>``, the version being the artifact's
``metadata["version"]`` when set, else its commit. Each object carries its content type and its
SHA-256 twice: S3's own ``ChecksumSHA256`` (checked by the server on every request) and the
whole file's hex digest in the ``x-amz-meta-sha256`` metadata (a multipart object's S3 checksum
is a checksum of its parts' checksums, so the metadata is what a reader compares).

It talks to S3 through botocore's synchronous client rather than s3fs: s3fs's ``put_file``
reads a file below two chunks (100 MiB) whole into memory, drops the per-part checksums of a
multipart upload and cannot be interrupted between parts, and all three matter here.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import mimetypes
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError
from pydantic import ValidationError

from forge_core.sdk import (
    ConfigurationError,
    ExecutionContext,
    ForgeError,
    ProducedArtifact,
    PublishedLocation,
    PublishTarget,
    WorkWithdrawn,
)
from forge_s3.settings import S3TargetSettings

PART_SIZE = 8 * 2**20
"""Bytes per multipart part (and the largest file sent in one request): the memory one upload holds."""

HASH_CHUNK = 2**20

CREDENTIALS = ("access_key_id", "secret_access_key")
"""The fields the target's credentials secret (``default``: the one ``credentials`` reference of a
``repo.cue`` publisher) must hold as a JSON object; ``session_token`` is optional."""

_CLIENTS = threading.Lock()  # a botocore session is not thread-safe; its clients are

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_REFUSED = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken", "403"}
_PRECONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3PublishError(ForgeError):
    """An upload that could not be made; the message names the target, the endpoint or the key."""

    code = "s3_publish_failed"


@dataclass(frozen=True)
class _Object:
    """One file of the artifact and the object it becomes."""

    path: Path
    key: str
    content_type: str


@dataclass(frozen=True)
class _Plan:
    settings: S3TargetSettings
    objects: tuple[_Object, ...]

    def uri(self, key: str) -> str:
        return f"s3://{self.settings.bucket}/{key}"

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint_url or f"the S3 endpoint of region {self.region}"

    @property
    def region(self) -> str:
        return self.settings.region or "us-east-1"


class S3Publisher:
    def plan(self, artifact: ProducedArtifact, target: PublishTarget) -> PublishedLocation:
        """Where ``publish`` would put ``artifact``, computed without contacting the server."""
        plan = _plan(artifact, target)
        return _location(plan, target, [{"key": o.key, "contentType": o.content_type} for o in plan.objects])

    def publish(self, artifact: ProducedArtifact, target: PublishTarget, ctx: ExecutionContext) -> PublishedLocation:
        _check_stop(ctx)
        plan = _plan(artifact, target)
        client = _client(plan, target, ctx.secrets)
        try:
            return _Upload(plan, target, ctx, client).run()
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, plan, target) from None
        finally:
            client.close()


class _Upload:
    """One publish: check every key first (nothing is written if one is refused), then upload."""

    def __init__(self, plan: _Plan, target: PublishTarget, ctx: ExecutionContext, client: Any) -> None:
        self.plan, self.target, self.ctx, self.client = plan, target, ctx, client
        self.bucket = plan.settings.bucket

    def run(self) -> PublishedLocation:
        digests = {o.key: _sha256(o.path, self.ctx) for o in self.plan.objects}
        existing = {o.key: self._existing(o.key, digests[o.key]) for o in self.plan.objects}
        described: list[dict[str, Any]] = []
        for obj in self.plan.objects:
            hexdigest = digests[obj.key]
            uploaded = not existing[obj.key] and self._put(obj, hexdigest)
            state = "uploaded" if uploaded else "already there (same SHA-256)"
            self.ctx.log(f"s3: {obj.path.name} -> {self.plan.uri(obj.key)}: {state}")
            described.append(
                {
                    "key": obj.key,
                    "contentType": obj.content_type,
                    "sha256": hexdigest,
                    "size": obj.path.stat().st_size,
                    "uploaded": uploaded,
                }
            )
        return _location(self.plan, self.target, described)

    def _existing(self, key: str, hexdigest: str) -> bool:
        """Whether ``key`` already holds this content; a different object there is refused."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return False
            raise
        stored = head.get("Metadata", {}).get("sha256")
        if stored is None:
            # An object someone else uploaded: a whole-object S3 checksum is the file's SHA-256.
            stored = _whole_object_hex(head)
        if stored != hexdigest:
            raise S3PublishError(
                f"s3 target {self.target.name!r}: {self.plan.uri(key)} already holds a different object "
                f"(SHA-256 {stored or 'not recorded'}, this file's is {hexdigest}); refusing to overwrite it"
            )
        return True

    def _put(self, obj: _Object, hexdigest: str) -> bool:
        """Upload ``obj`` unless the key appeared meanwhile (then it must hold the same content)."""
        fields = {
            "Bucket": self.bucket,
            "Key": obj.key,
            "ContentType": obj.content_type,
            "Metadata": {"sha256": hexdigest},
        }
        size = obj.path.stat().st_size
        try:
            if size <= PART_SIZE:
                with obj.path.open("rb") as body:
                    checksum = _b64(bytes.fromhex(hexdigest))
                    self.client.put_object(
                        Body=body,
                        ContentLength=size,
                        ChecksumAlgorithm="SHA256",
                        ChecksumSHA256=checksum,
                        IfNoneMatch="*",
                        **fields,
                    )
            else:
                self._put_parts(obj, fields)
        except ClientError as exc:
            if _code(exc) not in _PRECONDITION:
                raise
            return not self._existing(obj.key, hexdigest)  # a concurrent publisher won the race
        return True

    def _put_parts(self, obj: _Object, fields: Mapping[str, Any]) -> None:
        upload = self.client.create_multipart_upload(ChecksumAlgorithm="SHA256", **fields)["UploadId"]
        ids = {"Bucket": self.bucket, "Key": obj.key, "UploadId": upload}
        try:
            parts = []
            for number, chunk in enumerate(_chunks(obj.path, PART_SIZE), start=1):
                _check_stop(self.ctx)
                checksum = _b64(hashlib.sha256(chunk).digest())
                sent = self.client.upload_part(
                    Body=chunk, PartNumber=number, ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum, **ids
                )
                parts.append({"PartNumber": number, "ETag": sent["ETag"], "ChecksumSHA256": checksum})
                self.ctx.heartbeat()
            self.client.complete_multipart_upload(MultipartUpload={"Parts": parts}, IfNoneMatch="*", **ids)
        except BaseException:
            # the first error is the one to report; a failed abort is left to the bucket's lifecycle rules
            with contextlib.suppress(ClientError, BotoCoreError):
                self.client.abort_multipart_upload(**ids)
            raise


def _plan(artifact: ProducedArtifact, target: PublishTarget) -> _Plan:
    try:
        settings = S3TargetSettings.model_validate(target.settings)
    except ValidationError as exc:
        # field and reason only: pydantic's own text repeats the values
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"s3 target {target.name!r}: invalid settings: {problems}") from None
    version = artifact.metadata.get("version") or artifact.commit
    segments = {"project": artifact.project, "artifact": artifact.name, "version": str(version)}
    for what, value in segments.items():
        if not _SEGMENT.match(value):
            raise ConfigurationError(
                f"s3 target {target.name!r}: the artifact's {what} {value!r} cannot be a key segment "
                "(letters, digits, '.', '_', '+', '-'; not starting with a dot)",
            )
    if not artifact.files:
        raise ConfigurationError(f"s3 target {target.name!r}: artifact {artifact.name!r} has no files to upload")
    base = "/".join(p for p in (settings.prefix.strip("/"), *segments.values()) if p)
    objects = []
    for path in artifact.files:
        if not path.is_file():
            raise S3PublishError(f"s3 target {target.name!r}: {path} is not a file (artifact {artifact.name!r})")
        objects.append(_Object(path, f"{base}/{path.name}", _content_type(path)))
    if len({o.key for o in objects}) < len(objects):
        raise ConfigurationError(
            f"s3 target {target.name!r}: artifact {artifact.name!r} has two files of the same name"
        )
    return _Plan(settings, tuple(objects))


def _credentials(target: PublishTarget, secrets: Mapping[str, str]) -> dict[str, str]:
    """The key pair (and session token) from the target's JSON credentials secret; never echoed."""
    wanted = f"a JSON object with {', '.join(CREDENTIALS)} (and optionally session_token)"
    if "default" not in secrets:
        raise ConfigurationError(f"s3 target {target.name!r} has no credentials: give it {wanted}")
    try:
        fields = json.loads(secrets["default"])
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        raise ConfigurationError(f"s3 target {target.name!r}: its credentials secret is not {wanted}") from None
    missing = [name for name in CREDENTIALS if not isinstance(fields.get(name), str) or not fields[name]]
    if missing:
        raise ConfigurationError(
            f"s3 target {target.name!r}: its credentials secret lacks {', '.join(missing)} (it must be {wanted})",
        )
    token = fields.get("session_token")
    return {**{name: fields[name] for name in CREDENTIALS}, **({"session_token": token} if token else {})}


def _client(plan: _Plan, target: PublishTarget, secrets: Mapping[str, str]) -> Any:
    credentials = _credentials(target, secrets)
    config = Config(
        retries={"total_max_attempts": plan.settings.max_attempts, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        # S3-compatible servers on a plain host name or address only understand path-style keys
        s3={"addressing_style": "path"} if plan.settings.endpoint_url else None,
        # the checksums are given explicitly: no second, CRC32 one computed by botocore
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        ignore_configured_endpoint_urls=True,  # the target's endpointUrl, never AWS_ENDPOINT_URL*
    )
    with _CLIENTS:
        return _session().create_client(
            "s3",
            region_name=plan.region,
            endpoint_url=plan.settings.endpoint_url,
            aws_access_key_id=credentials["access_key_id"],
            aws_secret_access_key=credentials["secret_access_key"],
            aws_session_token=credentials.get("session_token"),
            config=config,
        )


@functools.cache
def _session() -> Any:
    """One session per process (loading the S3 model costs ~0.3 s); every client gets explicit
    credentials, so the session's own chain (environment, profiles, instance) is never used."""
    return botocore.session.Session()


def _translate(exc: ClientError | BotoCoreError, plan: _Plan, target: PublishTarget) -> ForgeError:
    where = f"s3 target {target.name!r}"
    if isinstance(exc, ConnectionError | HTTPClientError):
        return S3PublishError(
            f"{where}: {plan.endpoint} cannot be reached after {plan.settings.max_attempts} attempts "
            f"({type(exc).__name__})",
        )
    if isinstance(exc, ClientError):
        code = _code(exc)
        if code in _REFUSED:
            return S3PublishError(
                f"{where}: {plan.endpoint} refused the credentials ({', '.join(CREDENTIALS)}) for bucket "
                f"{plan.settings.bucket!r}: {code}",
            )
        if code == "NoSuchBucket":
            return S3PublishError(f"{where}: the bucket {plan.settings.bucket!r} does not exist at {plan.endpoint}")
        operation = exc.operation_name
        message = exc.response.get("Error", {}).get("Message", "")
        return S3PublishError(f"{where}: {operation} at {plan.endpoint} failed: {code} {message}".rstrip())
    return S3PublishError(f"{where}: {type(exc).__name__} talking to {plan.endpoint}: {exc}")


def _location(plan: _Plan, target: PublishTarget, objects: list[dict[str, Any]]) -> PublishedLocation:
    keys = [o["key"] for o in objects]
    single = len(keys) == 1
    uri = plan.uri(keys[0]) if single else plan.uri(str(PurePosixPath(keys[0]).parent) + "/")
    sha = objects[0].get("sha256") if single else None
    metadata = {"bucket": plan.settings.bucket, "endpoint": plan.settings.endpoint_url, "objects": objects}
    return PublishedLocation(
        publisher=target.name, type=target.type, uri=uri, digest=f"sha256:{sha}" if sha else None, metadata=metadata
    )


def _content_type(path: Path) -> str:
    kind, encoding = mimetypes.guess_type(path.name)
    compressed = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz"}
    if encoding in compressed:
        return compressed[encoding]
    return kind or "application/octet-stream"


def _chunks(path: Path, size: int) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(size):
            yield chunk


def _sha256(path: Path, ctx: ExecutionContext) -> str:
    digest = hashlib.sha256()
    for chunk in _chunks(path, HASH_CHUNK):
        _check_stop(ctx)
        digest.update(chunk)
    return digest.hexdigest()


def _check_stop(ctx: ExecutionContext) -> None:
    if ctx.stop.is_set():
        raise WorkWithdrawn("the s3 publish was withdrawn; nothing more is uploaded")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _whole_object_hex(head: Mapping[str, Any]) -> str | None:
    checksum = head.get("ChecksumSHA256")
    if not checksum or head.get("ChecksumType") == "COMPOSITE" or "-" in checksum:  # "<b64>-<parts>"
        return None
    return base64.b64decode(checksum).hex()
