"""Background tasks stop for good, even one that swallowed its first cancellation.

Python 3.11's ``asyncio.wait_for`` does that for real: when the awaited answer arrives
in the same loop turn as the cancellation, it returns the answer and the cancellation
is lost. A task following a Redis subscription or an AMI answer can hit it at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest

from crm_core.stopping import stop_tasks


async def test_a_task_that_lost_its_cancellation_is_stopped_all_the_same() -> None:
    answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    got: list[str] = []

    async def follower() -> None:
        got.append(await asyncio.wait_for(answer, 60))
        await asyncio.sleep(3600)  # and on to the next message, as if never cancelled

    task = asyncio.create_task(follower(), name="follower")
    await asyncio.sleep(0)  # it waits for the answer
    answer.set_result("a message")
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=0.5)
    if sys.version_info < (3, 12):  # the lost cancellation: one cancel() is not enough
        assert not done and got == ["a message"]
    await asyncio.wait_for(stop_tasks(task), 5)
    assert task.cancelled()


async def test_stopping_reports_a_task_that_had_failed_and_stops_the_others(
        caplog: pytest.LogCaptureFixture) -> None:
    async def fails() -> None:
        raise RuntimeError("the database went away")

    failed = asyncio.create_task(fails(), name="rounds")
    waiting = asyncio.create_task(asyncio.sleep(3600), name="beat")
    await asyncio.sleep(0.01)
    with caplog.at_level(logging.ERROR):
        await stop_tasks(failed, waiting, None)
    assert waiting.cancelled()
    assert "rounds had failed before it was stopped" in caplog.text
    assert "the database went away" in caplog.text
