"""The environments page's data: a repository's projects by its environments (repo.cue's block as
recorded with its newest planned run, else the defaults: :meth:`Platform.environments`), each cell
with the deployment active now (since when, by whom), a pending one, the release a promotion
would bring (the one active in the environment it is promoted from), its approvals, and the history."""

from __future__ import annotations

from dataclasses import dataclass, field

from forge_core.api.deps import Services
from forge_core.services import schemas as s

HISTORY = 200


@dataclass
class Cell:
    environment: str
    protected: bool
    active: s.Deployment | None = None
    pending: list[s.Deployment] = field(default_factory=list)
    history: list[s.Deployment] = field(default_factory=list)
    candidate: int | None = None  # the release number a promotion would bring (None: the newest)
    approvals: list[s.Approval] = field(default_factory=list)  # active ones of the candidate here


@dataclass
class Row:
    project: str
    newest: int | None
    cells: list[Cell]


@dataclass
class Matrix:
    repository: str
    environments: list[str]
    rows: list[Row]


async def matrix(app: Services, repository: str) -> Matrix:
    found = await app.platform.environments(repository)  # repo.cue's block, else the defaults
    environments = found.names
    protected = {e.name for e in found.environments if e.protected}
    source = {e.name: e.promoted_from for e in found.environments}
    releases = (await app.store.list_releases(repository, None, s.Page(limit=200))).releases
    deployments = (
        await app.store.list_deployments(repository, s.Page(limit=HISTORY), project=None, environment=None,
                                         statuses=[])
    ).deployments
    projects = sorted({r.project for r in releases} | {d.project for d in deployments})
    newest: dict[str, s.ReleaseSummary] = {}
    for release in releases:  # newest first
        newest.setdefault(release.project, release)
    rows: list[Row] = []
    for project in projects:
        cells: list[Cell] = []
        by_name: dict[str, Cell] = {}
        for index, environment in enumerate(environments):
            mine = [d for d in deployments if d.project == project and d.environment == environment]
            cell = Cell(environment, environment in protected, history=mine)
            cell.active = next((d for d in mine if d.status is s.DeploymentStatus.ACTIVE), None)
            cell.pending = [d for d in mine if d.status is s.DeploymentStatus.PENDING]
            promoted_from = source.get(environment)
            before = by_name[promoted_from].active if promoted_from in by_name else None
            cell.candidate = before.release_number if before else (
                newest[project].release_number if project in newest and index == 0 else None)
            if cell.protected and before is not None:
                listing = await app.store.list_approvals(
                    s.Page(limit=50), release_id=before.release_id, environment=environment
                )
                cell.approvals = [a for a in listing.approvals if a.status is s.ApprovalStatus.ACTIVE]
            cells.append(cell)
            by_name[environment] = cell
        rows.append(Row(project, newest[project].release_number if project in newest else None, cells))
    return Matrix(repository, environments, rows)
