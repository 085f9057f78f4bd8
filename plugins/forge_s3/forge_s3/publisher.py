"""The ``s3`` publisher: uploads an artifact's files to a bucket."""

from forge_core.sdk import (
    ExecutionContext,
    NotImplementedInThisVersion,
    ProducedArtifact,
    PublishedLocation,
    PublishTarget,
)


class S3Publisher:
    def publish(self, artifact: ProducedArtifact, target: PublishTarget, ctx: ExecutionContext) -> PublishedLocation:
        raise NotImplementedInThisVersion("uploading to buckets arrives with the artifacts issue")
