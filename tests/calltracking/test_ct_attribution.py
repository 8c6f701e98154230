"""Attribution of inbound calls, rule by rule, on SQLite and PostgreSQL.

Visits lease numbers through the real lease engine at chosen moments, their
history goes to the database as the web endpoint writes it, then calls are
written by the same writer the AMI pipeline uses; the call's ``tracking`` field
in the export is what is checked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.services import get_call, record_call, record_calls
from crm_core.calls.snapshot import CallData, LegData
from crm_core.calltracking.leases import Decision, LeaseStore, MemoryLeaseStore
from crm_core.calltracking.report import Period, call_log, channel_report, pool_health
from crm_core.calltracking.services import (
    SiteOptions,
    VisitEvent,
    VisitReport,
    add_pool_numbers,
    add_static,
    get_site,
    pool_of,
    record_decision,
    record_visit,
    record_visit_events,
    rules_of,
    save_site,
    source_of,
)
from telecrm.calltracking.lease_store import RedisLeaseStore
from telecrm.wiring import call_hooks
from tests.calltracking.sites import inbound
from tests.support.db_fixtures import db_session_fixture  # noqa: F401

HOOKS = call_hooks()  # what the product does with each written call

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
POOL = ["+74951110011", "+74951110012"]
HOST = "shop.example"


class World:
    def __init__(self, session: AsyncSession, leases: LeaseStore) -> None:
        self.session = session
        self.leases = leases
        self.calls = 0

    async def visit(self, token: str, at: float, url: str = f"https://{HOST}/",
                    referrer: str | None = None, *, bot: bool = False) -> Decision | None:
        site = await get_site(self.session, HOST)
        assert site is not None
        now = T0 + timedelta(seconds=at)
        visit = await record_visit(self.session, site, token,
                                   VisitReport(url, referrer, {}, "Mozilla/5.0"), now, bot=bot)
        if bot:
            return None
        decision = await self.leases.acquire(HOST, pool_of(site), rules_of(site), token,
                                             now.timestamp())
        await record_decision(self.session, site, visit, decision, now)
        await self.session.commit()
        return decision

    async def call(self, did: str, caller: str, at: float, *, talk: float = 90.0,
                   answered: bool = True) -> dict[str, Any]:
        self.calls += 1
        data = inbound(f"ct-{self.calls}", did, caller, T0 + timedelta(seconds=at), talk=talk,
                       answered=answered)
        call = await record_call(self.session, data, hooks=HOOKS)
        await self.session.commit()
        body = await get_call(self.session, call.id, HOOKS)
        assert body is not None
        return body


@pytest.fixture(params=["memory", "redis"])
async def leases(request: pytest.FixtureRequest) -> AsyncIterator[LeaseStore]:
    """Every rule on both lease stores: in-process, and a real Redis server."""
    if request.param == "memory":
        yield MemoryLeaseStore()
        return
    server = request.getfixturevalue("redis_server")
    server.start()
    store = RedisLeaseStore.from_url(server.url(0))
    await store.redis.flushdb()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def world(db_session: AsyncSession, leases: LeaseStore) -> World:
    await save_site(db_session, HOST, SiteOptions(default_numbers=["+74951110001"],
                                                  hold_seconds=180, cooldown_seconds=60,
                                                  grace_seconds=300))
    await add_pool_numbers(db_session, HOST, POOL)
    await add_static(db_session, "+74951110005", "Билборд", campaign="spring",
                     source="billboard", medium="offline", cost_per_month=31000)
    await db_session.commit()
    return World(db_session, leases)


async def test_static_number_gives_its_channel(world: World) -> None:
    call = await world.call("+74951110005", "+79161230001", 0)
    assert call["tracking"]["kind"] == "static"
    assert call["tracking"]["channel"] == "Билборд"
    assert call["tracking"]["campaign"] == "spring"


async def test_concurrent_visits_each_get_their_calls(world: World) -> None:
    a = await world.visit("visit-a", 0, f"https://{HOST}/price?utm_source=yandex&utm_medium=cpc"
                                        "&utm_campaign=spring&yclid=123")
    b = await world.visit("visit-b", 5, f"https://{HOST}/?utm_source=google&utm_medium=cpc"
                                        "&utm_campaign=brand", "https://www.google.com/")
    assert a and b and a.number != b.number
    call_a = await world.call(a.number or "", "+79161230001", 60)
    call_b = await world.call(b.number or "", "+79161230002", 61)
    assert call_a["tracking"]["kind"] == "dynamic"
    assert (call_a["tracking"]["source"], call_a["tracking"]["medium"],
            call_a["tracking"]["campaign"]) == ("yandex", "cpc", "spring")
    assert call_a["tracking"]["landing"].startswith(f"https://{HOST}/price")
    assert (call_b["tracking"]["source"], call_b["tracking"]["campaign"]) == ("google", "brand")
    assert call_a["tracking"]["ambiguous"] is False


async def test_grace_after_expiry_then_nothing(world: World) -> None:
    a = await world.visit("visit-a", 0, f"https://{HOST}/?utm_source=vk")
    assert a and a.number
    # the lease ends at 180 s (hold); grace 300 s: a call at 400 s still counts
    assert (await world.call(a.number, "+79161230003", 400))["tracking"]["source"] == "vk"
    # after the grace the number's own channel (the site), no visit
    late = await world.call(a.number, "+79161230004", 481)
    assert late["tracking"]["kind"] == "static" and late["tracking"]["channel"] == "Сайт"
    assert late["tracking"]["source"] is None


async def test_heartbeat_extends_the_lease(world: World) -> None:
    a = await world.visit("visit-a", 0, f"https://{HOST}/?utm_source=vk")
    for at in range(60, 1200, 60):
        await world.visit("visit-a", at, f"https://{HOST}/contacts")
    assert a and a.number
    call = await world.call(a.number, "+79161230005", 1250)
    assert call["tracking"]["source"] == "vk"


async def test_cooldown_keeps_a_late_call_with_the_first_visitor(world: World) -> None:
    """The number rests after a's lease; b, arriving during the rest, gets the other one."""
    a = await world.visit("visit-a", 0, f"https://{HOST}/?utm_source=vk")
    c = await world.visit("visit-c", 1, f"https://{HOST}/?utm_source=ok")
    for at in range(60, 400, 60):
        await world.visit("visit-c", at)
    assert a and c
    b = await world.visit("visit-b", 200, f"https://{HOST}/?utm_source=mail")  # a's number rests
    assert b is not None and b.number is None  # exhausted: fallback
    call = await world.call(a.number or "", "+79161230006", 210)
    assert call["tracking"]["source"] == "vk"


async def test_returning_visitor_and_repeat_caller(world: World) -> None:
    a = await world.visit("visit-a", 0, f"https://{HOST}/?utm_source=yandex&utm_campaign=x")
    again = await world.visit("visit-a", 3600)
    assert a and again and again.number == a.number  # his number back
    first = await world.call(a.number or "", "+79161230007", 3650)
    assert first["tracking"]["kind"] == "dynamic"
    # a week later he calls the company's main number: his earlier source
    repeat = await world.call("+74951110001", "+79161230007", 7 * 86400)
    assert repeat["tracking"]["kind"] == "repeat"
    assert (repeat["tracking"]["source"], repeat["tracking"]["campaign"]) == ("yandex", "x")


async def test_unidentified_and_bots(world: World) -> None:
    await world.visit("bot-1", 0, bot=True)
    call = await world.call("+74951110001", "+79161230008", 10)
    assert call["tracking"] is None  # nothing known: unidentified
    period = Period(T0 - timedelta(days=1), T0 + timedelta(days=1))
    report = await channel_report(world.session, period)
    assert report["totals"]["visits"] == 0  # bots are not visits


async def test_exhausted_pool_counts_fallbacks(world: World) -> None:
    for i in range(4):
        await world.visit(f"v{i}", i)
    health = await pool_health(world.session, Period(T0 - timedelta(hours=1),
                                                      T0 + timedelta(hours=1)))
    assert health[0]["size"] == 2 and health[0]["peak_concurrent_visitors"] == 2
    assert health[0]["fallback_impressions"] == 2 and health[0]["overload_events"] == 1
    assert health[0]["utilisation_percent"] == 100.0 and health[0]["add_numbers"] is True
    assert health[0]["advised_size"] >= 3  # overloaded: more than it has


async def test_reuse_of_live_leases_makes_calls_ambiguous(world: World) -> None:
    await save_site(world.session, HOST, SiteOptions(reuse_live_leases=True))
    await world.session.commit()
    a = await world.visit("visit-a", 0, f"https://{HOST}/?utm_source=a")
    await world.visit("visit-b", 1, f"https://{HOST}/?utm_source=b")
    c = await world.visit("visit-c", 2, f"https://{HOST}/?utm_source=c")
    assert a and c and c.number == a.number
    call = await world.call(a.number or "", "+79161230009", 30)
    assert call["tracking"]["ambiguous"] is True
    assert set(call["tracking"]["candidates"]) == {"visit-a", "visit-c"}
    assert call["tracking"]["source"] == "a"  # the number's holder stays the best guess


async def test_report_figures(world: World) -> None:
    a = await world.visit("visit-a", 0, f"https://{HOST}/?utm_source=yandex&utm_medium=cpc")
    await world.visit("visit-b", 1, f"https://{HOST}/")
    assert a and a.number
    await world.call(a.number, "+79161230010", 60, talk=120)  # target
    await world.call("+74951110005", "+79161230011", 70, talk=20)  # short
    await world.call("+74951110005", "+79161230011", 80, answered=False)  # missed, repeat
    period = Period(T0 - timedelta(days=1), T0 + timedelta(days=1))
    report = await channel_report(world.session, period)
    rows = {r["key"]: r for r in report["rows"]}
    site, board = rows["Сайт"], rows["Билборд"]
    assert (site["visits"], site["calls"], site["target_calls"]) == (2, 1, 1)
    assert site["conversion_percent"] == 50.0
    assert (board["calls"], board["unique_callers"], board["missed_calls"]) == (2, 1, 1)
    assert board["first_time_callers"] == 1 and board["missed_percent"] == 50.0
    assert board["cost"] == pytest.approx(31000 * 2 / 30, rel=0.01)  # 2 of November's 30 days
    assert board["cost_per_call"] == pytest.approx(board["cost"] / 2, rel=0.01)
    log = await call_log(world.session, period)
    assert [c["first_call"] for c in log] == [False, True, True]
    assert log[-1]["pages"] == [f"https://{HOST}/?utm_source=yandex&utm_medium=cpc"]
    await _deal_brings_revenue(world, log[-1]["call_id"], period)


async def _deal_brings_revenue(world: World, call_id: int, period: Period) -> None:
    """The site's caller (a new lead) wins a deal: deals and revenue for the site's channel."""
    try:
        from crm_core.sales.models import Deal, Pipeline, PipelineStage
    except ImportError:  # the deals feature is not in this build: revenue reads 0
        return
    pipeline = Pipeline(name="B2B", stages=[PipelineStage(position=1, name="Оплата", code="paid",
                                                          outcome="won")])
    world.session.add(pipeline)
    await world.session.flush()
    call = await get_call(world.session, call_id, HOOKS)
    assert call is not None
    client_id = call["client_id"]
    world.session.add(Deal(title="Окна", client_id=client_id, pipeline_id=pipeline.id,
                           stage_id=pipeline.stages[0].id, status="won", amount=50000,
                           won_amount=62000, closed_at=T0 + timedelta(hours=2)))
    await world.session.commit()
    site = {r["key"]: r for r in (await channel_report(world.session, period))["rows"]}["Сайт"]
    assert (site["deals_won"], site["revenue"]) == (1, 62000.0)


def test_source_from_referrer_and_click_ids() -> None:
    assert source_of("https://s.example/?yclid=1", None)["source"] == "yandex"
    organic = source_of("https://s.example/", "https://yandex.ru/search?text=x")
    assert (organic["source"], organic["medium"]) == ("yandex", "organic")
    referral = source_of("https://s.example/", "https://blog.example/post")
    assert (referral["source"], referral["medium"]) == ("blog.example", "referral")
    assert source_of("https://s.example/", None)["source"] == "(direct)"


async def test_bulk_writer_attributes_like_the_single_one(world: World) -> None:
    """A replayed batch (``record_calls``) gets the same sources, repeat callers included."""
    a = await world.visit("visit-a", 0, f"https://{HOST}/?utm_source=vk&utm_campaign=bulk")
    assert a and a.number

    def data(linkedid: str, did: str, caller: str, at: float) -> CallData:
        start = T0 + timedelta(seconds=at)
        return CallData(
            linkedid=linkedid, direction="inbound", status="answered", client_number=caller,
            did=did, started_at=start, answered_at=start, ended_at=start + timedelta(seconds=9),
            ring_seconds=0.0, talk_seconds=9.0, transferred=False, managers=(), recordings=(),
            legs=(LegData(f"{linkedid}-c", "PJSIP/carrier-1", "client", None, start, start,
                          start + timedelta(seconds=9), 9.0),))

    batch = [data("b-1", a.number, "+79161230020", 30),
             data("b-2", "+74951110001", "+79161230020", 3600),  # later: repeat of b-1
             data("b-3", "+74951110005", "+79161230021", 40),
             data("b-1", a.number, "+79161230020", 30)]  # the same call again: once
    calls = await record_calls(world.session, batch, hooks=HOOKS)
    await world.session.commit()
    got = {c.linkedid: (await get_call(world.session, c.id, HOOKS) or {})["tracking"]
           for c in calls}
    assert got["b-1"]["kind"] == "dynamic" and got["b-1"]["campaign"] == "bulk"
    assert got["b-2"]["kind"] == "repeat" and got["b-2"]["source"] == "vk"
    assert got["b-3"]["channel"] == "Билборд"
    again = await record_calls(world.session, batch[:1], hooks=HOOKS)  # a replay changes nothing
    await world.session.commit()
    assert (await get_call(world.session, again[0].id, HOOKS) or {})["tracking"] == got["b-1"]


async def test_a_call_stored_before_its_lease_history_gets_the_visit(world: World) -> None:
    """The endpoint answers from the lease store and writes the history a moment later:
    a visitor who dials at once is first put down to the site, then to his visit."""
    site = await get_site(world.session, HOST)
    assert site is not None
    site_id, hold, now = site.id, site.hold_seconds, T0
    decision = await world.leases.acquire(HOST, pool_of(site), rules_of(site), "quick",
                                          now.timestamp())
    assert decision.number
    other = (POOL[1] if decision.number == POOL[0] else POOL[0])
    early = await world.call(decision.number, "+79161230030", 2)
    untouched = await world.call(other, "+79161230031", 3)  # the other number: no lease
    assert (early["tracking"]["kind"], early["tracking"]["source"]) == ("static", None)
    landing = f"https://{HOST}/?utm_source=yandex&utm_medium=cpc&utm_campaign=fast"
    await record_visit_events(world.session, [VisitEvent(
        site_id, hold, "quick", VisitReport(landing, None, {}, "Mozilla/5.0"),
        now, False, decision)])
    await world.session.commit()
    world.session.expire_all()
    late = await get_call(world.session, early["id"], HOOKS)
    assert late is not None
    assert (late["tracking"]["kind"], late["tracking"]["source"], late["tracking"]["medium"],
            late["tracking"]["campaign"]) == ("dynamic", "yandex", "cpc", "fast")
    assert late["tracking"]["landing"] == landing
    still = await get_call(world.session, untouched["id"], HOOKS)
    assert still is not None and still["tracking"] == untouched["tracking"]
    # a visit's second page moves the same lease on and changes nothing more
    await record_visit_events(world.session, [VisitEvent(
        site_id, hold, "quick", VisitReport(f"https://{HOST}/price", None, {},
                                                         "Mozilla/5.0"),
        now + timedelta(seconds=30), False, decision)])
    await world.session.commit()
    world.session.expire_all()
    assert (await get_call(world.session, early["id"], HOOKS) or {})["tracking"] == (
        late["tracking"])
