"""Versioned KKP scripts: uploads, and which version a call is checked against.

A version is never edited: every upload is a new row with an effective-from time.
A call is checked against the version in force at its start, looked up by the
pipeline stage (``PipelineStage.code``) its client's deal was at then, then the team
of the call's first manager, then the company default (no team, no stage). The same
lookup gives the manager the script to read before and during a call.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, write_audit
from crm_core.calls.models import Call
from crm_core.errors import DomainError
from crm_core.people.models import Team, User
from crm_core.sales.deals import client_stage_at
from crm_core.sales.models import PipelineStage
from crm_core.speech.models import KkpScriptVersion
from crm_core.timestamps import ensure_utc


def digest(text: str) -> str:
    """The version's identity in results: the same text gives the same digest."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


async def team_by_name(session: AsyncSession, name: str) -> Team | None:
    return await session.scalar(select(Team).where(Team.name == name))


async def add_version(session: AsyncSession, *, name: str, text: str, team_id: int | None,
                      stage: str | None, effective_from: datetime, fine_amount: int,
                      actor: str, user_id: int | None = None) -> KkpScriptVersion:
    """Store a validated script text as a new version (audited; not committed)."""
    if fine_amount < 0:
        raise DomainError("speech.scripts.fine_negative", "the fine amount cannot be negative")
    row = KkpScriptVersion(name=name, text=text, team_id=team_id, stage=stage or None,
                           effective_from=ensure_utc(effective_from), digest=digest(text),
                           fine_amount=fine_amount, created_by=user_id)
    session.add(row)
    await session.flush()
    write_audit(session, actor=actor, user_id=user_id, entity="kkp_script", entity_id=row.id,
                action=ACTION_CREATE,
                changes={"name": [None, name], "team_id": [None, team_id],
                         "stage": [None, row.stage], "digest": [None, row.digest],
                         "effective_from": [None, row.effective_from.isoformat()],
                         "fine_amount": [None, fine_amount]})
    return row


async def list_versions(session: AsyncSession,
                        team_id: int | None = None) -> list[KkpScriptVersion]:
    """Every version, latest in force first (one team's and the company's with ``team_id``)."""
    stmt = select(KkpScriptVersion).order_by(KkpScriptVersion.effective_from.desc(),
                                             KkpScriptVersion.id.desc())
    if team_id is not None:
        stmt = stmt.where((KkpScriptVersion.team_id == team_id)
                          | KkpScriptVersion.team_id.is_(None))
    return list(await session.scalars(stmt))


async def get_version(session: AsyncSession, version_id: int) -> KkpScriptVersion | None:
    return await session.get(KkpScriptVersion, version_id)


async def version_in_force(session: AsyncSession, at: datetime, *, team_id: int | None,
                           stage: str | None = None) -> KkpScriptVersion | None:
    """The version for the stage, else the team, else the company, in force at ``at``."""
    at = ensure_utc(at)
    keys: list[tuple[int | None, str | None]] = []
    if stage:
        keys += [(team_id, stage), (None, stage)]
    if team_id is not None:
        keys.append((team_id, None))
    keys.append((None, None))
    # One statement: the first key in this order that has a version in force wins, and of
    # its versions the latest in force (the card asks this on every view).
    def matches(team_key: int | None, stage_key: str | None) -> ColumnElement[bool]:
        return and_(KkpScriptVersion.team_id.is_(None) if team_key is None
                    else KkpScriptVersion.team_id == team_key,
                    KkpScriptVersion.stage.is_(None) if stage_key is None
                    else KkpScriptVersion.stage == stage_key)

    wanted = [matches(team_key, stage_key) for team_key, stage_key in keys]
    rank = case(*[(match, i) for i, match in enumerate(wanted)], else_=len(wanted))
    return await session.scalar(
        select(KkpScriptVersion).where(KkpScriptVersion.effective_from <= at, or_(*wanted))
        .order_by(rank, KkpScriptVersion.effective_from.desc(), KkpScriptVersion.id.desc())
        .limit(1))


@dataclass(frozen=True)
class ClientScript:
    """The script version for a client at a moment, and the deal stage it was chosen for."""

    version: KkpScriptVersion | None
    stage: PipelineStage | None


async def script_for_client(session: AsyncSession, client_id: int | None, at: datetime, *,
                            team_id: int | None) -> ClientScript:
    """The one lookup of "the script for this client then": the stage of his deal at ``at``
    (its history), then the team, then the company, each in its version in force at ``at``.

    The check of a call and the «Сценарий» panel (card, tasks, dialer) both ask this,
    so a manager reads the very text his calls are checked against.
    """
    stage = await client_stage_at(session, client_id, at) if client_id is not None else None
    version = await version_in_force(session, at, team_id=team_id,
                                     stage=stage.code if stage is not None else None)
    return ClientScript(version, stage)


async def script_for_call(session: AsyncSession, call_id: int) -> KkpScriptVersion | None:
    """The version a call is checked against: its client's stage at the call's start and
    its first manager's team."""
    call = await session.get(Call, call_id)
    if call is None:
        return None
    team_id = None
    if call.managers:
        team_id = await session.scalar(select(User.team_id)
                                       .where(User.extension == call.managers[0]))
    return (await script_for_client(session, call.client_id, call.started_at,
                                    team_id=team_id)).version
