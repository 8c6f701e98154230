"""Offline conversions: which tracked calls and won deals count for Yandex Metrica and
Google Ads, the documented CSV columns, the accounts (tokens never shown back), and the
upload client against the local stand-in of both APIs: delivered once, retried on
5xx/429, logged, refusals kept. Storage on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.audit import AuditLog
from crm_core.calls.services import record_call
from crm_core.calltracking.ad_models import (
    AdConversion,
    ConversionGoal,
    ConversionSystem,
    ConversionUpload,
)
from crm_core.calltracking.conversions import (
    GOOGLE_COLUMNS,
    METRICA_CALL_COLUMNS,
    METRICA_DEAL_COLUMNS,
    AccountForm,
    ConversionError,
    account_to_dict,
    call_conversions,
    deal_conversions,
    google_csv,
    metrica_calls_csv,
    metrica_deals_csv,
    save_account,
)
from crm_core.calltracking.leases import MemoryLeaseStore
from crm_core.calltracking.services import (
    SiteOptions,
    VisitReport,
    add_pool_numbers,
    add_static,
    get_site,
    pool_of,
    record_decision,
    record_visit,
    rules_of,
    save_site,
)
from crm_core.db import create_engine, session_factory
from telecrm import csv_safety
from telecrm.calltracking.conversion_upload import send_all
from telecrm.messages import russian
from telecrm.settings import Settings
from telecrm.wiring import call_hooks
from tests.calltracking.sites import inbound
from tests.support.ad_systems_standin import (
    DEVELOPER_TOKEN,
    GOOGLE_TOKEN,
    METRICA_TOKEN,
    ad_systems_standin,
)
from tests.support.db_fixtures import (  # noqa: F401
    db_session_fixture,
    db_url_fixture,
    migrated,
)

pytestmark = pytest.mark.clock("2026-11-20T15:00:00+03:00")

HOOKS = call_hooks()
HOST = "shop.example"
POOL = ["+74951110011", "+74951110012"]
STATIC = "+74951110005"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
MSK = ZoneInfo("Europe/Moscow")


async def _visit(session: AsyncSession, leases: MemoryLeaseStore, token: str, at: datetime,
                 query: str, client_ids: dict[str, str]) -> str:
    site = await get_site(session, HOST)
    assert site is not None
    visit = await record_visit(session, site, token,
                               VisitReport(f"https://{HOST}/?{query}", None, client_ids,
                                           "Mozilla/5.0"), at, bot=False)
    decision = await leases.acquire(HOST, pool_of(site), rules_of(site), token, at.timestamp())
    await record_decision(session, site, visit, decision, at)
    assert decision.number is not None
    return decision.number


async def _call(session: AsyncSession, linkedid: str, did: str, caller: str, at: datetime, *,
                talk: float = 90.0, answered: bool = True) -> int:
    call = await record_call(session, inbound(linkedid, did, caller, at, talk=talk,
                                              answered=answered), hooks=HOOKS)
    return call.id


async def world(session: AsyncSession) -> dict[str, int]:
    """Three tracked calls: Direct (yclid + _ym_uid), Google (gclid, short and long), and
    one on a static number; and a won deal of the Direct caller."""
    await save_site(session, HOST, SiteOptions(default_numbers=["+74951110001"]))
    await add_pool_numbers(session, HOST, POOL)
    await add_static(session, STATIC, "Радио")
    leases = MemoryLeaseStore()
    direct = await _visit(session, leases, "v-direct", T0,
                          "utm_source=yandex&utm_campaign=spring&yclid=7775551234",
                          {"ym_uid": "1700000000123456789"})
    google = await _visit(session, leases, "v-google", T0 + timedelta(seconds=1),
                          "utm_source=google&gclid=EAIaIQgclid-1", {"ga": "GA1.2.3.4"})
    ids = {"direct": await _call(session, "c-direct", direct, "+79161112233",
                                 T0 + timedelta(minutes=1)),
           "google": await _call(session, "c-google", google, "+79162223344",
                                 T0 + timedelta(minutes=2), talk=30.0),
           "static": await _call(session, "c-static", STATIC, "+79163334455",
                                 T0 + timedelta(minutes=3))}
    await session.commit()
    from crm_core.calls.models import Call
    from crm_core.sales.models import Deal, Pipeline, PipelineStage

    pipeline = Pipeline(name="B2B новые")
    session.add(pipeline)
    await session.flush()
    stage = PipelineStage(pipeline_id=pipeline.id, position=1, name="Оплата", code="paid",
                          outcome="won")
    session.add(stage)
    await session.flush()
    call = await session.get(Call, ids["direct"])
    assert call is not None and call.client_id is not None
    deal = Deal(title="Поставка", client_id=call.client_id, pipeline_id=pipeline.id,
                stage_id=stage.id, status="won", amount=Decimal("150000"),
                won_amount=Decimal("125000.50"), closed_at=T0 + timedelta(hours=2))
    session.add(deal)
    await session.commit()
    ids["deal"] = deal.id
    return ids


async def test_what_counts_and_the_documented_files(db_session: AsyncSession) -> None:
    ids = await world(db_session)
    since, until = T0 - timedelta(days=1), T0 + timedelta(days=1)
    metrica = await call_conversions(db_session, ConversionSystem.METRICA, None, since, until)
    assert [c.object_id for c in metrica] == [ids["direct"]]  # only the visit with Metrica ids
    text = metrica_calls_csv(metrica, tracker_url="https://crm.example", writer=csv_safety.writer)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0].split(",") == METRICA_CALL_COLUMNS
    assert rows == [{
        "ClientId": "1700000000123456789", "Yclid": "7775551234",
        "DateTime": str(int((T0 + timedelta(minutes=1)).timestamp())), "StaticCall": "0",
        "Price": "", "Currency": "", "PhoneNumber": "+79161112233", "TalkDuration": "90",
        "HoldDuration": "5", "CallMissed": "0", "Tag": "spring", "FirstTimeCaller": "1",
        "URL": f"https://{HOST}/?utm_source=yandex&utm_campaign=spring&yclid=7775551234",
        "CallTrackerURL": f"https://crm.example/calls/{ids['direct']}"}]

    deals = await deal_conversions(db_session, ConversionSystem.METRICA, since, until)
    assert [(d.object_id, d.value, d.yclid) for d in deals] == [
        (ids["deal"], Decimal("125000.50"), "7775551234")]
    text = metrica_deals_csv(deals, "deal_won", writer=csv_safety.writer)
    assert text.splitlines() == [",".join(METRICA_DEAL_COLUMNS),
                                 f"1700000000123456789,7775551234,deal_won,"
                                 f"{int((T0 + timedelta(hours=2)).timestamp())},125000.50,RUB"]

    # Google Ads: answered calls of the gclid visit at least as long as the account asks
    google_all = await call_conversions(db_session, ConversionSystem.GOOGLE_ADS, None,
                                        since, until)
    assert [c.object_id for c in google_all] == [ids["google"]]
    account = await save_account(db_session, "google_ads", AccountForm(
        enabled=True, account_id="123-456-7890", call_goal="111", call_name="Звонок",
        min_talk_seconds=60, token=GOOGLE_TOKEN, developer_token=DEVELOPER_TOKEN))
    assert await call_conversions(db_session, ConversionSystem.GOOGLE_ADS, account,
                                  since, until) == []
    text = google_csv(google_all, {ConversionGoal.CALL: "Звонок"}, MSK,
                      writer=csv_safety.writer)
    lines = text.splitlines()
    assert lines[0] == "Parameters:TimeZone=Europe/Moscow"
    assert lines[1].split(",") == GOOGLE_COLUMNS
    assert lines[2] == "EAIaIQgclid-1,Звонок,2026-11-20 12:02:00,0,RUB"


async def test_accounts_keep_tokens_and_refuse_bad_input(db_session: AsyncSession) -> None:
    row = await save_account(db_session, "metrica", AccountForm(
        enabled=True, account_id="12345678", call_goal="Звонок", deal_goal="deal_won",
        token="secret-oauth"), actor="marketer")
    assert account_to_dict(row)["token_set"] is True
    assert "secret-oauth" not in str(account_to_dict(row))
    # an empty token field keeps the stored token
    row = await save_account(db_session, "metrica", AccountForm(
        enabled=False, account_id="12345678", call_goal="Звонок", deal_goal="deal_won"))
    assert row.token == "secret-oauth" and row.enabled is False
    audits = list(await db_session.scalars(select(AuditLog).where(
        AuditLog.entity == "ad_conversion_account")))
    assert audits and all("secret-oauth" not in str(a.changes) for a in audits)
    for form, code in [
        (AccountForm(True, "12ab", call_goal="x"), "conversions.counter"),
        (AccountForm(True, "12345678"), "conversions.goal"),
        (AccountForm(True, "12345678", call_goal="x", currency="рубли"),
         "conversions.currency"),
        (AccountForm(True, "12345678", call_goal="x", token="two words"), "conversions.token"),
    ]:
        with pytest.raises(ConversionError) as caught:
            await save_account(db_session, "metrica", form)
        assert caught.value.code == code and russian(caught.value).endswith(".")
    with pytest.raises(ConversionError) as caught:
        await save_account(db_session, "google_ads", AccountForm(True, "12345", call_goal="1"))
    assert caught.value.code == "conversions.customer"


def _settings(base: str) -> Settings:
    return Settings(metrica_api_url=base, google_ads_api_url=base, conversions_retry_ms=10,
                    timezone="Europe/Moscow")


async def _accounts(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await save_account(session, "metrica", AccountForm(
            enabled=True, account_id="12345678", call_goal="Звонок с сайта",
            deal_goal="deal_won", token=METRICA_TOKEN))
        await save_account(session, "google_ads", AccountForm(
            enabled=True, account_id="1234567890", call_goal="111", deal_goal="222",
            call_name="Звонок", token=GOOGLE_TOKEN, developer_token=DEVELOPER_TOKEN))


@contextlib.asynccontextmanager
async def ready_world(db_url: str) -> AsyncIterator[
        tuple[async_sessionmaker[AsyncSession], dict[str, int]]]:
    """The tracked calls of :func:`world` and both ad accounts, for a delivery test: yields
    the sessions and the ids ``world`` returned."""
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            ids = await world(session)
        await _accounts(sessions)
        yield sessions, ids
    finally:
        await engine.dispose()


async def _states(session: AsyncSession) -> dict[tuple[str, str, int], str]:
    return {(r.system, r.goal, r.object_id): r.status
            for r in await session.scalars(select(AdConversion))}


async def test_delivered_once_retried_and_logged(db_url: str) -> None:
    async with ready_world(db_url) as (sessions, ids):
        async with ad_systems_standin() as standin:
            standin.fail_next(2, 503)
            standin.fail_next(1, 429)
            first = await send_all(sessions, _settings(standin.base))
            assert first == {"metrica": {"sent": 2, "failed": 0, "rejected": 0},
                             "google_ads": {"sent": 1, "failed": 0, "rejected": 0}}
            calls = [r for r in standin.received if r.path.endswith("upload_calls")]
            assert len(calls) == 1 and calls[0].query["new_goal_name"] == "Звонок с сайта"
            assert [row["Yclid"] for row in calls[0].rows] == ["7775551234"]
            [deal] = standin.rows("metrica")[1:]
            assert (deal["Target"], deal["Price"]) == ("deal_won", "125000.50")
            [google] = standin.rows("google_ads")
            assert google["gclid"] == "EAIaIQgclid-1"
            assert google["conversionAction"] == "customers/1234567890/conversionActions/111"
            assert google["conversionDateTime"] == "2026-11-20 12:02:00+03:00"
            # a second round sends nothing
            requests = standin.requests
            again = await send_all(sessions, _settings(standin.base))
            assert all(v == {"sent": 0, "failed": 0, "rejected": 0} for v in again.values())
            assert standin.requests == requests
        async with sessions() as session:
            assert await _states(session) == {
                ("metrica", "call", ids["direct"]): "sent",
                ("metrica", "deal", ids["deal"]): "sent",
                ("google_ads", "call", ids["google"]): "sent"}
            log = list(await session.scalars(select(ConversionUpload).order_by(
                ConversionUpload.id)))
            assert [(u.system, u.goal, u.attempt, u.ok, u.http_status) for u in log] == [
                ("metrica", "call", 1, False, 503), ("metrica", "call", 2, False, 503),
                ("metrica", "call", 3, False, 429), ("metrica", "call", 4, True, 200),
                ("metrica", "deal", 1, True, 200), ("google_ads", "call", 1, True, 200)]
            assert log[3].upload_id == "1"


async def test_failures_wait_refusals_stay(db_url: str) -> None:
    async with ready_world(db_url) as (sessions, ids):
        async with ad_systems_standin() as standin:
            standin.fail_next(8, 500)  # both Metrica goals fail all four attempts
            result = await send_all(sessions, _settings(standin.base))
            assert result["metrica"] == {"sent": 0, "failed": 2, "rejected": 0}
            async with sessions() as session:
                row = await session.scalar(select(AdConversion).where(
                    AdConversion.system == "metrica", AdConversion.goal == "call"))
                assert row is not None and row.status == "failed" and row.next_attempt_at
                assert row.attempts == 1 and "HTTP 500" in (row.last_error or "")
            # not due again before its pause: the next round leaves it
            result = await send_all(sessions, _settings(standin.base))
            assert result["metrica"]["sent"] == 0 and standin.rows("metrica") == []
            # due again: sent once
            async with sessions() as session, session.begin():
                for row in await session.scalars(select(AdConversion)):
                    row.next_attempt_at = T0
            result = await send_all(sessions, _settings(standin.base))
            assert result["metrica"] == {"sent": 2, "failed": 0, "rejected": 0}
        # a refused token: 4xx is not retried within the round, and not sent as if it were
        async with sessions() as session, session.begin():
            await save_account(session, "google_ads", AccountForm(
                enabled=True, account_id="1234567890", call_goal="111",
                token="wrong-token", developer_token=DEVELOPER_TOKEN))
            for row in await session.scalars(select(AdConversion).where(
                    AdConversion.system == "google_ads")):
                await session.delete(row)
        async with ad_systems_standin() as standin:
            result = await send_all(sessions, _settings(standin.base))
            assert result["google_ads"] == {"sent": 0, "failed": 0, "rejected": 1}
            assert standin.requests == 1
        async with sessions() as session:
            assert (await _states(session))[("google_ads", "call", ids["google"])] == "rejected"
            count = await session.scalar(select(func.count()).select_from(ConversionUpload))
            assert count and count >= 4


def test_google_partial_failure_is_a_refusal_of_that_conversion() -> None:
    from crm_core.calltracking.conversions import Conversion
    from telecrm.calltracking.conversion_upload import google_conversions

    account: Any = type("A", (), {"account_id": "1234567890", "call_goal": "111",
                                  "deal_goal": "222", "currency": "RUB"})()
    item = Conversion(ConversionSystem.GOOGLE_ADS, ConversionGoal.DEAL, 7, 1, T0,
                      Decimal("10.5"), gclid="g")
    assert google_conversions([item], account, MSK) == [{
        "gclid": "g", "conversionAction": "customers/1234567890/conversionActions/222",
        "conversionDateTime": "2026-11-20 12:00:00+03:00", "currencyCode": "RUB",
        "conversionValue": 10.5}]


async def test_command_line_export_and_send(tmp_path: Any) -> None:
    from tests.support.live import telecrm

    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}"
    await migrated(url)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            ids = await world(session)
    finally:
        await engine.dispose()
    db = f"sqlite:///{tmp_path / 'crm.db'}"
    out = telecrm("conversions", "export", "--file", "metrica-calls", "--from", "2026-11-19",
                  "--to", "2026-11-20", "--db", db).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["Yclid"] for r in rows] == ["7775551234"]
    out = telecrm("conversions", "export", "--file", "google-ads", "--db", db).stdout
    assert out.splitlines()[:2] == ["Parameters:TimeZone=Europe/Moscow", ",".join(GOOGLE_COLUMNS)]
    assert out.splitlines()[2].startswith("EAIaIQgclid-1,Звонок,2026-11-20 12:02:00,")
    result = telecrm("conversions", "export", "--file", "metrica-calls", "--from", "20.11.2026",
                     "--db", db, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    sent = telecrm("conversions", "send", "--db", db).stdout
    assert sent == "Яндекс Метрика: отправлять нечего.\nGoogle Ads: отправлять нечего.\n"
    assert ids
