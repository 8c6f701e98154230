"""Commands of the calltracking feature, registered by telecrm.cli.build_parser.

- ``telecrm ct static add|list``, ``telecrm ct pool add|list``, ``telecrm ct sites add|list``,
  ``telecrm ct costs import FILE.csv``, ``telecrm ct costs set MONTH CHANNEL AMOUNT``,
  ``telecrm ct costs list``, ``telecrm ct archive NUMBER``, ``telecrm ct attribute`` (backfill);
- ``telecrm ct costs import FILE --system ...`` and ``telecrm conversions export|send``
  (:mod:`telecrm.calltracking.conversions_cli`);
- ``telecrm report NAME``: reports by name. ``REPORTS`` maps a name to its runner;
  another feature adds its report with one line there (or ``register_report``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from crm_core.clients.phones import format_phone
from crm_core.clock import local_now
from telecrm import csv_safety
from telecrm.calltracking import conversions_cli
from telecrm.cli_support import (
    UsageError,
    database,
    parse_moment,
    print_json,
    workday_timezone,
)
from telecrm.messages import done
from telecrm.settings import Settings

ReportRunner = Callable[[argparse.Namespace, Settings, Any], Coroutine[Any, Any, dict[str, Any]]]




async def _in_transaction(settings: Settings, work: Callable[[Any], Coroutine[Any, Any, Any]]
                          ) -> Any:
    """Run ``work(session)`` in one transaction; a refusal writes nothing and reaches
    ``telecrm.cli.main``, which prints its sentence."""
    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            return await work(session)


async def cmd_static_add(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.calltracking.services import add_static, static_to_dict

    async def work(session: Any) -> dict[str, Any]:
        row = await add_static(session, args.did, args.channel, campaign=args.campaign,
                               source=args.source, medium=args.medium,
                               cost_per_month=args.cost_per_month)
        return static_to_dict(row)

    row = await _in_transaction(settings, work)
    print(done("ct.static_added", did=format_phone(row["did"]), channel=row["channel"]))
    return 0


async def cmd_static_list(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.calltracking.services import list_static, static_to_dict

    async def work(session: Any) -> list[dict[str, Any]]:
        return [static_to_dict(row) for row in await list_static(session)]

    print_json(await _in_transaction(settings, work))
    return 0


async def cmd_pool_add(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.calltracking.services import add_pool_numbers, pool_of

    async def work(session: Any) -> tuple[str, list[str]]:
        site = await add_pool_numbers(session, args.site, args.numbers)
        return site.host, pool_of(site)

    host, pool = await _in_transaction(settings, work)
    print(done("ct.pool_added", host=host, numbers=len(pool)))
    return 0


async def cmd_sites_list(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.calltracking.services import list_sites, site_to_dict

    async def work(session: Any) -> list[dict[str, Any]]:
        return [site_to_dict(site) for site in await list_sites(session)]

    sites = await _in_transaction(settings, work)
    if getattr(args, "site", None):
        sites = [s for s in sites if s["host"] == args.site.lower()]
    print_json(sites)
    return 0


async def cmd_sites_add(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.calltracking.services import SiteOptions, save_site, site_to_dict

    reuse = {"on": True, "off": False}.get(args.reuse_live_leases or "")
    options = SiteOptions(
        default_numbers=args.default_number or (), selector=args.selector,
        origins=args.origin or (), hold_seconds=args.hold, cooldown_seconds=args.cooldown,
        heartbeat_seconds=args.heartbeat, grace_seconds=args.grace, reuse_live_leases=reuse,
        channel=args.channel)

    async def work(session: Any) -> dict[str, Any]:
        return site_to_dict(await save_site(session, args.host, options))

    print_json(await _in_transaction(settings, work))
    return 0


async def cmd_costs_import(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.calltracking.services import import_costs

    if getattr(args, "system", None):  # an ad system's export by campaign and day
        return await conversions_cli.cmd_costs_import(args, settings)

    path = Path(args.file)
    if not path.is_file():
        raise UsageError("cli.no_such_file", f"no such file: {path}", path=str(path))

    async def work(session: Any) -> int:
        return await import_costs(session, path)

    count = await _in_transaction(settings, work)
    print(done("ct.costs_imported", count=count))
    return 0


async def cmd_costs_set(args: argparse.Namespace, settings: Settings) -> int:
    """One month's cost entered by hand; entering it again corrects it (audited)."""
    from crm_core.calltracking.services import set_cost

    async def work(session: Any) -> dict[str, Any]:
        row = await set_cost(session, args.month, args.channel, args.amount, actor="cli")
        return {"month": row.month.strftime("%Y-%m"), "channel": row.channel,
                "amount": float(row.amount)}

    print_json(await _in_transaction(settings, work))
    return 0


async def cmd_costs_list(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.calltracking.services import list_costs

    async def work(session: Any) -> list[dict[str, Any]]:
        return [{"month": c.month.strftime("%Y-%m"), "channel": c.channel,
                 "amount": float(c.amount)} for c in await list_costs(session)]

    print_json(await _in_transaction(settings, work))
    return 0


async def cmd_archive(args: argparse.Namespace, settings: Settings) -> int:
    """Stop tracking a static or pool number; its history stays."""
    from crm_core.calltracking.services import archive_number

    async def work(session: Any) -> str:
        return await archive_number(session, args.number, actor="cli")

    kind = await _in_transaction(settings, work)
    print(done("ct.static_archived") if kind == "static" else done("ct.pool_archived"))
    return 0


async def cmd_attribute(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.calltracking.attribution import attribute_pending

    count = await _in_transaction(settings, attribute_pending)
    print(done("ct.attributed", count=count))
    return 0


# -- reports -----------------------------------------------------------------------------------


def _period(args: argparse.Namespace, settings: Settings) -> Any:
    """``--from``/``--to`` (dates inclusive) in the workday timezone; default: this month."""
    from crm_core.calltracking.report import Period

    tz = workday_timezone(settings)
    now = local_now(tz)
    start = (parse_moment(args.date_from, tz) if args.date_from
             else datetime.combine(now.date().replace(day=1), datetime.min.time(), tz))
    end = (parse_moment(args.date_to, tz, end=True) if args.date_to
           else datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tz))
    if end <= start:
        raise UsageError("request.range_reversed", "--from must be before --to",
                         first="--from", last="--to")
    if end - start > timedelta(days=400):
        raise UsageError("request.period_too_long", "the period must not exceed 400 days",
                         days=400)
    return Period(start, end)


async def report_calltracking(args: argparse.Namespace, settings: Settings, period: Any
                              ) -> dict[str, Any]:
    from crm_core.calltracking.report import channel_report, pool_health

    async with database(settings, writer=False) as sessions:
        async with sessions() as session:
            body = await channel_report(session, period, by=args.by,
                                        target_seconds=args.target_seconds)
            body["pool_health"] = await pool_health(session, period)
            return body


# name -> runner; a new report is one line here.
REPORTS: dict[str, ReportRunner] = {"calltracking": report_calltracking}


def register_report(name: str, runner: ReportRunner) -> None:
    """Add a report to ``telecrm report`` (for features that keep their runner elsewhere)."""
    REPORTS[name] = runner


def _write_csv(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    fields = list(dict.fromkeys(key for row in rows for key in row))  # rows may differ in keys
    writer = csv_safety.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


async def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    runner = REPORTS.get(args.name)
    if runner is None:
        raise UsageError("reports.unknown", f"unknown report {args.name!r}", name=args.name,
                         known=sorted(REPORTS))
    body = await runner(args, settings, _period(args, settings))
    if args.format == "json":
        print_json(body)
    else:  # the report's table: "rows" (and "totals"), else its first list of objects
        rows = body.get("rows")
        if rows is None:
            rows = next((v for v in body.values() if isinstance(v, list) and v
                         and all(isinstance(x, dict) for x in v)), [])
        totals = body.get("totals", body.get("total"))
        _write_csv([*rows, totals] if isinstance(totals, dict) else rows)
    return 0


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register this feature's commands on the top-level subparsers."""
    ct = sub.add_parser("ct",
                        help="коллтрекинг: статические номера, пулы сайтов, расходы на рекламу")
    ct_sub = ct.add_subparsers(dest="ct_command", required=True, metavar="WHAT")

    static = ct_sub.add_parser("static", help="статические номера (по одному на канал)")
    static_sub = static.add_subparsers(dest="ct_static_command", required=True, metavar="ACTION")
    add = static_sub.add_parser("add", parents=[common], help="отслеживать номер для канала")
    add.add_argument("--did", required=True, metavar="NUMBER", help="номер")
    add.add_argument("--channel", required=True, metavar="NAME", help="канал")
    add.add_argument("--campaign", metavar="C", help="кампания")
    add.add_argument("--source", metavar="S", help="источник в отчётах (например, billboard)")
    add.add_argument("--medium", metavar="M", help="тип трафика в отчётах (например, offline)")
    add.add_argument("--cost-per-month", default="0", metavar="X", help="стоимость в месяц, ₽")
    add.set_defaults(handler=cmd_static_add)
    static_sub.add_parser("list", parents=[common], help="статические номера (JSON)").set_defaults(
        handler=cmd_static_list)

    pool = ct_sub.add_parser("pool", help="номера для подмены на сайте")
    pool_sub = pool.add_subparsers(dest="ct_pool_command", required=True, metavar="ACTION")
    padd = pool_sub.add_parser("add", parents=[common],
                               help="добавить номера в пул сайта (сайт создаётся)")
    padd.add_argument("--site", required=True, metavar="HOST", help="сайт")
    padd.add_argument("numbers", nargs="+", metavar="NUMBER")
    padd.set_defaults(handler=cmd_pool_add)
    plist = pool_sub.add_parser("list", parents=[common], help="сайты и их пулы (JSON)")
    plist.add_argument("--site", metavar="HOST", help="только этот сайт")
    plist.set_defaults(handler=cmd_sites_list)

    sites = ct_sub.add_parser("sites", help="сайты, которые показывают номера из пула")
    sites_sub = sites.add_subparsers(dest="ct_sites_command", required=True, metavar="ACTION")
    sadd = sites_sub.add_parser("add", parents=[common],
                                help="добавить сайт или изменить его настройки")
    sadd.add_argument("host", metavar="HOST")
    sadd.add_argument("--default-number", action="append", metavar="NUMBER",
                      help="номер компании, написанный на сайте (можно несколько раз; первый "
                           "показывается, когда пул исчерпан)")
    sadd.add_argument("--selector", metavar="CSS", help="элементы с номером "
                      "(по умолчанию .ct-phone)")
    sadd.add_argument("--origin", action="append", metavar="URL",
                      help="разрешённый источник (можно несколько раз; по умолчанию https:// и "
                           "http:// HOST)")
    sadd.add_argument("--hold", type=int, metavar="SECONDS",
                      help="сколько номер держится за посетителем после его последнего действия "
                           "(по умолчанию 180)")
    sadd.add_argument("--cooldown", type=int, metavar="SECONDS",
                      help="отдых освободившегося номера перед повторной выдачей (по умолчанию 60)")
    sadd.add_argument("--heartbeat", type=int, metavar="SECONDS",
                      help="как часто страница подтверждает номер (по умолчанию 60)")
    sadd.add_argument("--grace", type=int, metavar="SECONDS",
                      help="звонок через столько секунд после конца выдачи ещё засчитывается (по "
                           "умолчанию 300)")
    sadd.add_argument("--reuse-live-leases", choices=["on", "off"],
                      help="выдавать занятые номера, когда пул исчерпан (звонки станут "
                           "неоднозначными)")
    sadd.add_argument("--channel", metavar="NAME",
                      help="название канала в отчётах (по умолчанию «Сайт»)")
    sadd.set_defaults(handler=cmd_sites_add)
    sites_sub.add_parser("list", parents=[common], help="сайты (JSON)").set_defaults(
        handler=cmd_sites_list)

    costs = ct_sub.add_parser("costs", help="расходы на рекламу по каналам и месяцам")
    costs_sub = costs.add_subparsers(dest="ct_costs_command", required=True, metavar="ACTION")
    cimp = costs_sub.add_parser("import", parents=[common],
                                help="CSV с заголовком month,channel,amount (все строки или ни "
                                     "одной) или, с --system, выгрузка рекламной системы по "
                                     "кампаниям и дням")
    cimp.add_argument("file", metavar="FILE.csv")
    conversions_cli.add_cost_options(cimp)
    cimp.set_defaults(handler=cmd_costs_import)
    cset = costs_sub.add_parser("set", parents=[common],
                                help="ввести или исправить расход канала за месяц")
    cset.add_argument("month", metavar="YYYY-MM")
    cset.add_argument("channel", metavar="CHANNEL")
    cset.add_argument("amount", metavar="AMOUNT")
    cset.set_defaults(handler=cmd_costs_set)
    costs_sub.add_parser("list", parents=[common], help="расходы (JSON)").set_defaults(
        handler=cmd_costs_list)

    carch = ct_sub.add_parser("archive", parents=[common],
                              help="перестать отслеживать статический номер или номер пула "
                                   "(история сохраняется)")
    carch.add_argument("number", metavar="NUMBER")
    carch.set_defaults(handler=cmd_archive)

    ct_sub.add_parser("attribute", parents=[common],
                      help="определить источник входящих звонков, у которых его ещё "
                           "нет").set_defaults(
        handler=cmd_attribute)

    conversions_cli.add_commands(sub, common)

    rep = sub.add_parser("report", parents=[common], help="отчёты по названию (json или csv)")
    rep.add_argument("name", metavar="NAME", help=f"один из: {', '.join(sorted(REPORTS))}")
    rep.add_argument("--from", dest="date_from", metavar="D", help="первый день (по умолчанию — "
                     "первое число этого месяца)")
    rep.add_argument("--to", dest="date_to", metavar="D", help="последний день, включительно "
                     "(по умолчанию — сегодня)")
    rep.add_argument("--format", choices=["json", "csv"], default="json")
    rep.add_argument("--by", choices=["channel", "source", "medium", "campaign"],
                     default="channel", help="calltracking: группировать строки по")
    rep.add_argument("--target-seconds", type=int, default=60,
                     help="calltracking: принятый звонок такой длины — целевой")
    rep.set_defaults(handler=cmd_report)
