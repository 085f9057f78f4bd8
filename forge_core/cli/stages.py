"""The stages after the artifacts on one machine: each releasing project's ``release`` job, then
the auto-deployment of each new release to the first environment through the ``deployment`` job —
and the one way a deployment's pending rows become a GitOps commit (:func:`land_deployments`),
used by `forge run` and by `forge deploy`/`promote`/`rollback` on the embedded API.

Every job travels the bus to the embedded workers; every state change goes through the API.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from forge_core.adapters.platform_client import PlatformClient
from forge_core.adapters.storage import FsspecStore
from forge_core.domain.errors import ForgeError
from forge_core.domain.jobs import ArtifactResult, ReleaseJobPayload
from forge_core.domain.models import Job, JobStatus, PublishedLocation
from forge_core.domain.plan import DiscoveryDocument, ProjectPlan
from forge_core.domain.promotion import DEFAULT_ENVIRONMENTS, PromotionDecision, ReleaseFacts, decide_auto_deploy
from forge_core.plugin.host import PluginHost
from forge_core.ports.orchestrator import JobDispatcher
from forge_core.services import schemas as s
from forge_core.settings import Settings
from forge_core.worker.embedded import embedded_jobs

RELEASE_TIMEOUT = 600.0
DEPLOYMENT_TIMEOUT = 300.0
LANDED_OUTCOMES = (s.TargetOutcome.PUBLISHED, s.TargetOutcome.PLANNED)


class StageFailed(ForgeError):
    """A release or deployment job that did not succeed; ``where`` names the project or environment."""

    code = "stage_failed"


@dataclass(frozen=True)
class Released:
    project: str
    number: int
    aliases: tuple[str, ...]
    image: str
    """The Release image reference pinned by digest."""
    release_id: str


@dataclass(frozen=True)
class Landed:
    """Deployments whose ReleasePointers landed in one GitOps commit."""

    environment: str
    gitops_commit: str
    repository: str
    branch: str
    paths: tuple[str, ...]
    deployments: tuple[str, ...]


@dataclass(frozen=True)
class StageNode:
    """One release or deployment as the progress tree shows it: ``status`` is ``running``,
    ``success`` or ``failed`` for a release; ``pending``, ``active`` or ``failed`` for a deployment."""

    status: str
    detail: str = ""


@dataclass
class StagesReport:
    """What the release and deployment stages did, for the summary; and, while they run, their
    nodes of the progress tree (``changes`` counts every change, so a view redraws them only then)."""

    releases: list[Released] = field(default_factory=list)
    landed: list[Landed] = field(default_factory=list)
    not_deployed: list[str] = field(default_factory=list)
    """Per release that did not auto-deploy, the rule that stopped it."""
    not_released: list[str] = field(default_factory=list)
    """Releasing projects not released, each with why (no deploy resources, nothing located)."""
    release_nodes: dict[str, StageNode] = field(default_factory=dict)
    """Per project, its release: running, then release N and the image (pinned), or the error."""
    deployment_nodes: dict[str, dict[str, StageNode]] = field(default_factory=dict)
    """Per environment, per project: release N pending, then active with the pointer's path."""
    changes: int = 0

    def releasing(self, project: str) -> None:
        self._set_release(project, StageNode("running", "release job running"))

    def released(self, made: Released) -> None:
        self.releases.append(made)
        self._set_release(made.project, StageNode("success", f"release {made.number}  {made.image}"))

    def release_failed(self, project: str, error: str) -> None:
        self._set_release(project, StageNode("failed", error))

    def deploying(self, environment: str, deployments: Sequence[s.Deployment]) -> None:
        nodes = self.deployment_nodes.setdefault(environment, {})
        for d in deployments:
            nodes[d.project] = StageNode("pending", f"release {d.release_number} → pending")
        self.changes += 1

    def deployed(self, landed: Landed, deployments: Sequence[s.Deployment]) -> None:
        self.landed.append(landed)
        nodes = self.deployment_nodes.setdefault(landed.environment, {})
        for d, path in zip(deployments, landed.paths, strict=False):
            nodes[d.project] = StageNode(
                "active", f"release {d.release_number} → active  {path}  (GitOps commit {landed.gitops_commit[:12]})")
        self.changes += 1

    def deployment_failed(self, environment: str, deployments: Sequence[s.Deployment], error: str) -> None:
        nodes = self.deployment_nodes.setdefault(environment, {})
        for d in deployments:
            nodes[d.project] = StageNode("failed", f"release {d.release_number}: {error}")
        self.changes += 1

    def _set_release(self, project: str, node: StageNode) -> None:
        self.release_nodes[project] = node
        self.changes += 1


# --- release -------------------------------------------------------------------------------------


def artifact_results(records: Sequence[s.ArtifactRecord], project: str) -> tuple[ArtifactResult, ...]:
    """The project's artifacts as the release job takes them: the tracking image, and each target
    that was published (or, without ``--publish``, planned: its location and the digest it would
    have), the primary location (the recorded ``primary_published_uri``) first."""
    results = []
    for record in records:
        if record.project != project:
            continue
        tracked = record.tracking_oci_uri and record.tracking_oci_digest
        if record.status is not s.ArtifactStatus.SUCCESS or not tracked:
            raise StageFailed(f"project {project}: artifact {record.artifact} has no tracking image "
                              f"({record.status.value}{': ' + record.error if record.error else ''})",
                              where=f"{project}/{record.artifact}")
        located = [t for t in record.targets if t.outcome in LANDED_OUTCOMES and t.uri]
        located.sort(key=lambda t: t.uri != record.primary_published_uri)  # stable: the primary first
        if not located:
            raise StageFailed(f"project {project}: artifact {record.artifact} has no published or planned "
                              "location to release (its publishers cannot plan: --publish publishes)",
                              where=f"{project}/{record.artifact}")
        results.append(ArtifactResult(
            name=record.artifact, type=record.type, tracking=record.tracking_oci_uri,
            tracking_digest=record.tracking_oci_digest,
            published=tuple(PublishedLocation(publisher=t.publisher, type=t.type, uri=t.uri or "",
                                              digest=t.digest or _planned_digest(t, record))
                            for t in located),
        ))
    return tuple(results)


def _planned_digest(target: s.ArtifactTarget, record: s.ArtifactRecord) -> str | None:
    """A planned location (nothing uploaded) without a digest of its own would hold the artifact's
    bytes: its digest is the artifact's. A published location's digest is only ever the publisher's."""
    return record.digest if target.outcome is s.TargetOutcome.PLANNED else None


def committed_at(repository: Path, commit: str) -> datetime:
    """The commit's committer time from git (the Release image's only timestamp)."""
    shown = subprocess.run(["git", "-C", str(repository), "show", "-s", "--format=%cI", commit],
                           capture_output=True, text=True)
    if shown.returncode != 0:
        raise StageFailed(f"cannot read the time of commit {commit}: {shown.stderr.strip()}", where=str(repository))
    return datetime.fromisoformat(shown.stdout.strip())


def release_payload(
    project: ProjectPlan, document: DiscoveryDocument, *, identity: str, artifacts: tuple[ArtifactResult, ...],
    committed: datetime, kubernetes_version: str | None,
) -> ReleaseJobPayload:
    event = document.event
    return ReleaseJobPayload(
        repository=identity, project=project.project, commit=event.commit, committed_at=committed,
        branch=event.branch, tag=event.tag, trigger=project.release, resources=project.resources,
        artifacts=artifacts, aliases=project.aliases, kubernetes_version=kubernetes_version,
    )


async def release(dispatcher: JobDispatcher, run_id: str, payload: ReleaseJobPayload) -> Released:
    """Dispatch one project's ``release`` job and wait for it."""
    name = payload.project.name
    job = Job(id=f"release-{run_id}-{uuid.uuid4().hex[:12]}", type="release", run_id=run_id,
              payload=payload.model_dump(mode="json"))
    result = await dispatcher.dispatch(job, RELEASE_TIMEOUT)
    if result.status is not JobStatus.SUCCESS:
        raise StageFailed(result.error or f"project {name}: the release job {result.status.value}", where=name)
    out = result.output
    return Released(project=name, number=int(out["release_number"]), aliases=tuple(out.get("aliases", ())),
                    image=f"{out['oci_uri']}@{out['oci_digest']}", release_id=str(out["release_id"]))


# --- deployment ----------------------------------------------------------------------------------


def auto_deploy_decision(document: DiscoveryDocument, released: Released, *, author: str) -> PromotionDecision:
    """Whether a new release deploys itself to the first environment (the run's, else the defaults)."""
    environments = document.environments or DEFAULT_ENVIRONMENTS
    event = document.event
    facts = ReleaseFacts(
        repository="-", project=released.project, number=released.number, commit=event.commit, author=author,
        trigger="tag" if event.tag else "branch" if event.branch else "manual", branch=event.branch, tag=event.tag,
    )
    return decide_auto_deploy(environments.first, facts, now=datetime.now(UTC))


async def land_deployments(
    dispatcher: JobDispatcher, client: PlatformClient, deployments: Sequence[s.Deployment], *, actor: str,
    action: str = "deploy",
) -> Landed:
    """The one way pending deployments (made by the API: a promotion, a rollback, an
    auto-deployment) reach the GitOps repository: one ``deployment`` job for all of them — one
    commit, all or none — waited for. The job marks them active (or failed) through the API."""
    if not deployments:
        raise StageFailed("nothing to deploy", where="deployments")
    environments = {d.environment for d in deployments}
    if len(environments) != 1:
        raise StageFailed(f"one commit deploys to one environment, not {', '.join(sorted(environments))}",
                          where="deployments")
    environment, first = deployments[0].environment, deployments[0].id
    entries = []
    for d in deployments:
        found = await client.show_release(d.repository, d.project, str(d.release_number))
        entries.append({"repository": d.repository, "project": d.project, "release_commit": found.commit_sha,
                        "release_number": d.release_number, "release_id": str(d.release_id),
                        "deployment_id": str(d.id)})
    job = Job(id=f"deployment-{first}", type="deployment", run_id=f"deploy-{first}",
              payload={"environment": environment, "actor": actor, "action": action, "deployments": entries})
    result = await dispatcher.dispatch(job, DEPLOYMENT_TIMEOUT)
    if result.status is not JobStatus.SUCCESS:
        raise StageFailed(f"deployment to {environment} failed: {result.error}", where=environment)
    out = result.output
    return Landed(environment=environment, gitops_commit=str(out["gitops_commit"]), repository=str(out["repository"]),
                  branch=str(out["branch"]), paths=tuple(out["paths"]), deployments=tuple(out["deployments"]))


async def land_here(
    settings: Settings, host: PluginHost, client: PlatformClient, deployments: Sequence[s.Deployment], *,
    actor: str, action: str,
) -> Landed:
    """:func:`land_deployments` on in-process ``deployment`` workers (one machine, no fleet)."""
    storage = FsspecStore.from_settings(settings.storage)
    async with embedded_jobs(settings, host, client, storage, state_dir=settings.state_dir,
                             job_types=("deployment",)) as dispatcher:
        return await land_deployments(dispatcher, client, deployments, actor=actor, action=action)
