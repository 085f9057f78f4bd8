"""The ``pypi`` publisher: uploads wheels and sdists to a PyPI-compatible index."""

from forge_core.sdk import (
    ExecutionContext,
    NotImplementedInThisVersion,
    ProducedArtifact,
    PublishedLocation,
    PublishTarget,
)


class PypiPublisher:
    def publish(self, artifact: ProducedArtifact, target: PublishTarget, ctx: ExecutionContext) -> PublishedLocation:
        raise NotImplementedInThisVersion("uploading distributions arrives with the artifacts issue")
