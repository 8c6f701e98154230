"""The PBXs ``serve`` listens to and ``ami-replay --pbx`` writes for.

``main`` is the PBX of ``TELECRM_AMI_*`` and ``TELECRM_RECORDINGS_SOURCE``: it runs
whether or not other PBXs are added, and its calls keep Asterisk's bare linkedid and
its captures stay in ``data/ami/``. A ``pbxes`` row named ``main`` replaces those
settings (and ``pbx disable main`` switches it off). Every other enabled row is one
more listener, with its captures in ``data/ami/<name>/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call, CallLeg
from crm_core.calls.snapshot import DEFAULT_PBX
from crm_core.pbxes.models import Pbx
from crm_core.pbxes.services import get_pbx, list_pbxes
from pbx_bridge.ami import AmiSettings
from telecrm.settings import Settings


@dataclass(frozen=True)
class PbxTarget:
    """One PBX as a listener needs it."""

    name: str
    ami: AmiSettings
    recordings_source: Path
    capture_dir: Path


def _from_row(pbx: Pbx, settings: Settings) -> PbxTarget:
    source = Path(pbx.recordings_source) if pbx.recordings_source else settings.recordings_source
    capture = settings.capture_dir if pbx.name == DEFAULT_PBX else settings.capture_dir / pbx.name
    return PbxTarget(pbx.name, AmiSettings(host=pbx.host, port=pbx.port,
                                           username=pbx.username, secret=pbx.secret),
                     source, capture)


def default_target(settings: Settings) -> PbxTarget:
    """``main`` as the settings describe it (the single-PBX set-up of old)."""
    return PbxTarget(DEFAULT_PBX, AmiSettings(host=settings.ami_host, port=settings.ami_port,
                                              username=settings.ami_user,
                                              secret=settings.ami_secret),
                     settings.recordings_source, settings.capture_dir)


async def pbx_targets(session: AsyncSession, settings: Settings) -> list[PbxTarget]:
    """The enabled PBXs, ``main`` first (from its row, else from the settings)."""
    rows = await list_pbxes(session)
    main = next((row for row in rows if row.name == DEFAULT_PBX), None)
    targets = []
    if main is None:
        targets.append(default_target(settings))
    elif main.disabled_at is None:
        targets.append(_from_row(main, settings))
    targets += [_from_row(row, settings) for row in rows
                if row.name != DEFAULT_PBX and row.disabled_at is None]
    return targets


async def replay_target(session: AsyncSession, settings: Settings, name: str) -> PbxTarget:
    """The PBX a replayed capture came from (switched off or not: its calls are old)."""
    if name.strip().lower() == DEFAULT_PBX:
        row = await session.scalar(select(Pbx).where(Pbx.name == DEFAULT_PBX))
        return _from_row(row, settings) if row is not None else default_target(settings)
    return _from_row(await get_pbx(session, name), settings)


async def pbx_of_extension(session: AsyncSession, extension: str) -> str | None:
    """The PBX where ``extension`` was last seen on a call (None: never seen).

    A manager's phone is registered on one PBX; the calls say which, so an admin
    configures nothing and a manager who moves to another branch follows on his
    first call there.
    """
    stmt = (select(Call.pbx).join(CallLeg, CallLeg.call_id == Call.id)
            .where(CallLeg.extension == extension)
            .order_by(CallLeg.started_at.desc()).limit(1))
    return await session.scalar(stmt)
