"""The ``github`` publisher: attaches an artifact's files to a GitHub release."""

from forge_core.sdk import (
    ExecutionContext,
    NotImplementedInThisVersion,
    ProducedArtifact,
    PublishedLocation,
    PublishTarget,
)


class GithubReleasePublisher:
    def publish(self, artifact: ProducedArtifact, target: PublishTarget, ctx: ExecutionContext) -> PublishedLocation:
        raise NotImplementedInThisVersion("GitHub release uploads arrive with the artifacts issue")
