"""Finalize throughput: N one-minute call recordings (two sides each) on this machine's cores.

Beside it, ffmpeg alone encoding the same files (the floor: everything else the
finalizer does — header checks, pydub decode, silence and activity analysis,
ffprobe check, checksum, atomic store, database — is the overhead).

    .venv/bin/python -m bench.recordings_finalize              # 40 calls (moderate)
    .venv/bin/python -m bench.recordings_finalize --calls 1000 # the full run
    .venv/bin/python -m bench.recordings_finalize --store s3   # into radosgw (S3), as root
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crm_core.calls.services import record_call
from crm_core.calls.snapshot import CallData
from crm_core.db import create_engine, session_factory, upgrade
from recordings.audio import encode
from recordings.config import RecordingsConfig
from recordings.store import DirectoryStore, Store
from recordings.worker import FinalizeWorker
from telecrm.wiring import call_hooks
from tests.recordings.test_recordings_support import frames, side_file, speech

HOOKS = call_hooks()  # what the product does with each written call

SECONDS = 60.0


def _make_sources(tmp: Path, calls: int) -> list[tuple[str, list[str]]]:
    words_m = frames(speech(tmp / "m.wav", "good afternoon, this is Ivan from the sales team"))
    words_c = frames(speech(tmp / "c.wav", "hello, we would like to order ten tons", pitch=80))
    base = tmp / "monitor" / "2026" / "11" / "23"
    side_file(base / "proto-manager.wav", words_m * 6, at=0.5, total=SECONDS)
    side_file(base / "proto-client.wav", words_c * 6, at=3.0, total=SECONDS)
    out = []
    for n in range(calls):
        rel = []
        for side in ("manager", "client"):
            name = f"1795406555.{n}-{side}.wav"
            os.link(base / f"proto-{side}.wav", base / name)  # same bytes, no copying cost
            rel.append(f"2026/11/23/{name}")
        out.append((f"1795406555.{n}", rel))
    return out


async def _finalize(tmp: Path, calls: list[tuple[str, list[str]]], workers: int,
                    store: Store) -> float:
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    await upgrade(url)
    engine = create_engine(url)
    sessions = session_factory(engine, writer=True)
    t0 = datetime(2026, 11, 23, 10, tzinfo=UTC)
    async with sessions() as session:
        for linkedid, rel in calls:
            await record_call(session, CallData(
                linkedid=linkedid, direction="inbound", status="answered",
                client_number="+79161234567", did=None, started_at=t0, answered_at=t0,
                ended_at=t0 + timedelta(seconds=SECONDS), ring_seconds=0,
                talk_seconds=SECONDS, transferred=False, managers=(), recordings=tuple(rel),
                legs=(), rang=()), hooks=HOOKS)
        await session.commit()
    cfg = RecordingsConfig(store_dir=tmp / "store", settle_seconds=0, workers=workers)
    worker = FinalizeWorker(sessions, tmp / "monitor", store, cfg)
    start = time.perf_counter()
    outcomes = await worker.run_once()
    elapsed = time.perf_counter() - start
    await engine.dispose()
    assert outcomes == {"stored": len(calls)}, outcomes
    return elapsed


def _ffmpeg_alone(tmp: Path, count: int, workers: int) -> float:
    base = tmp / "monitor" / "2026" / "11" / "23"
    inputs = [base / "proto-manager.wav", base / "proto-client.wav"]
    (tmp / "ff").mkdir()
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda n: encode(inputs, tmp / "ff" / f"{n}.ogg", "opus", SECONDS),
                      range(count)))
    return time.perf_counter() - start


def _s3_store(server: object) -> Store:
    from recordings.s3store import S3Location, S3Store
    from tests.support.s3_server import RADOSGW_RANGED_GET_BROKEN, RadosGW

    assert isinstance(server, RadosGW)
    return S3Store(S3Location(server.bucket, "bench", server.endpoint_url, server.access_key,
                              server.secret_key, ranged_get=not RADOSGW_RANGED_GET_BROKEN))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--store", choices=["directory", "s3"], default="directory",
                        help="s3: a local radosgw started for the run (tests/support/s3_server.py)")
    args = parser.parse_args()
    server = None
    with tempfile.TemporaryDirectory(prefix="bench-rec-") as raw:
        tmp = Path(raw)
        if args.store == "s3":
            from tests.support.s3_server import start_server

            server = start_server()
            store = _s3_store(server)
        else:
            store = DirectoryStore(tmp / "store")
        try:
            calls = _make_sources(tmp, args.calls)
            ff = _ffmpeg_alone(tmp, args.calls, args.workers)
            fin = asyncio.run(_finalize(tmp, calls, args.workers, store))
            if isinstance(store, DirectoryStore):
                size = sum(p.stat().st_size for p in (tmp / "store").rglob("*.ogg"))
            else:
                keys = store.keys()  # type: ignore[attr-defined]
                assert len(keys) == args.calls, len(keys)
                size = sum(store.size(k) or 0 for k in keys)
        finally:
            if server is not None:
                server.discard()  # type: ignore[attr-defined]
    audio_h = args.calls * SECONDS / 3600
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout
    print(f"calls={args.calls} x {SECONDS:.0f} s stereo, workers={args.workers}, "
          f"cpus={os.cpu_count()}, ffmpeg {version.split()[2]}, store={args.store}")
    print(f"ffmpeg alone : {ff:7.2f} s  {args.calls / ff:6.2f} calls/s  "
          f"{audio_h * 3600 / ff:6.0f}x real time")
    print(f"finalize     : {fin:7.2f} s  {args.calls / fin:6.2f} calls/s  "
          f"{audio_h * 3600 / fin:6.0f}x real time  ({fin / ff:.2f}x ffmpeg alone)")
    print(f"stored       : {size / args.calls / 1024:.0f} KiB per one-minute call (Opus 24 kbit/s)")

if __name__ == "__main__":
    main()
