"""Releases with their aliases, trigger and artifacts (the release aggregate)."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import Select, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from forge_core.adapters.db import models as m
from forge_core.adapters.db.database import SqlDatabase, adopted_name, audit, paged, stored, unique
from forge_core.domain.models import same_repository
from forge_core.services import schemas as s
from forge_core.services.errors import Conflict, InvalidRequest, NotFound

NUMBER = re.compile(r"^[0-9]{1,9}$")
SHA_PREFIX = re.compile(r"^[0-9a-f]{7,64}$")


class SqlReleases(SqlDatabase):
    """Implements :class:`forge_core.services.store.ReleaseStore`; each method is one transaction."""

    async def create_release(self, data: s.ReleaseCreate, actor: str) -> s.Release:
        unique([a.name for a in data.artifacts], "artifacts[].name")
        try:
            async with self.transaction() as session:
                repository = await adopted_name(session, data.repository)  # the case first seen
                if data.pipeline_run_id is not None:
                    await _check_run_of(session, data.pipeline_run_id, repository)
                number = await self._next_number(session, repository, data.project)
                release = m.Release(
                    id=uuid.uuid4(),
                    repository=repository,
                    project=data.project,
                    commit_sha=data.commit_sha,
                    release_number=number,
                    pipeline_run_id=data.pipeline_run_id,
                    oci_uri=data.oci_uri,
                    oci_digest=data.oci_digest,
                    created_by=actor,
                    created_at=m.utcnow(),
                )
                session.add(release)
                await session.flush()
                session.add(
                    m.ReleaseTrigger(
                        release_id=release.id,
                        trigger_type=data.trigger.trigger_type.value,
                        branch=data.trigger.branch,
                        tag=data.trigger.tag,
                        triggered_by=actor,
                        triggered_at=m.utcnow(),
                    )
                )
                session.add_all(_artifact(release.id, artifact) for artifact in data.artifacts)
                session.add(_alias(release, str(number), s.AliasType.NUMERIC))
                if data.trigger.tag:
                    await _point_alias(session, release, data.trigger.tag, s.AliasType.TAG)
                audit(session, actor, "release.created", "release", release.id, {"number": number})
                release_id = release.id
        except IntegrityError:
            raise Conflict(
                f"a release of {data.repository}/{data.project} at {data.commit_sha} "
                "already exists",
                where="commit_sha",
            ) from None
        return await self.get_release_by_id(release_id)

    async def _next_number(self, session: AsyncSession, repository: str, project: str) -> int:
        """Increment the project's counter; its row stays locked until commit, so numbers are
        handed out one transaction at a time and a rolled-back release gives its number back."""
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        values = {"repository": repository, "project": project, "last_number": 1}
        statement = (
            insert(m.ReleaseCounter)
            .values(values)
            .on_conflict_do_update(
                index_elements=["repository", "project"],
                set_={"last_number": m.ReleaseCounter.last_number + 1},
            )
            .returning(m.ReleaseCounter.last_number)
        )
        return int((await session.execute(statement)).scalar_one())

    async def get_release(self, repository: str, project: str, ref: str) -> s.Release:
        async with self.sessions() as session:
            return _release(await _resolve(session, repository, project, ref))

    async def get_release_by_id(self, release_id: uuid.UUID) -> s.Release:
        async with self.sessions() as session:
            release = await session.scalar(_release_query().where(m.Release.id == release_id))
            if release is None:
                raise NotFound(f"release {release_id} does not exist", where="release_id")
            return _release(release)

    async def list_releases(self, repository: str, project: str | None, page: s.Page) -> s.ReleaseList:
        query = select(m.Release).where(m.Release.repository == stored(repository))
        if project is not None:
            query = query.where(m.Release.project == project)
        order = (m.Release.created_at.desc(), m.Release.project, m.Release.release_number.desc())
        async with self.sessions() as session:
            total, rows = await paged(session, query, page, *order)
            return s.ReleaseList(
                releases=[s.ReleaseSummary.model_validate(r) for r in rows],
                total=total,
                limit=page.limit,
                offset=page.offset,
            )

    async def set_alias(
        self, repository: str, project: str, alias: str, data: s.AliasSet, actor: str
    ) -> s.Release:
        if data.alias_type == s.AliasType.NUMERIC or NUMBER.match(alias):
            raise InvalidRequest(
                "numeric aliases are the release numbers; they cannot be set", where="alias"
            )
        async with self.transaction() as session:
            release = await _resolve(session, repository, project, data.release)
            await _point_alias(session, release, alias, data.alias_type)
            audit(session, actor, "alias.set", "release", release.id, {"alias": alias})
            release_id = release.id
        return await self.get_release_by_id(release_id)

    async def set_release_image(
        self, repository: str, project: str, ref: str, data: s.ReleaseImageSet, actor: str
    ) -> s.Release:
        """Record the release's image once; a release is immutable, so another image (digest) is a
        Conflict. The same digest again changes nothing, wherever it was pushed this time."""
        async with self.transaction() as session:
            release = await _resolve(session, repository, project, ref, lock=True)
            if release.oci_digest is not None and release.oci_digest != data.oci_digest:
                raise Conflict(
                    f"release {release.release_number} of {repository}/{project} already has image "
                    f"{release.oci_uri}@{release.oci_digest}",
                    where="oci_digest",
                    details={"oci_uri": release.oci_uri, "oci_digest": release.oci_digest},
                )
            if release.oci_digest is None:
                release.oci_uri, release.oci_digest = data.oci_uri, data.oci_digest
                audit(session, actor, "release.image_set", "release", release.id,
                      {"oci_uri": data.oci_uri, "oci_digest": data.oci_digest})
            release_id = release.id
        return await self.get_release_by_id(release_id)

    async def delete_alias(self, repository: str, project: str, alias: str, actor: str) -> None:
        async with self.transaction() as session:
            row = await session.scalar(_alias_query(repository, project, alias))
            if row is None:
                raise NotFound(
                    f"alias {alias!r} of {repository}/{project} does not exist", where="alias"
                )
            if row.alias_type == s.AliasType.NUMERIC.value:
                raise InvalidRequest(
                    "numeric aliases are the release numbers; they cannot be deleted", where="alias"
                )
            await session.delete(row)
            audit(session, actor, "alias.deleted", "release", row.release_id, {"alias": alias})


# --- queries and rules applied in the transaction ----------------------------------------------


def _release_query() -> Select[m.Release]:
    return select(m.Release).options(
        selectinload(m.Release.aliases),
        selectinload(m.Release.artifacts),
        selectinload(m.Release.trigger),
    )


def _alias_query(repository: str, project: str, alias: str) -> Select[m.ReleaseAlias]:
    return select(m.ReleaseAlias).where(
        m.ReleaseAlias.repository == stored(repository),
        m.ReleaseAlias.project == project,
        m.ReleaseAlias.alias == alias,
    )


async def _check_run_of(session: AsyncSession, run_id: uuid.UUID, repository: str) -> None:
    run = await session.get(m.PipelineRun, run_id)
    if run is None:
        raise NotFound(f"pipeline run {run_id} does not exist", where="pipeline_run_id")
    if not same_repository(run.repository, repository):
        raise InvalidRequest(
            f"pipeline run {run.id} is of repository {run.repository}, not {repository}",
            where="pipeline_run_id",
        )


def _artifact(release_id: uuid.UUID, artifact: s.ArtifactIn) -> m.ReleaseArtifact:
    return m.ReleaseArtifact(
        release_id=release_id,
        artifact_name=artifact.name,
        artifact_type=artifact.type,
        tracking_oci_uri=artifact.tracking_oci_uri,
        tracking_oci_digest=artifact.tracking_oci_digest,
        primary_published_uri=artifact.primary_published_uri,
    )


def _alias(release: m.Release, alias: str, alias_type: s.AliasType) -> m.ReleaseAlias:
    return m.ReleaseAlias(
        release_id=release.id,
        repository=release.repository,
        project=release.project,
        alias=alias,
        alias_type=alias_type.value,
    )


async def _point_alias(
    session: AsyncSession, release: m.Release, alias: str, alias_type: s.AliasType
) -> None:
    """Create the alias on ``release``, or move it there from the release it named before."""
    query = _alias_query(release.repository, release.project, alias).with_for_update()
    row = await session.scalar(query)
    if row is None:
        session.add(_alias(release, alias, alias_type))
    else:
        row.release_id, row.alias_type = release.id, alias_type.value
    await session.flush()


async def _resolve(
    session: AsyncSession, repository: str, project: str, ref: str, *, lock: bool = False
) -> m.Release:
    """A release by number, commit SHA (or a unique prefix of at least 7) or alias; ``lock``
    holds its row until the transaction ends (for an update)."""
    base = _release_query().where(m.Release.repository == stored(repository), m.Release.project == project)
    if lock:
        base = base.with_for_update(of=m.Release)
    found: m.Release | None = None
    if NUMBER.match(ref):
        found = await session.scalar(base.where(m.Release.release_number == int(ref)))
    if found is None and SHA_PREFIX.match(ref.lower()):
        by_prefix = base.where(m.Release.commit_sha.startswith(ref.lower())).limit(2)
        matches = (await session.execute(by_prefix)).scalars().all()
        if len(matches) > 1:
            raise InvalidRequest(
                f"commit prefix {ref!r} names more than one release; give more digits",
                where="release",
            )
        found = matches[0] if matches else None
    if found is None:
        alias_of = select(m.ReleaseAlias.release_id).where(
            m.ReleaseAlias.repository == stored(repository),
            m.ReleaseAlias.project == project,
            m.ReleaseAlias.alias == ref,
        )
        found = await session.scalar(base.where(m.Release.id.in_(alias_of.scalar_subquery())))
    if found is None:
        raise NotFound(f"{repository}/{project} has no release {ref!r}", where="release")
    return found


# --- rows to schemas --------------------------------------------------------------------------


def _release(row: m.Release) -> s.Release:
    return s.Release(
        id=row.id,
        repository=row.repository,
        project=row.project,
        commit_sha=row.commit_sha,
        release_number=row.release_number,
        created_at=row.created_at,
        canonical_id=f"{row.repository}/{row.project}/{row.commit_sha}",
        pipeline_run_id=row.pipeline_run_id,
        oci_uri=row.oci_uri,
        oci_digest=row.oci_digest,
        created_by=row.created_by,
        artifacts=[
            s.Artifact(
                name=a.artifact_name,
                type=a.artifact_type,
                tracking_oci_uri=a.tracking_oci_uri,
                tracking_oci_digest=a.tracking_oci_digest,
                primary_published_uri=a.primary_published_uri,
            )
            for a in row.artifacts
        ],
        aliases=[s.Alias(alias=a.alias, alias_type=s.AliasType(a.alias_type)) for a in row.aliases],
        trigger=s.ReleaseTrigger.model_validate(row.trigger) if row.trigger else None,
    )
