"""Outbound webhooks against a real receiver on loopback: signed deliveries, retries by
the schedule (the pinned clock moved past each wait), failures, «Отправить снова», the
events queued where they happen (a deal won, a script check, a replayed call), and the
refusal of addresses on the local network."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.audit import AuditLog
from crm_core.clock import utcnow
from crm_core.db import create_engine, session_factory
from crm_core.errors import DomainError
from crm_core.integrations.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from crm_core.integrations.outbox import RETRY_SCHEDULE, purge_log, queue_event, resend
from crm_core.integrations.webhooks import check_url, create_endpoint, set_endpoint_active
from crm_core.sales.deals import StageSpec, create_deal, create_pipeline, move_deal
from crm_core.sales.models import DealStatus, PipelineStage
from crm_core.speech.transcripts import save_kkp_result
from telecrm.integrations.sender import PublicResolver, deliver_due
from telecrm.settings import Settings
from tests.integrations.receiver import Received, Receiver, receiver
from tests.support.browser import World, free_port, seed_world, serve_app
from tests.support.db_fixtures import (  # noqa: F401
    db_url_fixture,
    migrated,
)
from tests.support.floor import Floor, served_floor
from tests.support.live import telecrm

CAPTURES = Path(__file__).resolve().parents[1] / "captures"


@pytest.fixture
async def sessions(db_url: str, tmp_path: Path
                   ) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], World]]:
    world = await seed_world(db_url, tmp_path / "recordings")
    engine = create_engine(db_url)
    try:
        yield session_factory(engine, writer=True), world
    finally:
        await engine.dispose()


async def _endpoint(sessions: async_sessionmaker[AsyncSession], url: str,
                    events: list[str], *, allow_private: bool = True) -> WebhookEndpoint:
    async with sessions() as session, session.begin():
        return await create_endpoint(session, name="Получатель", url=url, events=events,
                                     actor=None, allow_private=allow_private)


async def _deliveries(sessions: async_sessionmaker[AsyncSession]) -> list[WebhookDelivery]:
    async with sessions() as session:
        return list(await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


async def test_a_signed_delivery_reaches_the_receiver_once(
        sessions: tuple[async_sessionmaker[AsyncSession], World]) -> None:
    factory, _ = sessions
    async with receiver() as hook:
        endpoint = await _endpoint(factory, hook.url, ["lead.created", "deal.won"])
        other = await _endpoint(factory, hook.url, ["call.ended"])  # hears something else
        off = await _endpoint(factory, hook.url, ["lead.created"])
        async with factory() as session, session.begin():
            await set_endpoint_active(session, off.id, False, actor=None)
        lead = {"id": 7, "name": "Заявка с сайта", "phone": "+79161234567"}
        async with factory() as session, session.begin():
            assert await queue_event(session, "lead.created", lead, key="7") == 1
        async with factory() as session, session.begin():  # reported twice, queued once
            await queue_event(session, "lead.created", lead, key="7")
        (row,) = await _deliveries(factory)
        assert (row.endpoint_id, row.state, row.attempts) == (endpoint.id, "pending", 0)
        assert await deliver_due(factory, allow_private=True) == 1
        assert await deliver_due(factory, allow_private=True) == 0  # sent once
        (got,) = hook.received
        assert got.signed_with(endpoint.secret) and got.verified_as_readme_says(endpoint.secret)
        assert not got.signed_with(other.secret)
        assert not got.verified_as_readme_says(other.secret)
        tampered = Received(got.headers, got.body.replace(b"7", b"8"))
        assert not tampered.verified_as_readme_says(endpoint.secret)
        assert got.headers["X-Telecrm-Event"] == "lead.created"
        assert got.headers["X-Telecrm-Delivery"] == row.delivery_id
        assert got.headers["Content-Type"] == "application/json"
        body = got.json
        assert body["id"] == row.delivery_id and body["event"] == "lead.created"
        assert body["data"] == lead and body["created_at"].endswith("+00:00")
        (row,) = await _deliveries(factory)
        assert (row.state, row.attempts, row.last_status) == ("delivered", 1, 200)
        assert row.delivered_at is not None and row.next_attempt_at is None


@pytest.mark.clock("2026-11-20T12:00:00+03:00")
async def test_retried_by_the_schedule_then_failed_then_sent_again(
        sessions: tuple[async_sessionmaker[AsyncSession], World],
        _clock_of_the_test: Any) -> None:
    factory, _ = sessions
    clock = _clock_of_the_test
    async with receiver() as hook:
        endpoint = await _endpoint(factory, hook.url, ["lead.created"])
        hook.answers = [500]
        async with factory() as session, session.begin():
            await queue_event(session, "lead.created", {"id": 1}, key="1")
        assert await deliver_due(factory, allow_private=True) == 1
        (row,) = await _deliveries(factory)
        assert (row.state, row.attempts, row.last_status) == ("pending", 1, 500)
        assert row.last_error == "Получатель ответил ошибкой HTTP 500."
        assert row.next_attempt_at - row.last_attempt_at == timedelta(minutes=1)
        assert await deliver_due(factory, allow_private=True) == 0  # not due yet
        clock.shift(timedelta(seconds=61))
        assert await deliver_due(factory, allow_private=True) == 1
        (row,) = await _deliveries(factory)
        assert (row.state, row.attempts, row.last_status) == ("delivered", 2, 200)
        first, second = hook.received
        assert first.headers["X-Telecrm-Delivery"] == second.headers["X-Telecrm-Delivery"]
        assert first.body == second.body  # the same delivery, re-signed at its own time
        assert first.signed_with(endpoint.secret) and second.signed_with(endpoint.secret)
        assert int(second.headers["X-Telecrm-Timestamp"]) \
            >= int(first.headers["X-Telecrm-Timestamp"]) + 60

        # a receiver that keeps failing: every wait of the schedule, then failed
        hook.received.clear()
        hook.answers = [503] * 6
        async with factory() as session, session.begin():
            await queue_event(session, "lead.created", {"id": 2}, key="2")
        assert await deliver_due(factory, allow_private=True) == 1
        for wait in RETRY_SCHEDULE:
            clock.shift(wait - timedelta(seconds=5))
            assert await deliver_due(factory, allow_private=True) == 0
            clock.shift(timedelta(seconds=10))
            assert await deliver_due(factory, allow_private=True) == 1
        row = (await _deliveries(factory))[-1]
        assert (row.state, row.attempts, row.last_status) == ("failed", 6, 503)
        assert len(hook.received) == 6
        assert len({r.headers["X-Telecrm-Delivery"] for r in hook.received}) == 1
        # «Отправить снова»: the same delivery id, due at once, audited
        async with factory() as session, session.begin():
            await resend(session, row.id, actor=None)
        assert await deliver_due(factory, allow_private=True) == 1
        again = (await _deliveries(factory))[-1]
        assert (again.state, again.attempts, again.delivery_id) == ("delivered", 1,
                                                                    row.delivery_id)
        async with factory() as session:
            actions = list(await session.scalars(select(AuditLog.action).where(
                AuditLog.entity == "webhook_delivery")))
        assert actions == ["resend"]

        # a 4xx is the receiver refusing this delivery: failed at once, never retried
        hook.answers = [410]
        async with factory() as session, session.begin():
            await queue_event(session, "lead.created", {"id": 3}, key="3")
        await deliver_due(factory, allow_private=True)
        row = (await _deliveries(factory))[-1]
        assert (row.state, row.attempts, row.last_status) == ("failed", 1, 410)

        # the log keeps 30 days of delivered and failed ones; a pending one stays
        hook.answers = [500]
        async with factory() as session, session.begin():
            await queue_event(session, "lead.created", {"id": 4}, key="4")
        await deliver_due(factory, allow_private=True)
        clock.shift(timedelta(days=31))
        async with factory() as session, session.begin():
            assert await purge_log(session, utcnow()) == 3
        assert [(r.payload, r.state) for r in await _deliveries(factory)] == [
            ({"id": 4}, "pending")]


@pytest.mark.clock("2026-11-20T12:00:00+03:00")
async def test_a_receiver_that_is_down_is_retried(
        sessions: tuple[async_sessionmaker[AsyncSession], World]) -> None:
    factory, _ = sessions
    await _endpoint(factory, f"http://127.0.0.1:{free_port()}/hook", ["lead.created"])
    async with factory() as session, session.begin():
        await queue_event(session, "lead.created", {"id": 1})
    await deliver_due(factory, allow_private=True)
    (row,) = await _deliveries(factory)
    assert (row.state, row.attempts, row.last_status) == ("pending", 1, None)
    assert row.last_error.startswith("Не удалось соединиться")


async def test_deal_won_and_script_check_are_queued_where_they_happen(
        sessions: tuple[async_sessionmaker[AsyncSession], World]) -> None:
    factory, world = sessions
    async with receiver() as hook:
        endpoint = await _endpoint(factory, hook.url, ["deal.won", "kkp.result"])
        async with factory() as session, session.begin():
            pipeline = await create_pipeline(session, "Продажи", [
                StageSpec("Квалификация"), StageSpec("Выиграна", DealStatus.WON.value),
                StageSpec("Проиграна", DealStatus.LOST.value)], by=None, actor="test")
            deal = await create_deal(session, client_id=world.clients["101"],
                                     pipeline_id=pipeline.id, title="Поставка", by=None,
                                     actor="test")
            won = await session.scalar(select(PipelineStage.id).where(
                PipelineStage.pipeline_id == pipeline.id, PipelineStage.outcome == "won"))
            assert won is not None
            await move_deal(session, deal, won, by=None, amount="125000.50", actor="test")
        result = {"score": 80, "stages": [], "violations": []}
        for _ in range(2):  # a transcription job run twice checks the call twice
            async with factory() as session, session.begin():
                await save_kkp_result(session, world.calls["romashka_101"], "Холодный звонок",
                                      "v1", result)
        rows = await _deliveries(factory)
        assert [r.event for r in rows] == ["deal.won", "kkp.result"]
        assert await deliver_due(factory, allow_private=True) == 2
        by_event = {r.headers["X-Telecrm-Event"]: r for r in hook.received}
        assert all(r.signed_with(endpoint.secret) for r in hook.received)
        deal_data = by_event["deal.won"].json["data"]
        assert deal_data["status"] == "won" and deal_data["client_name"] == "ООО Ромашка"
        assert Decimal(deal_data["won_amount"]) == Decimal("125000.50")
        kkp = by_event["kkp.result"].json["data"]
        assert kkp["call_id"] == world.calls["romashka_101"] and kkp["score"] == 80
        assert kkp["script"] == "Холодный звонок" and kkp["result"] == result


async def test_addresses_on_the_local_network_are_refused(
        sessions: tuple[async_sessionmaker[AsyncSession], World]) -> None:
    for url in ("http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.1.2.3/",
                "http://192.168.1.10/", "http://169.254.169.254/latest/meta-data",
                "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/",
                "http://crm.internal/", "http://intranet/", "https://100.64.0.1/"):
        with pytest.raises(DomainError) as refused:
            check_url(url, allow_private=False)
        assert refused.value.code == "integrations.url_private", url
    for url in ("ftp://example.com/", "http://user:pw@example.com/", "example.com", "http://"):
        with pytest.raises(DomainError):
            check_url(url, allow_private=False)
    assert check_url(" https://example.com/hook ", allow_private=False) == \
        "https://example.com/hook"
    assert check_url("http://127.0.0.1:9/", allow_private=True) == "http://127.0.0.1:9/"
    # registered while the setting allowed it, sent after it was switched off: refused at
    # the door, the receiver never hears of it, and no retry is planned
    factory, _ = sessions
    async with receiver() as hook:
        await _endpoint(factory, hook.url, ["lead.created"])
        async with factory() as session, session.begin():
            await queue_event(session, "lead.created", {"id": 1})
        assert await deliver_due(factory, allow_private=False) == 1
        assert hook.received == []
    (row,) = await _deliveries(factory)
    assert (row.state, row.attempts) == ("failed", 1)
    assert "в локальной сети" in (row.last_error or "")
    # and a name that resolves to the local network does not connect either
    with pytest.raises(OSError):
        await PublicResolver().resolve("localhost", 80)


@pytest.fixture
async def served_sender(db_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """``serve`` (web and the webhook sender, no AMI) on the database ``db_url``."""
    await migrated(db_url)
    settings = Settings(data_dir=tmp_path, database_url=db_url,
                        recordings_source=tmp_path / "recordings", webhooks_allow_private=True)
    async with serve_app(settings, webhooks=True) as (_, base):
        yield base


async def _wait_for(hook: Receiver, count: int, seconds: float = 20.0) -> None:
    for _ in range(int(seconds * 10)):
        if len(hook.received) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(hook.received)} deliveries arrived, {count} expected")


async def test_a_replayed_call_ends_in_a_call_ended_delivery(
        db_url: str, served_sender: str) -> None:
    engine = create_engine(db_url)
    factory = session_factory(engine, writer=True)
    try:
        async with receiver() as hook:
            endpoint = await _endpoint(factory, hook.url, ["call.ended"])
            capture = str(CAPTURES / "inbound_answered.ami")
            await asyncio.to_thread(telecrm, "ami-replay", capture, "--db", db_url)
            await _wait_for(hook, 1)
            (got,) = hook.received
            assert got.signed_with(endpoint.secret)
            assert got.headers["X-Telecrm-Event"] == "call.ended"
            call = got.json["data"]
            assert call["linkedid"] == "1795462311.0" and call["direction"] == "inbound"
            assert call["status"] == "answered" and call["talk_seconds"] > 0
            assert set(call) >= {"id", "client_number", "managers", "started_at",
                                 "ended_at", "recordings", "tracking"}
            # the same capture again changes nothing: no second delivery
            await asyncio.to_thread(telecrm, "ami-replay", capture, "--db", db_url)
            await asyncio.sleep(3)
            assert len(hook.received) == 1
            rows = await _deliveries(factory)
            assert [(r.event, r.state) for r in rows] == [("call.ended",
                                                           DeliveryState.DELIVERED.value)]
    finally:
        await engine.dispose()


async def test_the_webhook_pages_are_the_admins_and_refuse_local_addresses(
        db_url: str, tmp_path: Path) -> None:
    async with served_floor(Floor, db_url, tmp_path) as floor:
        for who in ("petrov", "sokolova", "marketer"):
            for path in ("/admin/webhooks", "/admin/webhooks/deliveries"):
                status, _ = await floor.call(who, "GET", path)
                assert status == 403, (who, path)
            status, page = await floor.form(who, "/admin/webhooks", {
                "name": "Моё", "url": "https://example.com/hook", "event": "call.ended"})
            assert status == 403 and "управляет администратор" in page
        # TELECRM_WEBHOOKS_ALLOW_PRIVATE is off by default: the form refuses in Russian,
        # keeping what was typed
        status, page = await floor.form("admin", "/admin/webhooks", {
            "name": "Внутренний", "url": "http://127.0.0.1:8080/hook", "event": "call.ended"})
        assert status == 400
        assert "Адрес 127.0.0.1 — в локальной сети" in page and "Внутренний" in page
        status, page = await floor.form("admin", "/admin/webhooks", {
            "name": "Без событий", "url": "https://example.com/hook"})
        assert status == 400 and "Отметьте хотя бы одно событие." in page
        status, page = await floor.form("admin", "/admin/webhooks", {
            "name": "BI", "url": "https://example.com/hook", "event": "deal.won"})
        assert status == 200 and 'id="secret-value">whsec_' in page
        (endpoint_id, secret), = await floor.rows(select(WebhookEndpoint.id,
                                                         WebhookEndpoint.secret))
        status, page = await floor.call("admin", "GET", "/admin/webhooks")
        assert status == 200 and secret not in page and "Сделка выиграна" in page
        status, page = await floor.form("admin", "/admin/webhooks/active",
                                        {"endpoint_id": str(endpoint_id), "active": "0"})
        assert status == 200 and "Получатель выключен" in page
        status, page = await floor.form("admin", "/admin/webhooks/deliveries/resend",
                                        {"delivery": "12345"})
        assert status == 404 and "Такой отправки нет." in page
        audit = await floor.rows(select(AuditLog.actor, AuditLog.action, AuditLog.changes)
                                 .where(AuditLog.entity == "webhook_endpoint")
                                 .order_by(AuditLog.id))
        assert [(a, act) for a, act, _ in audit] == [("admin", "create"), ("admin", "update")]
        assert all(secret not in str(changes) for _, _, changes in audit)
        status, page = await floor.call("admin", "GET", "/admin/webhooks/deliveries")
        assert status == 200 and "Отправок пока нет." in page


async def test_a_written_batch_queues_each_ended_call_once_per_endpoint(
        sessions: tuple[async_sessionmaker[AsyncSession], World]) -> None:
    """The call writer's batch (a replay, a listener's flush): every ended call gets one
    delivery per endpoint that hears it, the call in progress none, and writing the same
    batch again queues nothing more."""
    from crm_core.calls.services import record_calls
    from telecrm.wiring import call_hooks
    from tests.support.browser import _call

    factory, _ = sessions
    first = await _endpoint(factory, "http://127.0.0.1:9/a", ["call.ended"])
    second = await _endpoint(factory, "http://127.0.0.1:9/b", ["call.ended", "deal.won"])
    await _endpoint(factory, "http://127.0.0.1:9/c", ["deal.won"])
    start = utcnow() - timedelta(hours=1)
    batch = [_call(f"w-{n}.0", "inbound", status, "+79161234567", "101",
                   start + timedelta(minutes=n), 30.0)
             for n, status in enumerate(["answered", "missed", "answered"])]
    batch.append(_call("w-9.0", "inbound", "in_progress", "+79161234567", "101",
                       start + timedelta(minutes=9), 0.0))
    for _ in range(2):
        async with factory() as session, session.begin():
            await record_calls(session, batch, hooks=call_hooks())
    rows = await _deliveries(factory)
    assert sorted((r.endpoint_id, r.payload["linkedid"]) for r in rows) == sorted(
        (endpoint.id, f"w-{n}.0") for endpoint in (first, second) for n in range(3))
    assert {r.event for r in rows} == {"call.ended"}
