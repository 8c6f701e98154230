"""Commands of the ad systems' loop, registered by :mod:`telecrm.calltracking.cli`:

- ``telecrm conversions export --file metrica-calls|metrica-deals|google-ads [--from D]
  [--to D] [--out FILE]``: the documented file for a manual upload (stdout by default);
- ``telecrm conversions send``: send the due conversions now (what ``serve`` does in
  rounds), and say what each system took;
- ``telecrm ct costs import FILE --system yandex_direct|vk_ads|google_ads [--channel C]
  [--money micros|units]``: an ad system's export by campaign and day (the ``import``
  without ``--system`` still reads the monthly ``month,channel,amount`` CSV).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import Any

from crm_core.clock import local_today
from telecrm.cli_support import UsageError, database, workday_timezone
from telecrm.messages import done
from telecrm.settings import Settings


def _day(raw: str | None, default: date, name: str) -> date:
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise UsageError("request.not_a_date", f"{name} must be a date (YYYY-MM-DD)",
                         name=name) from None


async def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from telecrm.calltracking.ads import export_file
    from telecrm.web.params import day_bounds

    tz = workday_timezone(settings)
    last = _day(args.date_to, local_today(tz), "--to")
    first = _day(args.date_from, date.fromordinal(last.toordinal() - 20), "--from")
    async with database(settings) as sessions:
        text = await export_file(sessions, args.file, day_bounds(first, tz)[0],
                                 day_bounds(last, tz)[1], tz)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


async def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.calltracking.ad_models import ConversionSystem
    from crm_core.calltracking.conversions import SYSTEM_NAMES
    from telecrm.calltracking.conversion_upload import send_all

    async with database(settings) as sessions:
        result = await send_all(sessions, settings)
    for system, counts in result.items():
        name = SYSTEM_NAMES[ConversionSystem(system)]
        print(done("conversions.sent", system=name, **counts) if any(counts.values())
              else done("conversions.nothing", system=name))
    return 0


async def cmd_costs_import(args: argparse.Namespace, settings: Settings) -> int:
    """An ad system's export file, booked by campaign and day (all rows or none)."""
    from crm_core.calltracking.ad_models import AdSystem
    from crm_core.calltracking.cost_import import (
        SYSTEM_NAMES,
        decode,
        parse_cost_file,
        store_campaign_costs,
    )

    path = Path(args.file)
    if not path.is_file():
        raise UsageError("cli.no_such_file", f"no such file: {path}", path=str(path))
    system = AdSystem(args.system)
    micros = {"micros": True, "units": False}.get(args.money or "")
    rows = parse_cost_file(decode(path.read_bytes(), path.name), system, path.name,
                           micros=micros)
    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            result: Any = await store_campaign_costs(session, system, rows,
                                                     file_name=path.name,
                                                     channel=args.channel)
    print(done("ct.campaign_costs_imported", system=SYSTEM_NAMES[system], file=path.name,
               rows=result.rows, created=result.created, replaced=result.replaced,
               unchanged=result.unchanged))
    return 0


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    conv = sub.add_parser("conversions", help="офлайн-конверсии для Яндекс Метрики и Google Ads")
    conv_sub = conv.add_subparsers(dest="conversions_command", required=True, metavar="ACTION")
    exp = conv_sub.add_parser("export", parents=[common],
                              help="файл конверсий для ручной загрузки (CSV)")
    exp.add_argument("--file", required=True,
                     choices=["metrica-calls", "metrica-deals", "google-ads"],
                     help="какой файл: звонки или сделки для Метрики, клики для Google Ads")
    exp.add_argument("--from", dest="date_from", metavar="D",
                     help="первый день (по умолчанию — 20 дней назад)")
    exp.add_argument("--to", dest="date_to", metavar="D",
                     help="последний день, включительно (по умолчанию — сегодня)")
    exp.add_argument("--out", metavar="FILE", help="куда записать (по умолчанию — в вывод)")
    exp.set_defaults(handler=cmd_export)
    conv_sub.add_parser("send", parents=[common],
                        help="отправить новые конверсии сейчас (serve делает это по "
                             "расписанию)").set_defaults(handler=cmd_send)


def add_cost_options(cimp: argparse.ArgumentParser) -> None:
    """``ct costs import``'s options for an ad system's export file."""
    cimp.add_argument("--system", choices=["yandex_direct", "vk_ads", "google_ads"],
                      help="файл — выгрузка этой рекламной системы по кампаниям и дням")
    cimp.add_argument("--channel", metavar="NAME",
                      help="канал в отчёте для этих расходов (по умолчанию — название системы)")
    cimp.add_argument("--money", choices=["micros", "units"],
                      help="суммы в микроединицах или в валюте (по умолчанию — как в файле)")
