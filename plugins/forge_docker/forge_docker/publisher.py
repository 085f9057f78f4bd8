"""The ``docker`` publisher: pushes container images to an OCI registry."""

from forge_core.sdk import (
    ExecutionContext,
    NotImplementedInThisVersion,
    ProducedArtifact,
    PublishedLocation,
    PublishTarget,
)


class DockerPublisher:
    def publish(self, artifact: ProducedArtifact, target: PublishTarget, ctx: ExecutionContext) -> PublishedLocation:
        raise NotImplementedInThisVersion("pushing images arrives with the artifacts issue")
