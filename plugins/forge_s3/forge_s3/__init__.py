"""Catalyst Forge plugin: the ``s3`` publisher (S3-compatible object storage)."""

from forge_core.sdk import PublisherRegistrar, hookimpl
from forge_s3.settings import S3TargetSettings

__version__ = "0.1.0"


@hookimpl
def forge_register_publishers(register: PublisherRegistrar) -> None:
    register.add(
        "s3",
        "forge_s3.publisher:S3Publisher",
        artifact_types=["binary", "archive"],
        description="Upload binaries and archives to an S3-compatible bucket",
        settings=S3TargetSettings,
    )
