"""``forge validate``'s check of deploy resources: each project's rendered with placeholder
artifact references, so schema errors show before a release is ever built."""

from __future__ import annotations

from forge_core.domain.config import Diagnostic
from forge_core.domain.models import ArtifactReference, PublishedLocation, RenderRequest
from forge_core.domain.plan import DiscoveryDocument
from forge_core.domain.rendering import KubernetesRenderer, RenderError

PLACEHOLDER_DIGEST = "sha256:" + "0" * 64


def placeholder_reference(repository: str, project: str, artifact: str) -> ArtifactReference:
    """An artifact reference of the right shape (pinned image, tracking image) pointing nowhere."""
    base = f"forge.invalid/{repository.rsplit('/', 1)[-1]}/{project}/{artifact}".lower()
    return ArtifactReference(
        published=(PublishedLocation(publisher="placeholder", type="placeholder", uri=f"{base}:placeholder",
                                     digest=PLACEHOLDER_DIGEST),),
        tracking=f"{base}:sha-{'0' * 40}",
        tracking_digest=PLACEHOLDER_DIGEST,
    )


def deploy_diagnostics(
    document: DiscoveryDocument, renderer: KubernetesRenderer, kubernetes_version: str | None = None
) -> list[Diagnostic]:
    """One diagnostic per problem in any project's deploy resources, at its project.cue."""
    found: list[Diagnostic] = []
    repository = document.event.repository
    for plan in document.projects:
        if not plan.resources:
            continue
        name = plan.project.name
        request = RenderRequest(
            repository=repository,
            project=name,
            commit=document.event.commit,
            resources={"resources": list(plan.resources)},
            artifact_references={a.spec.name: placeholder_reference(repository, name, a.spec.name)
                                 for a in plan.artifacts},
            kubernetes_version=kubernetes_version,
        )
        try:
            renderer.render(request)
        except RenderError as error:
            problems = [str(p) for p in error.problems] or [error.message]
            found += [Diagnostic(file=plan.config_file, message=m, project=name) for m in problems]
    return found
