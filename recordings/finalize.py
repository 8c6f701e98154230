"""Finalize one ended call's recordings: check, convert, store, record, then remove originals.

Order matters for "never lost": the stored copy is written and committed before
any original is removed, and originals of a call that could not be finalized are
kept (the call is marked failed for a supervisor). The store key depends only on
the call, so a retried or repeated finalize overwrites, never duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calls.services import is_safe_recording_path
from crm_core.calls.snapshot import side_from_path
from crm_core.recordings import jobs
from crm_core.recordings.models import AudioStatus, CallAudio
from crm_core.timestamps import utcnow

from . import audio, wav
from .config import RecordingsConfig
from .store import Store, StoreError

log = logging.getLogger(__name__)
# Which file goes left and which right: the manager (or the caller) is on the left.
PAIRS = (("manager", "client"), ("caller", "callee"))
_SAFE = re.compile(r"[^0-9A-Za-z._-]")


@dataclass
class Plan:
    """What phase one read from the database, so the slow part holds no transaction."""

    call_id: int
    key: str
    inputs: list[tuple[str, Path]]  # (side, original file), left first
    originals: list[Path]
    talk_seconds: float
    team_id: int | None
    status: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Built:
    path: Path
    duration: float
    channels: int
    sha256: str
    size: int
    activity: dict[str, list[list[float]]]


def store_key(call_id: int, linkedid: str, started_at: datetime, manager: str | None,
              suffix: str) -> str:
    """date / manager / call: readable by a person browsing the store."""
    who = _SAFE.sub("_", manager) if manager else "no-manager"
    return f"{started_at:%Y/%m/%d}/{who}/{call_id}-{_SAFE.sub('_', linkedid)}{suffix}"


def _side_of(path: str) -> str:
    """The side a file name ends with (``-client``), else ``mixed``: one mono mix
    (MixMonitor's default name, FreePBX's ``in-...-1733380000.123.wav``)."""
    return side_from_path(path) or "mixed"


def choose_inputs(paths: list[str], root: Path) -> list[tuple[str, Path]]:
    """Left/right side files when both are listed, else the mixed file."""
    by_side = {_side_of(p): root / p for p in paths if is_safe_recording_path(p)}
    for left, right in PAIRS:
        if left in by_side and right in by_side:
            return [(left, by_side[left]), (right, by_side[right])]
    mono = by_side.get("mix") or by_side.get("mixed")
    if mono is not None:
        return [("mixed", mono)]
    return [(side, path) for side, path in by_side.items()][:1]


async def _plan(sessions: async_sessionmaker[AsyncSession], call_id: int, root: Path,
                cfg: RecordingsConfig) -> Plan | None:
    async with sessions() as session:
        job = await jobs.load_job(session, call_id)
        if job is None:
            return None
        call, audio_row = job
        ext, team_id = await jobs.manager_of(session, call)
        suffix = audio.FORMATS[cfg.audio_format][0]
        paths = [r.path for r in call.recordings]
        plan = Plan(call_id=call.id,
                    key=audio_row.key or store_key(call.id, call.linkedid, call.started_at,
                                                   ext, suffix),
                    inputs=choose_inputs(paths, root),
                    originals=[root / p for p in paths if is_safe_recording_path(p)],
                    talk_seconds=call.talk_seconds, team_id=team_id, status=audio_row.status)
        await session.commit()
        return plan


def _build(plan: Plan, cfg: RecordingsConfig, workdir: Path) -> Built:
    """The slow part, in a thread: decode, check, analyse, encode, verify, checksum."""
    sides = [audio.load(name, path) for name, path in plan.inputs]
    duration = max(s.duration for s in sides)
    if duration < 0.3:
        raise audio.AudioError(f"too short ({duration:.2f} s)")
    if plan.talk_seconds and duration > plan.talk_seconds + 10:
        raise audio.AudioError(f"{duration:.1f} s of audio for {plan.talk_seconds:.1f} s of talk")
    if audio.is_silent(sides):
        raise audio.AudioError("silent: no audio on any side")
    out = workdir / f"call{audio.FORMATS[cfg.audio_format][0]}"
    audio.encode([path for _, path in plan.inputs], out, cfg.audio_format, duration)
    encoded = audio.probe_duration(out)
    if abs(encoded - duration) > 0.5:
        raise audio.AudioError(f"encoded {encoded:.2f} s, source {duration:.2f} s")
    digest = hashlib.sha256()
    with out.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return Built(out, round(duration, 3), len(sides), digest.hexdigest(), out.stat().st_size,
                 {side.name: audio.activity(side) for side in sides})


def _remove(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


async def _save(sessions: async_sessionmaker[AsyncSession], call_id: int,
                update: Any) -> None:
    async with sessions() as session:
        row = await jobs.audio_of(session, call_id)
        if row is not None:
            update(row)
            await session.commit()


async def finalize_call(sessions: async_sessionmaker[AsyncSession], call_id: int, root: Path,
                        store: Store, cfg: RecordingsConfig) -> str:
    """Run one attempt; returns the job's status afterwards (pending means "retry later").

    ``sessions`` should be writer sessions; no transaction is held while converting.
    """
    plan = await _plan(sessions, call_id, root, cfg)
    if plan is None:
        return "gone"
    if plan.status == AudioStatus.STORED.value:
        # stored but the originals outlived a crash: finish the job, no second copy
        await asyncio.to_thread(_remove, plan.originals)
        return plan.status
    if plan.status != AudioStatus.PENDING.value:
        return plan.status

    def retry(error: str) -> Any:
        def update(row: CallAudio) -> None:
            if row.status == AudioStatus.STORED.value:
                # a concurrent attempt stored it (and removed the originals this one
                # then missed): its failure is moot, the stored copy stands
                log.info("call %s: already stored by another attempt (%s)", call_id, error)
                return
            row.team_id = plan.team_id  # so the team's supervisor sees a failure
            jobs.schedule_retry(row, error, utcnow(), max_attempts=cfg.max_attempts,
                                base_seconds=cfg.retry_base_seconds)
            log.warning("call %s: recording not finalized (attempt %s, %s): %s", call_id,
                        row.attempts, row.status, error)
        return update

    if not plan.inputs:
        await _save(sessions, call_id, retry("no usable recording path"))
        return await _status(sessions, call_id)
    states = [(name, await asyncio.to_thread(wav.probe, path, cfg.settle_seconds))
              for name, path in plan.inputs]
    problems = [f"{name}: {state.problem}" for name, state in states if not state.ready]
    if problems:
        await _save(sessions, call_id, retry("; ".join(problems)))
        return await _status(sessions, call_id)
    with tempfile.TemporaryDirectory(prefix="telecrm-rec-") as tmp:
        try:
            built = await asyncio.to_thread(_build, plan, cfg, Path(tmp))
            await asyncio.to_thread(store.put, plan.key, built.path)
        except (audio.AudioError, StoreError) as exc:
            await _save(sessions, call_id, retry(str(exc)))
            return await _status(sessions, call_id)

    def stored(row: CallAudio) -> None:
        row.status, row.error, row.next_attempt_at = AudioStatus.STORED.value, None, None
        row.attempts = (row.attempts or 0) + 1
        row.backend, row.key = store.name, plan.key
        row.content_type = audio.FORMATS[cfg.audio_format][1]
        row.size_bytes, row.duration_seconds = built.size, built.duration
        row.channels, row.sha256, row.activity = built.channels, built.sha256, built.activity
        row.team_id, row.finalized_at = plan.team_id, utcnow()

    await _save(sessions, call_id, stored)
    await asyncio.to_thread(_remove, plan.originals)
    log.info("call %s: recording stored as %s (%.1f s, %d bytes)", call_id, plan.key,
             built.duration, built.size)
    return AudioStatus.STORED.value


async def _status(sessions: async_sessionmaker[AsyncSession], call_id: int) -> str:
    async with sessions() as session:
        row = await jobs.audio_of(session, call_id)
        return row.status if row else "gone"
