"""What an ``s3`` publisher target in ``repo.cue`` holds besides ``type`` and ``credentials``."""

from pydantic import Field

from forge_core.sdk import SettingsModel


class S3TargetSettings(SettingsModel):
    """Objects go to ``s3://<bucket>/<prefix>/...``; ``endpointUrl`` selects an S3-compatible store."""

    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description="The bucket's name")
    prefix: str = Field("", pattern=r"^[^\s]*$", description="A key prefix inside the bucket")
    region: str | None = Field(None, min_length=1, description="The bucket's region (default us-east-1)")
    endpoint_url: str | None = Field(None, pattern=r"^https?://\S+$", description="For S3-compatible storage")
    max_attempts: int = Field(5, ge=1, le=20, description="Attempts per request on transient errors")
