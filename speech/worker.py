"""The transcription worker: one process, one resident Vosk model, a few recognizer threads.

A job is a call: its manager and client audio is transcribed (each leg on its own:
the per-leg originals, or the stored stereo file's channels once finalize removed
them, see speech.sources), the transcript saved, and the call checked against the
script version in force for it (or the ``--script`` override) and the result saved;
only then is the job acked. Vosk allows one
``Model`` shared by recognizers on many threads, and one recognizer uses one core,
so a small thread pool per machine is the unit of scale, not a process per job.
Vosk's memory creeps over long runs: ``max_jobs`` lets a supervisor recycle us.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.speech import scripts as kkp_scripts
from crm_core.speech import transcripts as store
from crm_core.stopping import stop_tasks
from recordings.store import Store
from speech.audio import AudioError
from speech.jobs import Job, JobQueue
from speech.kkp import check, load_script
from speech.model import LoadedModel
from speech.script import KkpError, Script, parse_script_text
from speech.sources import call_legs
from speech.transcribe import transcribe_legs

log = logging.getLogger(__name__)
T = TypeVar("T")


class JobFailed(Exception):
    """The job can never succeed as it stands (no recordings, unreadable audio)."""


@dataclass(frozen=True)
class KkpScript:
    """A loaded script and the version its results are stored under (a digest of its text)."""

    script: Script
    version: str
    script_id: int | None = None

    @classmethod
    def load(cls, path: Path) -> KkpScript:
        """Raises ``KkpError`` with a clear sentence when the file is unusable."""
        script = load_script(path)
        return cls(script, hashlib.sha256(path.read_bytes()).hexdigest()[:16])


class _Vocabulary:
    """The model's words as a container, so phrases it cannot hear need review."""

    def __init__(self, model: LoadedModel) -> None:
        self._model = model

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self._model.knows(word)


def _transcribe_call(model: LoadedModel, root: Path, paths: list[str],
                     stored: dict[str, Any] | None, recordings: Store | None) -> dict[str, Any]:
    """In a pool thread: find the call's audio (originals or stored stereo) and transcribe it."""
    with call_legs(root, paths, stored, recordings) as legs:
        return transcribe_legs(model, legs)


class SpeechWorker:
    """Takes jobs from a queue and does them, at most ``threads`` at a time."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], queue: JobQueue,
                 model: LoadedModel, recordings_root: Path, *, script: KkpScript | None = None,
                 recordings: Store | None = None, use_stored_scripts: bool = True,
                 threads: int = 2, scan_interval: float = 5.0,
                 after_transcript: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.sessions, self.queue, self.model = sessions, queue, model
        # told the call's id once its transcript is committed (the app delivers its alerts)
        self.after_transcript = after_transcript
        self.recordings_root, self.script = recordings_root, script
        self.recordings = recordings  # the finalized recordings' store (stereo per call)
        self.use_stored_scripts = use_stored_scripts
        self.threads, self.scan_interval = max(1, threads), scan_interval
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="vosk")
        self._vocabulary = _Vocabulary(model)
        self.done = 0

    async def _in_pool(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def enqueue_missing(self) -> int:
        """Queue every ended call with recordings and no transcript (the durable hook)."""
        async with self.sessions() as session:
            ids = await store.calls_without_transcript(session)
        return sum([await self.queue.put(call_id) for call_id in ids])

    async def process(self, job: Job) -> str:
        """Do one job; ``done``, ``failed`` (recorded, never retried) or ``retry``."""
        try:
            await self.do_call(job.call_id)
        except JobFailed as exc:
            log.warning("call %s: transcription failed: %s", job.call_id, exc)
            await self.queue.fail(job, str(exc))
            return "failed"
        except Exception:  # the database or Redis hiccuped: another delivery will do it
            log.exception("call %s: job crashed; it will be delivered again", job.call_id)
            await self.queue.release(job)
            return "retry"
        await self.queue.ack(job)
        return "done"

    async def do_call(self, call_id: int) -> None:
        """Transcribe one call (unless done) and check it; raises ``JobFailed`` for bad audio."""
        async with self.sessions() as session:
            existing = await store.get_transcript(session, call_id)
            transcript = existing.data if existing is not None else None
            paths = await store.recording_paths(session, call_id)
            stored = await store.stored_audio(session, call_id)
        if transcript is None:  # a redelivered job whose transcript is saved skips the ASR
            try:
                transcript = await self._in_pool(_transcribe_call, self.model,
                                                 self.recordings_root, paths, stored,
                                                 self.recordings)
            except AudioError as exc:
                raise JobFailed(str(exc)) from exc
            async with self.sessions() as session:
                await store.save_transcript(session, call_id, transcript)
                await session.commit()
            if self.after_transcript is not None:
                try:
                    await self.after_transcript(call_id)
                except Exception:  # the alerts wait for the app's sweeper, the job goes on
                    log.exception("call %s: telling of the transcript failed", call_id)
        script = self.script or await self._stored_script(call_id)
        if script is not None:
            result = await self._in_pool(check, script.script, transcript, self._vocabulary)
            async with self.sessions() as session:
                await store.save_kkp_result(session, call_id, script.script.name,
                                            script.version, result, script_id=script.script_id)
                await session.commit()

    async def _stored_script(self, call_id: int) -> KkpScript | None:
        """The script version in force at the call's start for its stage, team or company."""
        if not self.use_stored_scripts:
            return None
        async with self.sessions() as session:
            row = await kkp_scripts.script_for_call(session, call_id)
        if row is None:
            return None
        try:
            return KkpScript(parse_script_text(row.text), row.digest, row.id)
        except KkpError as exc:  # validated on upload; a later validator may be stricter
            raise JobFailed(f"stored script {row.id} is no longer valid: {exc}") from exc

    async def run(self, *, max_jobs: int | None = None, scan: bool = True) -> int:
        """Work until cancelled or ``max_jobs`` are finished; returns how many were."""
        slots = asyncio.Semaphore(self.threads)
        running: set[asyncio.Task[None]] = set()
        scanner = asyncio.create_task(self._scan_forever()) if scan else None

        async def one(job: Job) -> None:
            try:
                if await self.process(job) != "retry":
                    self.done += 1
            finally:
                slots.release()

        try:
            while max_jobs is None or self.done + len(running) < max_jobs:
                await slots.acquire()
                try:
                    job = await self.queue.get(timeout=1.0)
                except Exception:
                    slots.release()
                    log.exception("speech worker: cannot take a job; trying again")
                    await asyncio.sleep(1.0)
                    continue
                if job is None:
                    slots.release()
                    continue
                task = asyncio.create_task(one(job))
                running.add(task)
                task.add_done_callback(running.discard)
            if running:
                await asyncio.gather(*running)
        finally:
            if scanner is not None:
                await stop_tasks(scanner)
            for task in running:
                task.cancel()
        return self.done

    async def _scan_forever(self) -> None:
        while True:
            try:
                await self.enqueue_missing()
            except Exception:
                log.exception("speech worker: scan failed; trying again")
            await asyncio.sleep(self.scan_interval)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
