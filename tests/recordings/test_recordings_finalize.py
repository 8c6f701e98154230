"""Finalize on real files: stereo layout, checks, faults (absent, truncated, late, disk full)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import struct
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydub import AudioSegment
from sqlalchemy import select, update

from crm_core.calls.models import Recording
from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData, LegData, RecordingRef
from crm_core.db import create_engine, session_factory
from crm_core.people.users import add_user
from crm_core.recordings.jobs import set_retention
from crm_core.recordings.models import AudioStatus, CallAudio
from recordings.config import RecordingsConfig
from recordings.retention import apply_retention
from recordings.store import DirectoryStore
from recordings.worker import FinalizeWorker
from telecrm.wiring import call_hooks
from tests.recordings.test_recordings_support import frames, side_file, speech
from tests.support.db_fixtures import migrated

HOOKS = call_hooks()  # what the product does with each written call

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TOTAL = 8.0  # seconds of each side


@dataclass
class Env:
    sessions: object
    monitor: Path
    store_dir: Path
    cfg: RecordingsConfig
    worker: FinalizeWorker
    words: dict[str, bytes]

    async def call(self, n: int = 1, *, sides: bool = True) -> tuple[int, list[Path]]:
        linkedid = f"1795406555.{n}"
        names = ("manager", "client") if sides else ("mix",)
        rel = [f"2026/11/23/{linkedid}-{s}.wav" for s in names]
        data = CallData(
            linkedid=linkedid, direction="inbound", status="answered",
            client_number="+79161234567", did=None, started_at=T0,
            answered_at=T0 + timedelta(seconds=2), ended_at=T0 + timedelta(seconds=10),
            ring_seconds=2, talk_seconds=TOTAL, transferred=False, managers=("101",),
            recordings=tuple(rel),
            legs=(LegData(uniqueid=f"{linkedid}-m", channel="PJSIP/101-1", role="manager",
                          extension="101", started_at=T0, answered_at=T0, ended_at=T0,
                          talk_seconds=TOTAL),),
            rang=("101",))
        async with self.sessions() as session:  # type: ignore[operator]
            call = await record_call(session, data, hooks=HOOKS)
            await session.commit()
        return call.id, [self.monitor / p for p in rel]

    def write(self, paths: list[Path], **kw: float) -> None:
        """Manager speaks at 0.5 s, the client at 4.5 s (known, separable in time)."""
        for path in paths:
            side = path.stem.rsplit("-", 1)[1]
            at = 4.5 if side == "client" else 0.5
            side_file(path, self.words["client" if side == "client" else "manager"],
                      at=at, total=TOTAL, **kw)

    async def audio(self, call_id: int) -> CallAudio:
        async with self.sessions() as session:  # type: ignore[operator]
            return (await session.scalars(
                select(CallAudio).where(CallAudio.call_id == call_id))).one()

    def stored_files(self) -> list[Path]:
        return sorted(p for p in self.store_dir.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def words(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("words")
    return {"manager": frames(speech(d / "m.wav", "good afternoon, this is Ivan")),
            "client": frames(speech(d / "c.wav", "hello, we need ten tons", pitch=80))}


@pytest.fixture
async def env(tmp_path: Path, words: dict[str, bytes]) -> AsyncIterator[Env]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    await migrated(url)
    engine = create_engine(url)
    sessions = session_factory(engine, writer=True)
    async with sessions() as session:
        await add_user(session, "ivan", "Иван", extension="101", team="sales")
        await session.commit()
    cfg = RecordingsConfig(store_dir=tmp_path / "store", settle_seconds=1.0, max_attempts=3,
                           retry_base_seconds=0.0, workers=2)
    store = DirectoryStore(cfg.store_dir)
    monitor = tmp_path / "monitor"
    worker = FinalizeWorker(sessions, monitor, store, cfg)
    yield Env(sessions, monitor, cfg.store_dir, cfg, worker, words)
    await engine.dispose()


def energy(seg: AudioSegment, start: float, end: float) -> float:
    return float(seg[int(start * 1000):int(end * 1000)].rms)


async def test_stereo_file_stored_with_manager_left_client_right(env: Env) -> None:
    call_id, paths = await env.call()
    env.write(paths)
    assert await env.worker.run_once() == {"stored": 1}
    audio = await env.audio(call_id)
    (stored,) = env.stored_files()
    assert stored.relative_to(env.store_dir).as_posix() == audio.key
    assert audio.key == f"2026/11/23/101/{call_id}-1795406555.1.ogg"
    assert audio.sha256 == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert audio.size_bytes == stored.stat().st_size < 60_000
    assert audio.duration_seconds == pytest.approx(TOTAL, abs=0.05)
    assert audio.team_id is not None
    assert not any(p.exists() for p in paths), "originals are removed once stored"
    decoded = AudioSegment.from_file(stored)
    assert decoded.channels == 2
    assert len(decoded) / 1000 == pytest.approx(TOTAL, abs=0.5)
    left, right = decoded.split_to_mono()
    assert energy(left, 0.5, 2.5) > 20 * energy(right, 0.5, 2.5)  # the manager speaks
    assert energy(right, 4.5, 6.5) > 20 * energy(left, 4.5, 6.5)  # the client answers
    act = audio.activity
    assert act is not None and act["manager"] and act["client"]
    assert 0.3 <= act["manager"][0][0] <= 0.8 and act["manager"][-1][1] < 4.0
    assert 4.3 <= act["client"][0][0] <= 4.8


async def test_absent_then_written_late_is_retried_not_lost(env: Env) -> None:
    call_id, paths = await env.call()
    assert await env.worker.run_once() == {"pending": 1}
    audio = await env.audio(call_id)
    assert audio.attempts == 1 and "missing" in (audio.error or "")
    env.write(paths, age=0)  # appears late, and is still being written
    assert await env.worker.run_once() == {"pending": 1}
    assert "still being written" in ((await env.audio(call_id)).error or "")
    await asyncio.sleep(env.cfg.settle_seconds + 0.1)
    assert await env.worker.run_once() == {"stored": 1}
    assert len(env.stored_files()) == 1


async def test_truncated_file_marks_the_call_failed_and_keeps_originals(env: Env) -> None:
    call_id, paths = await env.call()
    env.write(paths)
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) // 2])  # header still claims the full length
    side_file  # noqa: B018 -- the helper's back-dating is redone below
    import os
    os.utime(paths[1], (0, 0))
    for _ in range(env.cfg.max_attempts):
        await env.worker.run_once()
    audio = await env.audio(call_id)
    assert audio.status == AudioStatus.FAILED
    assert "client: truncated" in (audio.error or "")
    assert all(p.exists() for p in paths), "never silently dropped"
    assert env.stored_files() == []


async def test_header_of_a_file_asterisk_still_holds_open(env: Env) -> None:
    call_id, paths = await env.call()
    env.write(paths)
    raw = bytearray(paths[0].read_bytes())  # Asterisk writes sizes only when it closes
    struct.pack_into("<I", raw, 4, 36)
    struct.pack_into("<I", raw, 40, 0)
    paths[0].write_bytes(bytes(raw))
    import os
    os.utime(paths[0], (0, 0))
    await env.worker.run_once()
    assert "manager: open" in ((await env.audio(call_id)).error or "")


async def test_silent_recording_is_flagged(env: Env) -> None:
    call_id, paths = await env.call()
    for p in paths:
        side_file(p, b"", at=0, total=3)
    for _ in range(env.cfg.max_attempts):
        await env.worker.run_once()
    audio = await env.audio(call_id)
    assert audio.status == AudioStatus.FAILED and "silent" in (audio.error or "")


async def test_mixed_only_is_stored_mono(env: Env) -> None:
    call_id, paths = await env.call(sides=False)
    env.write(paths)
    assert await env.worker.run_once() == {"stored": 1}
    audio = await env.audio(call_id)
    assert audio.channels == 1 and list(audio.activity or {}) == ["mixed"]


async def test_freepbx_mono_file_announced_by_its_absolute_path_plays(env: Env) -> None:
    """FreePBX records one mono mix in dated folders and names MIXMONITOR_FILENAME by its
    absolute path, with no CRM_REC_* variables: it is stored relative to the source root
    and finalized as the call's mixed recording."""
    from pbx_bridge.store import CallStore
    from pbx_bridge.tracker import Fact, FactKind

    rel = "2026/12/05/in-74951234567-101-20261205-101500-1733380000.123.wav"
    absolute = str(env.monitor / rel)
    data = CallData(
        linkedid="1733380000.123", direction="inbound", status="answered",
        client_number="+79161234567", did=None, started_at=T0,
        answered_at=T0 + timedelta(seconds=2), ended_at=T0 + timedelta(seconds=10),
        ring_seconds=2, talk_seconds=TOTAL, transferred=False, managers=("101",),
        recordings=(absolute,),
        recording_details=(RecordingRef(absolute, "mix", "1733380000.123"),),
        legs=(LegData(uniqueid="1733380000.123", channel="PJSIP/carrier-1", role="client",
                      extension=None, started_at=T0, answered_at=T0, ended_at=T0,
                      talk_seconds=TOTAL),))
    store = CallStore(env.sessions, HOOKS, recordings_root=env.monitor)  # type: ignore[arg-type]
    await store([Fact(FactKind.ENDED, T0, data)])
    async with env.sessions() as session:  # type: ignore[operator]
        (call_id, path, side) = (await session.execute(
            select(Recording.call_id, Recording.path, Recording.side))).one()
    assert (path, side) == (rel, "mix")
    env.write([env.monitor / rel])
    assert await env.worker.run_once() == {"stored": 1}
    audio = await env.audio(call_id)
    assert audio.channels == 1 and list(audio.activity or {}) == ["mixed"]


async def test_repeated_and_concurrent_finalize_make_one_copy(env: Env) -> None:
    call_id, paths = await env.call()
    env.write(paths)
    from recordings.finalize import finalize_call
    results = await asyncio.gather(*(
        finalize_call(env.sessions, call_id, env.monitor, env.worker.store, env.cfg)  # type: ignore[arg-type]
        for _ in range(3)))
    assert "stored" in results
    # a crash after storing, before removing the originals: they come back
    env.write(paths)
    assert await finalize_call(env.sessions, call_id, env.monitor, env.worker.store,  # type: ignore[arg-type]
                               env.cfg) == "stored"
    assert not any(p.exists() for p in paths)
    assert len(env.stored_files()) == 1


@pytest.fixture
def tiny_store(tmp_path: Path) -> AsyncIterator[Path]:
    """A real 1 MiB tmpfs: the store's disk really fills up (root only)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


async def test_disk_full_on_the_store_keeps_originals_and_retries(env: Env,
                                                                  tiny_store: Path) -> None:
    env.worker.store = DirectoryStore(tiny_store)
    env.store_dir = tiny_store
    filler = tiny_store / "filler"
    filler.write_bytes(b"\0" * (1024 * 1024 - 4096 * 2))
    call_id, paths = await env.call()
    env.write(paths)
    assert await env.worker.run_once() == {"pending": 1}
    audio = await env.audio(call_id)
    assert "No space left" in (audio.error or "")
    assert all(p.exists() for p in paths)
    assert [p.name for p in env.stored_files()] == ["filler"], "no partial file left"
    filler.unlink()
    assert await env.worker.run_once() == {"stored": 1}
    assert len(env.stored_files()) == 1


async def test_retention_per_team_removes_and_logs(env: Env,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    ids = []
    for n in (1, 2):
        call_id, paths = await env.call(n)
        env.write(paths)
        ids.append(call_id)
    await env.worker.run_once()
    audio = await env.audio(ids[0])
    async with env.sessions() as session:  # type: ignore[operator]
        await set_retention(session, audio.team_id, 30)  # type: ignore[arg-type]
        now = datetime.now(UTC)
        await session.execute(update(CallAudio).where(CallAudio.call_id == ids[0])
                              .values(finalized_at=now - timedelta(days=31)))
        await session.execute(update(CallAudio).where(CallAudio.call_id == ids[1])
                              .values(finalized_at=now - timedelta(days=29)))
        await session.commit()
    with caplog.at_level(logging.INFO, logger="recordings.retention"):
        removed = await apply_retention(env.sessions, env.worker.store, 365)  # type: ignore[arg-type]
    assert removed == [audio.key]
    assert f"removed {audio.key}" in caplog.text
    assert (await env.audio(ids[0])).status == AudioStatus.EXPIRED
    assert (await env.audio(ids[1])).status == AudioStatus.STORED
    assert len(env.stored_files()) == 1


def test_tools_present() -> None:
    for tool in ("ffmpeg", "ffprobe", "espeak-ng", "sox"):
        assert shutil.which(tool), tool


async def test_each_pbxs_recordings_are_read_where_that_pbx_writes_them(
        env: Env, tmp_path: Path) -> None:
    """Two PBXs, the same linkedid and file names, each PBX's files in its own folder."""
    from crm_core.calls.snapshot import on_pbx

    main_id, main_paths = await env.call()
    env.write(main_paths)
    spb_monitor = tmp_path / "spb-monitor"
    async with env.sessions() as session:  # type: ignore[operator]
        data = (await session.scalars(select(Recording.path))).all()
    # the St Petersburg call: the same Asterisk ids and file names, in its own folder
    spb_paths = [spb_monitor / path for path in data]
    spb = CallData(
        linkedid="1795406555.1", direction="inbound", status="answered",
        client_number="+79161234567", did=None, started_at=T0,
        answered_at=T0 + timedelta(seconds=2), ended_at=T0 + timedelta(seconds=10),
        ring_seconds=2, talk_seconds=TOTAL, transferred=False, managers=("101",),
        recordings=tuple(data), legs=(), rang=("101",))
    async with env.sessions() as session:  # type: ignore[operator]
        spb_id = (await record_call(session, on_pbx(spb, "spb"), hooks=HOOKS)).id
        await session.commit()
    env.write(spb_paths)
    worker = FinalizeWorker(env.sessions, env.monitor, DirectoryStore(env.store_dir),  # type: ignore[arg-type]
                            env.cfg, pbx_roots={"main": env.monitor, "spb": spb_monitor})
    assert await worker.run_once() == {"stored": 2}
    assert (await env.audio(main_id)).key != (await env.audio(spb_id)).key
    assert not any(p.exists() for p in [*main_paths, *spb_paths])


def test_the_encoder_yields_the_cores_to_pages_and_the_listener() -> None:
    """ffmpeg runs niced, in a niced scheduling group of its own: a burst of ended calls
    must not slow the people's pages, which run in other sessions (other groups)."""
    from recordings.audio import BACKGROUND_NICENESS, run_in_background

    own = os.nice(0)
    shown = run_in_background(["sh", "-c", "ps -o ni=,sid= -p $$; cat /proc/self/autogroup"],
                              timeout=30)
    niceness, session = shown.stdout.split()[:2]
    assert int(niceness) == min(19, own + BACKGROUND_NICENESS)
    assert int(session) != os.getsid(0)  # a session of its own, so a group of its own
    if Path("/proc/self/autogroup").exists():  # kernels that group by session
        assert shown.stdout.split("\n")[1].endswith(f" nice {BACKGROUND_NICENESS}")
