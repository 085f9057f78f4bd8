"""What a Workflow's release and deploy tasks are given: the parts of the discovery document
their stage needs, as the ``request`` parameter of the chart's ``stage-release`` and
``stage-deploy`` templates (``forge workflow release`` / ``forge workflow deploy``).

The release task of a project builds its ``release`` job when it runs, from the artifact records
the artifact tasks left on the run; the deploy task auto-deploys the releases this run made to
the first environment, as ``forge run`` does on one machine.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from forge_core.domain.models import SourceEvent
from forge_core.domain.plan import DiscoveryDocument, ProjectPlan
from forge_core.domain.promotion import Environments


class StageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    repository: str
    """The platform's name of the repository (owner/name)."""
    clone_url: str
    """Where the commit is fetched from (the release stage reads the commit's time)."""
    event: SourceEvent
    publish: bool = False


class ReleaseStageRequest(StageRequest):
    project: ProjectPlan


class DeployStageRequest(StageRequest):
    projects: tuple[str, ...]
    """The projects released by the run's release tasks."""
    environments: Environments | None = None
    author: str
    """Who the auto-deployment rules judge (the run's trigger)."""

    def document(self) -> DiscoveryDocument:
        """The discovery document as :func:`~forge_core.cli.stages.auto_deploy_decision` reads it."""
        return DiscoveryDocument(event=self.event, environments=self.environments)


def releasing_projects(document: DiscoveryDocument) -> tuple[ProjectPlan, ...]:
    """The projects a run releases: discovery said so and they declare deploy resources (a
    project without them, a library, has nothing to release)."""
    return tuple(p for p in document.projects if p.release.release and p.resources)
