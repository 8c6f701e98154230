"""Transcription inside ``telecrm serve``: one in-process worker, when a model is configured.

Only when ``TELECRM_VOSK_MODEL`` names a model: a Vosk model takes memory and
minutes to load, so a CRM started without one (a demo, a test) never loads the
packaged fallback by itself. The model loads in the background after start-up;
the queue is the in-process one unless Redis is configured, in which case this
worker joins the others (``telecrm worker`` on other machines).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from crm_core.stopping import stop_tasks
from telecrm.settings import Settings
from telecrm.speech import alerts as speech_alerts
from telecrm.web.keys import SETTINGS, WRITER_SESSIONS

log = logging.getLogger(__name__)

# The transcription queues this process's worker uses (at most one): the metrics read the
# in-process queue's depth and failures here (with Redis they read Redis itself).
SPEECH_QUEUES = web.AppKey("speech_queues", list[Any])


async def _work(app: web.Application, settings: Settings) -> None:
    from speech.jobs import InProcessQueue, JobQueue, RedisStreamQueue
    from speech.model import ModelError, load_model, resolve_model_dir
    from speech.worker import SpeechWorker
    from telecrm.app import recordings_config
    from telecrm.speech.cli import recordings_store

    try:
        model = await asyncio.to_thread(load_model, resolve_model_dir(settings.vosk_model))
    except ModelError as exc:
        log.error("speech: transcription is off: %s", exc)
        return
    queue: JobQueue = (RedisStreamQueue(settings.redis_url) if settings.redis_url
                       else InProcessQueue())
    worker = SpeechWorker(app[WRITER_SESSIONS], queue, model, settings.recordings_source,
                          recordings=recordings_store(recordings_config(settings)),
                          threads=max(1, settings.speech_threads),
                          after_transcript=speech_alerts.deliverer(app))
    log.info("speech: transcribing with %s on %d thread(s)", model.name, worker.threads)
    queues = app[SPEECH_QUEUES]
    queues.append(queue)
    try:
        await worker.run()
    finally:
        queues.remove(queue)
        worker.close()
        await queue.close()


async def speech_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the in-process transcription worker while the app runs (see the module doc)."""
    settings = app[SETTINGS]
    task = None
    if settings.vosk_model and settings.speech_threads > 0:
        task = asyncio.create_task(_work(app, settings), name="speech-worker")
    yield
    if task is not None:
        await stop_tasks(task)
