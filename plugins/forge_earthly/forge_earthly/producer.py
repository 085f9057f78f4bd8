"""The ``earthly`` producer: builds an artifact by running an Earthly target."""

from forge_core.sdk import ArtifactSpec, ExecutionContext, NotImplementedInThisVersion, ProducedArtifact, ProjectRef


class EarthlyProducer:
    def produce(self, spec: ArtifactSpec, project: ProjectRef, commit: str, ctx: ExecutionContext) -> ProducedArtifact:
        raise NotImplementedInThisVersion("building with Earthly arrives with the Earthly issue")
