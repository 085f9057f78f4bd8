"""The connection every aggregate's store shares, and the helpers their transactions use."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from forge_core.adapters.db import models as m
from forge_core.domain.models import repository_key
from forge_core.services import schemas as s
from forge_core.services.errors import InvalidRequest, NotFound


class SqlDatabase:
    """An engine and its sessions; each aggregate's store is one of these."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.dialect = engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.sessions() as session:
            await session.execute(text("SELECT 1"))


# --- helpers of every aggregate ---------------------------------------------------------------


async def paged(
    session: AsyncSession, query: Select[Any], page: s.Page, *order: Any
) -> tuple[int, Sequence[Any]]:
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    window = query.order_by(*order).limit(page.limit).offset(page.offset)
    return int(total or 0), (await session.execute(window)).scalars().all()


async def locked(session: AsyncSession, model: type[Any], entity_id: uuid.UUID, what: str) -> Any:
    entity = await session.get(model, entity_id, with_for_update=True)
    if entity is None:
        raise NotFound(f"{what} {entity_id} does not exist", where="id")
    return entity


def unique(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidRequest(f"{name!r} appears twice", where=where)
        seen.add(name)


def audit(
    session: AsyncSession,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: object,
    details: dict[str, Any],
) -> None:
    session.add(
        m.AuditEntry(
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            details=details,
            at=m.utcnow(),
        )
    )


def stored(repository: str) -> ColumnElement[str]:
    """``repository`` in the spelling it is stored in, inside a query (``Release.repository ==
    stored(name)``): the first-seen case when any row names it, else the name as given."""
    recorded = select(m.Repository.name).where(m.Repository.key == repository_key(repository))
    return func.coalesce(recorded.scalar_subquery(), repository)


async def stored_name(session: AsyncSession, repository: str) -> str:
    """The spelling ``repository`` is stored in (the case first seen), or ``repository`` itself
    when no row names it yet: what every query by repository name compares with."""
    found = await session.scalar(select(m.Repository.name).where(m.Repository.key == repository_key(repository)))
    return found or repository


async def adopted_name(session: AsyncSession, repository: str) -> str:
    """The spelling to store a new row of ``repository`` under: the first seen, recorded now
    when this is the first (two first writers at once agree: the second waits for the first)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    await session.execute(
        insert(m.Repository)
        .values(key=repository_key(repository), name=repository, first_seen_at=m.utcnow())
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return await stored_name(session, repository)
