"""Two duplicate clients become one: everything of the duplicate moves to the client kept.

Every table with a ``client_id`` column referencing ``clients.id`` moves, found in the
registered metadata (``crm_core.schema`` registers each feature's tables, and every
session factory imports it), so a feature that adds such a table (notes, timeline
items) is merged without a change here. A table whose rows are derived from the
client marks itself ``info={"merge": "rebuild"}`` and is rebuilt instead (the search
words). A row that would break a unique constraint on the kept client (the same phone
number on both cards) stays with the duplicate, which is archived, never deleted, and
points at the kept client (``merged_into_id``). The card fields the kept client lacks
are taken from the duplicate. Both clients get an audit row saying what moved.

Who may merge: an admin, or a supervisor for two clients of his team's managers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Column, MetaData, Table, UniqueConstraint, exists, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_MERGE, write_audit
from crm_core.clients.models import Client
from crm_core.clients.search import reindex_clients
from crm_core.clients.services import AUDIT_ENTITY
from crm_core.db.base import Base
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people.models import Role, User
from crm_core.timestamps import isoformat, utcnow

# Card fields a kept client without a value takes from the duplicate.
FILLED = ("inn", "kpp", "legal_address", "actual_address", "site", "industry", "region",
          "found_via", "comment", "owner_id", "annual_potential", "annual_potential_items",
          "abc_group", "qualified_at", "contact_every_days")


@dataclass
class MergeResult:
    kept: Client
    duplicate: Client
    moved: dict[str, int] = field(default_factory=dict)  # rows moved, by table
    stayed: dict[str, int] = field(default_factory=dict)  # rows left with the duplicate
    filled: list[str] = field(default_factory=list)  # card fields taken from the duplicate


def client_tables(*metadatas: MetaData) -> list[tuple[Table, Column[Any]]]:
    """Every table with a ``client_id`` referencing ``clients.id`` that a merge moves (of the
    product's registered tables, or of the ``metadatas`` given)."""
    found = []
    tables = [t for metadata in (metadatas or (Base.metadata,)) for t in metadata.sorted_tables]
    for table in tables:
        column = table.c.get("client_id")
        if column is None or table.info.get("merge") == "rebuild":
            continue
        if any(fk.column.table.name == Client.__tablename__ for fk in column.foreign_keys):
            found.append((table, column))
    return found


def _unique_partners(table: Table, column: Column[Any]) -> list[list[Column[Any]]]:
    """For each unique key containing ``client_id``, its other columns."""
    keys = [list(c.columns) for c in table.constraints
            if isinstance(c, UniqueConstraint) and column.name in c.columns]
    keys += [list(i.columns) for i in table.indexes if i.unique and column.name in i.columns]
    if column.name in table.primary_key.columns:
        keys.append(list(table.primary_key.columns))
    return [[c for c in key if c is not column] for key in keys]


async def _move(session: AsyncSession, table: Table, column: Column[Any], kept: int,
                duplicate: int) -> tuple[int, int]:
    """Move the duplicate's rows of ``table`` unless a unique key would clash; (moved, stayed)."""
    other = table.alias("kept_rows")
    clauses = [~exists().where(other.c[column.name] == kept,
                               *[other.c[c.name] == c for c in partners])
               for partners in _unique_partners(table, column)]
    stmt = (update(table).where(column == duplicate, *clauses).values({column.name: kept})
            .execution_options(synchronize_session=False))
    moved = int(cast("CursorResult[Any]", await session.execute(stmt)).rowcount or 0)
    stayed = int(await session.scalar(
        select(func.count()).select_from(table).where(column == duplicate)) or 0)
    return moved, stayed


async def _owner_team(session: AsyncSession, client: Client) -> int | None:
    if client.owner_id is None:
        return None
    return await session.scalar(select(User.team_id).where(User.id == client.owner_id))


async def check_may_merge(session: AsyncSession, by: User | None, client: Client) -> None:
    """An admin merges any client; a supervisor those of his team's managers."""
    if by is None or by.role == Role.ADMIN:
        return
    if by.role != Role.SUPERVISOR:
        raise NotAllowedError("clients.merge_not_allowed",
                              "only a supervisor or an admin merges clients")
    if by.team_id is None or await _owner_team(session, client) != by.team_id:
        raise NotAllowedError("clients.merge_not_in_team",
                              f"client {client.id} is not your team's", client=client.name)


async def merge_clients(session: AsyncSession, kept_id: int, duplicate_id: int, *,
                        by: User | None, actor: str,
                        metadatas: Sequence[MetaData] = ()) -> MergeResult:
    """Merge ``duplicate_id`` into ``kept_id`` (see the module doc); flushes, the caller commits.

    ``metadatas``: where the tables to move are registered (default: the product's). The
    sales status of the kept client is the caller's to re-judge (payments may have moved).
    """
    if kept_id == duplicate_id:
        raise DomainError("clients.merge_same", "a client cannot be merged with himself")
    kept = await session.get(Client, kept_id, populate_existing=True)
    duplicate = await session.get(Client, duplicate_id, populate_existing=True)
    for client, client_id in ((kept, kept_id), (duplicate, duplicate_id)):
        if client is None:
            raise NotFoundError("clients.not_found", f"no client {client_id}")
    assert kept is not None and duplicate is not None
    for client in (kept, duplicate):
        if client.archived_at is not None:
            raise DomainError("clients.merge_archived", f"client {client.id} is archived",
                              client=client.name)
        await check_may_merge(session, by, client)
    result = MergeResult(kept, duplicate)
    for table, column in client_tables(*metadatas):
        moved, stayed = await _move(session, table, column, kept.id, duplicate.id)
        if moved:
            result.moved[table.name] = moved
        if stayed:
            result.stayed[table.name] = stayed
    for name in FILLED:
        if getattr(kept, name) is None and getattr(duplicate, name) is not None:
            setattr(kept, name, getattr(duplicate, name))
            result.filled.append(name)
    if duplicate.last_contact_at is not None and (
            kept.last_contact_at is None or kept.last_contact_at < duplicate.last_contact_at):
        kept.last_contact_at = duplicate.last_contact_at
    now = utcnow()
    duplicate.archived_at = now
    duplicate.merged_into_id = kept.id
    kept.updated_at = duplicate.updated_at = now
    await session.flush()
    user_id = by.id if by else None
    write_audit(session, actor=actor, user_id=user_id, entity=AUDIT_ENTITY, entity_id=kept.id,
                action=ACTION_MERGE,
                changes={"merged": duplicate.id, "merged_name": duplicate.name,
                         "moved": result.moved, "stayed_with_duplicate": result.stayed,
                         "filled": result.filled})
    write_audit(session, actor=actor, user_id=user_id, entity=AUDIT_ENTITY,
                entity_id=duplicate.id, action=ACTION_MERGE,
                changes={"merged_into": kept.id, "merged_into_name": kept.name,
                         "archived_at": [None, isoformat(now)]})
    await reindex_clients(session, [kept.id, duplicate.id])
    return result
