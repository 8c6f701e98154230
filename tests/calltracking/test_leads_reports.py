"""The marketers' lead reports on one seeded day, with every figure worked out by hand.

On SQLite and on a real PostgreSQL server (``db_url``). The day (Wednesday 18 November
2026, Moscow) holds four site visits, a static billboard number, six calls and three
leads written through the product's own services (the call writer with its hooks,
``create_lead``), so attribution, client matching and the reports are the real ones:

| time  | what                                                   | source                  |
|-------|--------------------------------------------------------|-------------------------|
| 10:00 | visit V1 /doors, yandex cpc, keyword «двери»           |                         |
| 10:01 | visit V2 /doors, google cpc, keyword «двери»           |                         |
| 10:02 | visit V3 /windows, yandex cpc, keyword «окна»          |                         |
| 10:03 | visit V4 /, no tags                                    |                         |
| 10:05 | call C1 from …01 to V1's pool number, answered          | Сайт: yandex / cpc      |
| 10:10 | call C2 from …02 to V3's pool number, missed, never back | Сайт: yandex / cpc      |
| 10:30 | form L1 from V2, phone …04                              | Сайт: google / cpc      |
| 10:50 | outbound call to …04 (L1 called back after 20 min)      |                         |
| 11:00 | call C3 from …03 to the billboard, missed               | Билборд                 |
| 11:10 | outbound call to …03 (C3 back 595 s after it rang off)  |                         |
| 11:20 | form L2 from V4, phone …05, never called back           | Сайт                    |
| 12:00 | call C5 from …01 to the billboard, answered             | Билборд                 |
| 13:00 | callback request L3 from V3, phone …06, never called    | Сайт: yandex / cpc      |
| 14:00 | call C6 from …04 to the billboard, answered             | Билборд                 |

A missed call's wait counts from its end (the caller gave up after 5 s of ringing), as
the missed-calls report counts it; a lead's from the moment it came.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call
from crm_core.calls.services import record_call, record_calls
from crm_core.calls.snapshot import CallData, LegData
from crm_core.calltracking.lead_reports import (
    keyword_report,
    landing_report,
    lost_leads,
    touches,
)
from crm_core.calltracking.leads import LeadInput, create_lead, free_managers
from crm_core.calltracking.models import CtAttribution, CtLead, CtLease, CtSite, CtVisit
from crm_core.calltracking.report import Period, channel_report
from crm_core.calltracking.services import SiteOptions, add_pool_numbers, add_static, save_site
from crm_core.clients.models import Client
from crm_core.clients.services import create_client
from crm_core.people.users import add_user
from crm_core.presence.models import PresenceReason
from crm_core.presence.services import set_presence
from telecrm.wiring import call_hooks
from tests.support.db_fixtures import db_session_fixture  # noqa: F401

HOOKS = call_hooks()
MSK = ZoneInfo("Europe/Moscow")
DAY = datetime(2026, 11, 18, tzinfo=MSK)
PERIOD = Period(DAY, DAY + timedelta(days=1))
POOL = ["+74951110071", "+74951110072"]
BILLBOARD = "+74951110005"


def at(hour: int, minute: int) -> datetime:
    return DAY.replace(hour=hour, minute=minute)


def call(linkedid: str, direction: str, number: str, when: datetime, *, did: str | None,
         answered: bool) -> CallData:
    talk = 90.0 if answered else 0.0
    end = when + timedelta(seconds=5 + talk)
    legs = (LegData(uniqueid=f"{linkedid}-c", channel="PJSIP/carrier-0001", role="client",
                    extension=None, started_at=when,
                    answered_at=when + timedelta(seconds=5) if answered else None,
                    ended_at=end, talk_seconds=talk),
            LegData(uniqueid=f"{linkedid}-m", channel="PJSIP/101-0001", role="manager",
                    extension="101", started_at=when,
                    answered_at=when + timedelta(seconds=5) if answered else None,
                    ended_at=end, talk_seconds=talk))
    return CallData(linkedid=linkedid, direction=direction,
                    status="answered" if answered else "missed", client_number=number,
                    did=did, started_at=when,
                    answered_at=when + timedelta(seconds=5) if answered else None,
                    ended_at=end, ring_seconds=5.0, talk_seconds=talk, transferred=False,
                    managers=("101",) if answered else (), recordings=(), legs=legs,
                    rang=("101",))


async def seed(session: AsyncSession, *, people: bool = True) -> None:
    """The day of the table above (``people=False``: manager 101 exists already)."""
    async with session.begin():
        if people:
            await add_user(session, "petrov", name="Иван Петров", role="manager",
                           extension="101", team="Отдел продаж")
        await save_site(session, "shop.example", SiteOptions(
            default_numbers=["+74951110070"], origins=["https://shop.example"]))
        await add_pool_numbers(session, "shop.example", POOL)
        await add_static(session, BILLBOARD, "Билборд")
        site_id = await session.scalar(select(CtSite.id))
    assert site_id is not None
    tags = [("yandex", "cpc", "spring", "двери", "/doors", at(10, 0)),
            ("google", "cpc", "brand", "двери", "/doors", at(10, 1)),
            ("yandex", "cpc", "spring", "окна", "/windows", at(10, 2)),
            (None, None, None, None, "/", at(10, 3))]
    visits = []
    async with session.begin():
        for n, (source, medium, campaign, term, path, when) in enumerate(tags, 1):
            query = f"?utm_source={source}&utm_term={term}&n={n}" if source else ""
            visit = CtVisit(session=f"visit-{n}", site_id=site_id, utm_source=source,
                            utm_medium=medium, utm_campaign=campaign, utm_term=term,
                            yclid="yc-1" if n == 1 else None, landing=f"https://shop.example{path}{query}",
                            pages=[], client_ids={"ym_uid": f"ym-{n}"}, first_seen=when,
                            last_seen=when + timedelta(minutes=20))
            session.add(visit)
            visits.append(visit)
        await session.flush()
        session.add(CtLease(number=POOL[0], site_id=site_id, visit_id=visits[0].id,
                            started_at=at(10, 0), ends_at=at(10, 20)))
        session.add(CtLease(number=POOL[1], site_id=site_id, visit_id=visits[2].id,
                            started_at=at(10, 2), ends_at=at(10, 20)))

    async def write(data: CallData) -> None:
        async with session.begin():
            await record_call(session, data, hooks=HOOKS)

    async def lead(kind: str, n: int, phone: str, when: datetime) -> None:
        async with session.begin():
            row = await session.get(CtSite, site_id)
            visit = await session.scalar(select(CtVisit).where(CtVisit.session == f"visit-{n}"))
            assert row is not None and visit is not None
            await create_lead(session, row, visit, LeadInput(kind=kind, phone=phone),
                              now=when)

    await write(call("r-1", "inbound", "+79160000001", at(10, 5), did=POOL[0], answered=True))
    await write(call("r-2", "inbound", "+79160000002", at(10, 10), did=POOL[1], answered=False))
    await lead("form", 2, "+79160000004", at(10, 30))
    await write(call("r-3", "outbound", "+79160000004", at(10, 50), did=None, answered=True))
    await write(call("r-4", "inbound", "+79160000003", at(11, 0), did=BILLBOARD, answered=False))
    await write(call("r-5", "outbound", "+79160000003", at(11, 10), did=None, answered=True))
    await lead("form", 4, "+79160000005", at(11, 20))
    await write(call("r-6", "inbound", "+79160000001", at(12, 0), did=BILLBOARD, answered=True))
    await lead("callback", 3, "+79160000006", at(13, 0))
    await write(call("r-7", "inbound", "+79160000004", at(14, 0), did=BILLBOARD, answered=True))


def pick(rows: list[dict], *keys: str) -> list[tuple]:
    return [tuple(row[k] for k in keys) for row in rows]


async def test_reports_by_keyword_landing_lost_and_touch(db_session: AsyncSession) -> None:
    await seed(db_session)
    session = db_session
    columns = ("key", "visits", "calls", "forms", "callbacks", "leads", "conversion_percent")
    assert pick(await keyword_report(session, PERIOD), *columns) == [
        ("двери", 2, 1, 1, 0, 2, 100.0),
        ("окна", 1, 1, 0, 1, 2, 200.0),
        ("(не указан)", 1, 0, 1, 0, 1, 100.0)]
    assert pick(await landing_report(session, PERIOD), *columns) == [
        ("https://shop.example/doors", 2, 1, 1, 0, 2, 100.0),
        ("https://shop.example/windows", 1, 1, 0, 1, 2, 200.0),
        ("https://shop.example/", 1, 0, 1, 0, 1, 100.0)]

    lost = await lost_leads(session, PERIOD)
    columns = ("key", "missed_calls", "missed_lost", "forms", "forms_lost", "callbacks",
               "callbacks_lost", "leads", "lost", "lost_percent", "called_back",
               "median_callback_seconds")
    assert pick(lost["rows"], *columns) == [
        ("Сайт", 1, 1, 2, 1, 1, 1, 4, 3, 75.0, 1, 1200.0),
        ("Билборд", 1, 0, 0, 0, 0, 0, 1, 0, 0.0, 1, 595.0)]
    assert pick([lost["totals"]], *columns) == [
        ("Итого", 2, 1, 2, 1, 1, 1, 5, 3, 60.0, 2, 897.5)]

    both = await touches(session, PERIOD)
    assert both["sources"] == [
        {"key": "Билборд", "first": 0, "last": 2, "difference": 2},
        {"key": "Сайт: google / cpc", "first": 1, "last": 0, "difference": -1},
        {"key": "Сайт: yandex / cpc", "first": 1, "last": 0, "difference": -1}]
    names = dict((await session.execute(select(Client.id, Client.name))).all())
    assert [(names[c["client_id"]], c["touches"], c["first"]["source"], c["first"]["what"],
             c["last"]["source"], c["last"]["what"]) for c in both["clients"]] == [
        ("+7 916 000-00-04", 2, "Сайт: google / cpc", "заявка", "Билборд", "звонок"),
        ("+7 916 000-00-01", 2, "Сайт: yandex / cpc", "звонок", "Билборд", "звонок")]

    # the channel report has the forms and callback requests beside the calls
    report = await channel_report(session, PERIOD)
    assert pick(report["rows"], "key", "calls", "forms", "callbacks", "missed_calls") == [
        ("Билборд", 3, 0, 0, 1), ("Сайт", 2, 2, 1, 1)]
    assert pick([report["totals"]], "calls", "forms", "callbacks") == [(5, 2, 1)]
    by_source = await channel_report(session, PERIOD, by="source")
    assert pick(by_source["rows"], "key", "calls", "forms", "callbacks") == [
        ("(не указан)", 3, 1, 0), ("yandex", 2, 0, 1), ("google", 0, 1, 0)]


async def test_free_managers_and_the_call_a_callback_placed(db_session: AsyncSession) -> None:
    """Who may take a callback now, and the callback's call getting the visit's source.

    Orlov is paused, Sidorova is on a call: only Ivanov is free, even for Orlov's own
    client. The outbound call from Ivanov to the visitor 20 s after the request is the
    lead's (written twice, as the listener's snapshots do: one attribution); a call to
    the same number an hour later is not.
    """
    session = db_session
    async with session.begin():
        people = {}
        for username, ext in (("ivanov", "201"), ("orlov", "202"), ("sidorova", "203")):
            people[username] = await add_user(session, username, name=username.title(),
                                              role="manager", extension=ext, team="Продажи")
        await save_site(session, "shop.example", SiteOptions(origins=["https://shop.example"]))
        reason = await session.scalar(select(PresenceReason).order_by(PresenceReason.id))
        assert reason is not None
        await set_presence(session, people["orlov"], people["orlov"], reason.id)
        site_id = await session.scalar(select(CtSite.id))
        session.add(CtVisit(session="visit-cb", site_id=site_id, utm_source="yandex",
                            utm_medium="cpc", utm_campaign="autumn", utm_term="окна",
                            landing="https://shop.example/windows", pages=[], client_ids={},
                            first_seen=at(12, 0), last_seen=at(12, 5)))
    live = call("live-1", "inbound", "+79035550000", at(12, 0), did=None, answered=True)
    legs = tuple(replace(leg, extension="203", channel="PJSIP/203-0001", ended_at=None)
                 if leg.role == "manager" else replace(leg, ended_at=None) for leg in live.legs)
    async with session.begin():
        await record_call(session, replace(live, status="in_progress", ended_at=None,
                                           managers=("203",), rang=("203",), legs=legs),
                          hooks=HOOKS)
    async with session.begin():
        orlov_client = await create_client(session, "ООО Окна", phones=["+79165550099"],
                                           owner_id=people["orlov"].id, actor="test")
        free = await free_managers(session, prefer=orlov_client.owner_id)
        assert [m.username for m in free] == ["ivanov"]
        site = await session.get(CtSite, site_id)
        visit = await session.scalar(select(CtVisit).where(CtVisit.session == "visit-cb"))
        assert site is not None and visit is not None
        lead = await create_lead(session, site, visit,
                                 LeadInput(kind="callback", phone="8 916 555-00-99"),
                                 now=at(12, 6), callback_to=free[0])
        lead_id = lead.id
        assert (lead.status, lead.task_id, lead.client_id) == ("calling", None, orlov_client.id)

    def placed(linkedid: str, when: datetime) -> CallData:
        data = call(linkedid, "outbound", "+79165550099", when, did=None, answered=True)
        return replace(data, managers=("201",), rang=("201",), legs=tuple(
            replace(leg, extension="201", channel="PJSIP/201-0001")
            if leg.role == "manager" else leg for leg in data.legs))

    for _ in range(2):
        async with session.begin():
            await record_call(session, placed("cb-1", at(12, 6) + timedelta(seconds=20)),
                              hooks=HOOKS)
    async with session.begin():
        await record_call(session, placed("cb-2", at(13, 6)), hooks=HOOKS)
    lead = await session.get(CtLead, lead_id, populate_existing=True)
    assert lead is not None
    calls = dict((await session.execute(select(Call.linkedid, Call.id))).all())
    assert (lead.status, lead.call_id) == ("connected", calls["cb-1"])
    rows = list(await session.execute(
        select(CtAttribution.call_id, CtAttribution.kind, CtAttribution.source,
               CtAttribution.campaign).where(CtAttribution.call_id.in_(
                   [calls["cb-1"], calls["cb-2"]]))))
    assert [tuple(r) for r in rows] == [(calls["cb-1"], "dynamic", "yandex", "autumn")]
    await session.commit()


async def test_a_written_batch_gives_the_callback_lead_to_its_first_call(
    db_session: AsyncSession,
) -> None:
    """In one batch (a replay), as call by call: the first call to the visitor takes the
    lead and its source; a second one within the window does not; the first written
    again changes nothing."""
    session = db_session
    async with session.begin():
        ivanov = await add_user(session, "ivanov", name="Ivanov", role="manager",
                                extension="201", team="Продажи")
        await save_site(session, "shop.example", SiteOptions(origins=["https://shop.example"]))
        site_id = await session.scalar(select(CtSite.id))
        session.add(CtVisit(session="visit-cb", site_id=site_id, utm_source="yandex",
                            utm_medium="cpc", utm_campaign="autumn", utm_term="окна",
                            landing="https://shop.example/windows", pages=[], client_ids={},
                            first_seen=at(12, 0), last_seen=at(12, 5)))
    async with session.begin():
        site = await session.get(CtSite, site_id)
        visit = await session.scalar(select(CtVisit).where(CtVisit.session == "visit-cb"))
        assert site is not None and visit is not None
        lead = await create_lead(session, site, visit,
                                 LeadInput(kind="callback", phone="8 916 555-00-99"),
                                 now=at(12, 6), callback_to=ivanov)
        lead_id = lead.id
        assert lead.status == "calling"

    def placed(linkedid: str, when: datetime) -> CallData:
        data = call(linkedid, "outbound", "+79165550099", when, did=None, answered=True)
        return replace(data, managers=("201",), rang=("201",), legs=tuple(
            replace(leg, extension="201", channel=f"PJSIP/201-{linkedid}")
            if leg.role == "manager" else leg for leg in data.legs))

    first = placed("cb-a", at(12, 6) + timedelta(seconds=20))
    async with session.begin():
        await record_calls(session, [first, placed("cb-b", at(12, 6) + timedelta(seconds=40)),
                                     first], hooks=HOOKS)
    lead = await session.get(CtLead, lead_id, populate_existing=True)
    assert lead is not None
    calls = dict((await session.execute(select(Call.linkedid, Call.id))).all())
    assert (lead.status, lead.call_id) == ("connected", calls["cb-a"])
    rows = list(await session.execute(
        select(CtAttribution.call_id, CtAttribution.kind, CtAttribution.source)))
    assert [tuple(r) for r in rows] == [(calls["cb-a"], "dynamic", "yandex")]
    await session.commit()
