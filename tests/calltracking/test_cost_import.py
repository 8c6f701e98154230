"""Costs from the ad systems' export files: each sample gives its campaigns' money by day,
importing twice changes nothing, a re-import of a day replaces that day's figure, a
broken file books nothing, and the costs reach the call-tracking report with their source.
Storage on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import AuditLog
from crm_core.calltracking.ad_models import AdSystem, CampaignCost
from crm_core.calltracking.cost_import import (
    CostFileError,
    decode,
    parse_cost_file,
    store_campaign_costs,
)
from crm_core.calltracking.report import Period, channel_report
from crm_core.calltracking.services import set_cost
from telecrm.messages import russian
from tests.support.db_fixtures import db_session_fixture  # noqa: F401

SAMPLES = Path(__file__).parent / "samples"
NOVEMBER = Period(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


def sample(name: str) -> str:
    return decode((SAMPLES / name).read_bytes(), name)


def test_yandex_direct_report_in_micros() -> None:
    rows = parse_cost_file(sample("yandex_direct_report.tsv"), "yandex_direct",
                           "yandex_direct_report.tsv")
    by = {(r.campaign, r.day): r for r in rows}
    assert len(rows) == 5
    spring = by[("spring", date(2026, 11, 1))]
    assert (spring.amount, spring.clicks, spring.impressions, spring.campaign_id) == (
        Decimal("5120.50"), 310, 12034, "70110011")
    assert by[("brand", date(2026, 11, 2))].amount == Decimal("905.00")
    assert sum(r.amount for r in rows) == Decimal("17175.75")


def test_yandex_direct_report_in_rubles_without_headers() -> None:
    text = ("Date\tCampaignId\tCampaignName\tImpressions\tClicks\tCost\n"
            "2026-11-01\t70110011\tspring\t12034\t310\t5120.50\n")
    [row] = parse_cost_file(text, "yandex_direct", "direct.tsv")
    assert row.amount == Decimal("5120.50")
    # explicitly in rubles: whole numbers are rubles then
    text = text.replace("5120.50", "5120")
    [row] = parse_cost_file(text, "yandex_direct", "direct.tsv", micros=False)
    assert row.amount == Decimal("5120.00")


def test_vk_ads_statistics_export() -> None:
    rows = parse_cost_file(sample("vk_ads_statistics.csv"), "vk_ads", "vk.csv")
    assert [(r.day, r.amount, r.clicks, r.impressions) for r in rows] == [
        (date(2026, 11, 1), Decimal("3250.75"), 410, 48200),
        (date(2026, 11, 2), Decimal("3410.20"), 455, 51030),
        (date(2026, 11, 3), Decimal("3300.00"), 430, 49880)]
    assert {(r.campaign, r.campaign_id) for r in rows} == {("vk-autumn", "4501")}


def test_google_ads_report_csv_and_utf16() -> None:
    text = sample("google_ads_campaign_report.csv")
    rows = parse_cost_file(text, "google_ads", "google.csv")
    assert [(r.day, r.amount, r.clicks, r.impressions, r.currency) for r in rows] == [
        (date(2026, 11, 1), Decimal("2150.40"), 120, 3410, "RUB"),
        (date(2026, 11, 2), Decimal("2300.00"), 131, 3655, "RUB"),
        (date(2026, 11, 3), Decimal("1999.60"), 117, 3290, "RUB")]
    # Google's "Excel CSV": UTF-16 with a BOM, tab-separated
    utf16 = text.replace(",", "\t").replace('"2\t150.40"', "2150.40")
    assert decode(utf16.encode("utf-16"), "g.csv").startswith("Campaign report")
    # the API's report: cost in micros
    api = ("segments.date,campaign.id,campaign.name,metrics.cost_micros,metrics.clicks\n"
           "2026-11-01,1,search,2150400000,120\n")
    [row] = parse_cost_file(api, "google_ads", "api.csv")
    assert row.amount == Decimal("2150.40")


@pytest.mark.parametrize("text, code", [
    ("", "calltracking.cost_file_header"),
    ("just some text\nnothing here\n", "calltracking.cost_file_header"),
    ("Date\tCampaignName\tCost\n", "calltracking.cost_file_empty"),
    ("Date\tCampaignName\tCost\n2026-13-45\tspring\t100\n", "calltracking.cost_file_date"),
    ("Date\tCampaignName\tCost\n2026-11-01\tspring\tмного\n", "calltracking.cost_file_amount"),
    ("Date\tCampaignName\tCost\n2026-11-01\tspring\t-5\n", "calltracking.cost_file_amount"),
    ("Date\tCost\n2026-11-01\t5\n", "calltracking.cost_file_campaign"),
    ("Date\tCampaignName\tClicks\tCost\n2026-11-01\tspring\t1.5\t5\n",
     "calltracking.cost_file_count"),
])
def test_broken_files_say_one_russian_sentence(text: str, code: str) -> None:
    with pytest.raises(CostFileError) as caught:
        parse_cost_file(text, "yandex_direct", "direct.tsv")
    assert caught.value.code == code
    sentence = russian(caught.value)
    assert sentence.endswith(".") and "direct.tsv" in sentence and "\n" not in sentence
    assert not any(ch in sentence for ch in "{}")


def test_not_utf8_is_refused() -> None:
    with pytest.raises(CostFileError) as caught:
        decode("Дата;Кампания".encode("cp1251"), "vk.csv")
    assert russian(caught.value) == "Файл vk.csv не в кодировке UTF-8."


async def _count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(CampaignCost)) or 0)


async def test_import_twice_changes_nothing_and_a_day_is_replaced(
        db_session: AsyncSession) -> None:
    text = sample("yandex_direct_report.tsv")
    rows = parse_cost_file(text, "yandex_direct", "direct.tsv")
    first = await store_campaign_costs(db_session, "yandex_direct", rows,
                                       file_name="direct.tsv")
    await db_session.commit()
    assert (first.created, first.replaced, first.unchanged) == (5, 0, 0)
    audits = await db_session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.entity == "ct_campaign_cost"))
    again = await store_campaign_costs(db_session, "yandex_direct", rows,
                                       file_name="direct.tsv")
    await db_session.commit()
    assert (again.created, again.replaced, again.unchanged) == (0, 0, 5)
    assert await _count(db_session) == 5
    assert await db_session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.entity == "ct_campaign_cost")) == audits  # nothing changed, nothing audited
    # a new export of Nov 3 only: that day's figure is replaced, never added to
    fix = ("Date\tCampaignId\tCampaignName\tImpressions\tClicks\tCost\n"
           "2026-11-03\t70110011\tspring\t12600\t330\t5400000000\n")
    third = await store_campaign_costs(
        db_session, "yandex_direct", parse_cost_file(fix, "yandex_direct", "nov3.tsv"),
        file_name="nov3.tsv")
    await db_session.commit()
    assert (third.created, third.replaced) == (0, 1)
    assert await _count(db_session) == 5
    row = await db_session.scalar(select(CampaignCost).where(
        CampaignCost.day == date(2026, 11, 3)))
    assert row is not None
    assert (row.amount, row.clicks, row.file_name, row.source, row.channel) == (
        Decimal("5400.00"), 330, "nov3.tsv", "yandex", "Яндекс Директ")
    change = await db_session.scalar(select(AuditLog).where(
        AuditLog.entity == "ct_campaign_cost", AuditLog.entity_id == row.id,
        AuditLog.action == "update"))
    assert change is not None and change.changes["amount"] == ["5300.00", "5400.00"]


async def test_costs_reach_the_report_with_their_source(db_session: AsyncSession) -> None:
    for name, system in (("yandex_direct_report.tsv", AdSystem.YANDEX_DIRECT),
                         ("vk_ads_statistics.csv", AdSystem.VK_ADS),
                         ("google_ads_campaign_report.csv", AdSystem.GOOGLE_ADS)):
        rows = parse_cost_file(sample(name), system, name)
        await store_campaign_costs(db_session, system, rows, file_name=name,
                                   channel="Сайт" if system == AdSystem.YANDEX_DIRECT else None)
    await set_cost(db_session, "2026-11", "Радио", "30000")  # typed by hand, spread by day
    await db_session.commit()
    by_channel = await channel_report(db_session, NOVEMBER)
    cost = {r["key"]: r["cost"] for r in by_channel["rows"]}
    assert cost == {"Сайт": 17175.75, "VK Реклама": 9960.95, "Google Ads": 6450.0,
                    "Радио": 30000.0}
    origins = {(i["key"], i["origin"]) for i in by_channel["cost_spread"]}
    assert ("Сайт", "yandex_direct") in origins and ("Радио", "manual") in origins
    by_source = await channel_report(db_session, NOVEMBER, by="source")
    assert {r["key"]: r["cost"] for r in by_source["rows"]} == {
        "yandex": 17175.75, "vk": 9960.95, "google": 6450.0,
        "Радио": 30000.0}  # a cost typed by month stays under its channel
    by_campaign = await channel_report(db_session, NOVEMBER, by="campaign")
    assert {r["key"]: r["cost"] for r in by_campaign["rows"]}["spring"] == 15290.75
    # a period of one day carries that day's figures only
    one_day = Period(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
    report = await channel_report(db_session, one_day, by="source")
    assert {r["key"]: r["cost"] for r in report["rows"]}["yandex"] == 5775.25


def test_command_line_import_twice_and_a_broken_file(tmp_path: Path) -> None:
    from tests.support.live import telecrm

    db = f"sqlite:///{tmp_path / 'crm.db'}"
    path = str(SAMPLES / "vk_ads_statistics.csv")
    first = telecrm("ct", "costs", "import", path, "--system", "vk_ads", "--db", db).stdout
    assert first == ("VK Реклама, vk_ads_statistics.csv: 3 строки; новых 3, заменено 0, "
                     "без изменений 0.\n")
    again = telecrm("ct", "costs", "import", path, "--system", "vk_ads", "--db", db).stdout
    assert again.endswith("новых 0, заменено 0, без изменений 3.\n")
    broken = tmp_path / "direct.tsv"
    broken.write_text("Date\tCampaignName\tCost\n2026-11-01\tspring\t100\n2026-11-02\tspring\t?\n",
                      encoding="utf-8")
    result = telecrm("ct", "costs", "import", str(broken), "--system", "yandex_direct",
                     "--db", db, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == "telecrm: direct.tsv, строка 3: «?» — не сумма расхода.\n"
    report = telecrm("report", "calltracking", "--from", "2026-11-01", "--to", "2026-11-30",
                     "--by", "source", "--db", db).stdout
    assert '"yandex"' not in report and '"vk"' in report  # the broken file booked nothing
