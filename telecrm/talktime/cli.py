"""``telecrm talktime rules|holidays|absences|rollup``: talk-time settings from the shell.

The command line is the server's administrator: it may change any team (or the
company-wide defaults, ``--company``). Changes are audited with the actor ``cli``.
Refusals (a rule for a past day, a bad weekday list) are one sentence, exit 2.
"""

from __future__ import annotations

import argparse
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from crm_core.clock import local_today
from telecrm.cli_support import UsageError, database, workday_timezone
from telecrm.messages import done, sentence
from telecrm.settings import Settings


def _day(value: str | None, name: str) -> date:
    if not value:
        raise UsageError("cli.date_required", f"--{name} is required (YYYY-MM-DD)",
                         option=f"--{name}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError("cli.not_a_date", f"--{name} {value!r} is not a date (YYYY-MM-DD)",
                         value=value) from None


def _print(rows: Any) -> None:
    print(json.dumps(rows, ensure_ascii=False, indent=2))


async def _run(settings: Settings, work: Any, *, writer: bool = True) -> Any:
    """Run ``work(session)`` in one transaction; a refusal rolls it back and reaches
    ``telecrm.cli.main``, which prints its sentence."""
    async with database(settings, writer=writer) as sessions:
        async with sessions() as session, session.begin():
            return await work(session)


async def _team_id(session: Any, args: argparse.Namespace) -> int | None:
    from crm_core.talktime.rules import team_by_key

    if getattr(args, "company", False):
        if args.team:
            raise UsageError("cli.team_or_company", "give either --team or --company, not both")
        return None
    if not args.team:
        raise UsageError("cli.team_required",
                         "--team is required (a team name or id; --company for the defaults)")
    return (await team_by_key(session, args.team)).id


# -- rules -----------------------------------------------------------------------------------


async def cmd_rules_list(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.talktime.rules import list_rules, rule_to_dict, team_names

    async def work(session: Any) -> list[dict[str, Any]]:
        names = await team_names(session)
        rows = await list_rules(session, None)
        if args.team:
            team_id = await _team_id(session, args)
            rows = [r for r in rows if r.team_id == team_id]
        return [rule_to_dict(r, names) for r in rows]

    _print(await _run(settings, work, writer=False))
    return 0


async def cmd_rules_set(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.talktime.rules import (
        RuleChange,
        parse_clock,
        parse_fine,
        parse_weekdays,
        rule_to_dict,
        set_rule,
        team_names,
    )

    tz = workday_timezone(settings)
    effective_from = _day(args.effective_from, "from")
    if all(v is None for v in (args.target_minutes, args.weekdays, args.min_call_seconds,
                               args.fine, args.day_start, args.day_end)):
        raise UsageError("cli.talktime_nothing_to_change",
                         "nothing to change: give --target-minutes, --weekdays, "
                         "--min-call-seconds, --fine, --day-start or --day-end")

    async def work(session: Any) -> dict[str, Any]:
        change = RuleChange(
            target_minutes=args.target_minutes,
            working_weekdays=parse_weekdays(args.weekdays) if args.weekdays else None,
            min_call_seconds=args.min_call_seconds,
            fine_amount=parse_fine(args.fine) if args.fine is not None else None,
            day_start=parse_clock(args.day_start, "day_start") if args.day_start else None,
            day_end=parse_clock(args.day_end, "day_end") if args.day_end else None)
        row = await set_rule(session, None, await _team_id(session, args), effective_from,
                             change, today=local_today(tz))
        return rule_to_dict(row, await team_names(session))

    _print(await _run(settings, work))
    return 0


# -- holidays --------------------------------------------------------------------------------


async def cmd_holidays_add(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.talktime.rules import add_holiday, holiday_to_dict, team_by_key

    day = _day(args.date, "date")

    async def work(session: Any) -> dict[str, Any]:
        team_id = (await team_by_key(session, args.team)).id if args.team else None
        return holiday_to_dict(await add_holiday(session, None, day, args.name or "", team_id))

    _print(await _run(settings, work))
    return 0


async def cmd_holidays_import(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.talktime.rules import import_holidays, team_by_key

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError("cli.no_such_file", f"{args.file}: no such file",
                         path=args.file) from None
    except UnicodeDecodeError:
        raise UsageError("cli.not_utf8", f"{args.file} is not UTF-8 text",
                         path=args.file) from None

    async def work(session: Any) -> tuple[int, int]:
        team_id = (await team_by_key(session, args.team)).id if args.team else None
        return await import_holidays(session, None, text, team_id)

    added, skipped = await _run(settings, work)
    print(done("talktime.holidays_imported", added=added, skipped=skipped))
    return 0


async def cmd_holidays_list(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.talktime.rules import holiday_to_dict, list_holidays, team_names

    first = _day(args.date_from, "from") if args.date_from else None
    last = _day(args.date_to, "to") if args.date_to else None

    async def work(session: Any) -> list[dict[str, Any]]:
        names = await team_names(session)
        return [holiday_to_dict(h, names) for h in await list_holidays(session, None, first,
                                                                       last)]

    _print(await _run(settings, work, writer=False))
    return 0


async def cmd_holidays_remove(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select

    from crm_core.talktime.models import Holiday
    from crm_core.talktime.rules import remove_holiday, team_by_key

    async def work(session: Any) -> date:
        if args.id is not None:
            holiday_id = args.id
        else:
            day = _day(args.date, "date")
            team_id = (await team_by_key(session, args.team)).id if args.team else None
            owner = Holiday.team_id.is_(None) if team_id is None else Holiday.team_id == team_id
            holiday_id = await session.scalar(select(Holiday.id).where(
                Holiday.day == day, owner, Holiday.archived_at.is_(None)))
            if holiday_id is None:
                if args.team:
                    raise UsageError("talktime.not_a_team_holiday",
                                     f"{day.isoformat()} is not a holiday of team {args.team!r}",
                                     day=day, team=args.team)
                raise UsageError("talktime.not_a_holiday", f"{day.isoformat()} is not a holiday",
                                 day=day)
        row = await remove_holiday(session, None, holiday_id)
        return row.day

    print(done("talktime.holiday_removed", day=await _run(settings, work)))
    return 0


# -- absences --------------------------------------------------------------------------------


async def cmd_absences_add(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.talktime.rules import absence_to_dict, add_absence, manager_by_key

    first = _day(args.date_from, "from")
    last = _day(args.date_to, "to") if args.date_to else first

    async def work(session: Any) -> dict[str, Any]:
        manager = await manager_by_key(session, args.manager)
        row = await add_absence(session, None, manager.id, first, last, args.kind,
                                args.note or "")
        return absence_to_dict(row, manager)

    _print(await _run(settings, work))
    return 0


async def cmd_absences_list(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select

    from crm_core.people.models import Role, User
    from crm_core.talktime.rules import absence_to_dict, list_absences, manager_by_key

    first = _day(args.date_from, "from") if args.date_from else None
    last = _day(args.date_to, "to") if args.date_to else None

    async def work(session: Any) -> list[dict[str, Any]]:
        if args.manager:
            managers = [await manager_by_key(session, args.manager)]
        else:
            managers = list(await session.scalars(select(User).where(
                User.role == Role.MANAGER.value)))
        by_id = {m.id: m for m in managers}
        return [absence_to_dict(a, by_id[a.user_id])
                for a in await list_absences(session, managers, first, last)]

    _print(await _run(settings, work, writer=False))
    return 0


async def cmd_absences_cancel(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.talktime.rules import cancel_absence

    async def work(session: Any) -> int:
        return (await cancel_absence(session, None, args.id)).id

    print(done("talktime.absence_cancelled", id=await _run(settings, work)))
    return 0


# -- the rollup ------------------------------------------------------------------------------


async def cmd_rollup(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select

    from crm_core.people.models import Role, User
    from crm_core.talktime.metric import refresh_rollup

    tz = workday_timezone(settings)
    today = local_today(tz)
    first = _day(args.date_from, "from") if args.date_from else today - timedelta(days=31)
    last = _day(args.date_to, "to") if args.date_to else today - timedelta(days=1)
    if last < first:
        raise UsageError("request.range_reversed", "--from must not be after --to",
                         first="--from", last="--to")
    if (last - first).days > 400:
        raise UsageError("request.period_too_long", "at most 400 days at a time", days=400)

    async def work(session: Any) -> int:
        managers = list(await session.scalars(select(User).where(
            User.role == Role.MANAGER.value, User.active.is_(True))))
        return await refresh_rollup(session, managers, first, last, tz)

    print(done("talktime.rollup_done", days=await _run(settings, work)))
    return 0


# -- the parser ------------------------------------------------------------------------------


def _positive(value: str) -> int:
    if not value.isdigit() or len(value) > 9:
        raise argparse.ArgumentTypeError(sentence("cli.not_whole", {"value": value}))
    return int(value)


def add_actions(talk_sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register ``rules``, ``holidays``, ``absences`` and ``rollup`` under ``telecrm talktime``."""
    rules = talk_sub.add_parser("rules", help="правила нормы разговоров отдела с какой-то даты")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    ls = rules_sub.add_parser("list", parents=[common], help="все строки правил (JSON)")
    ls.add_argument("--team", help="только строки этого отдела (название или номер)")
    ls.add_argument("--company", action="store_true", help="только правила компании")
    ls.set_defaults(handler=cmd_rules_list)
    st = rules_sub.add_parser(
        "set", parents=[common],
        help="изменить правила с даты (не для прошедших дней); не указанное остаётся как было")
    st.add_argument("--team", help="отдел: название или номер")
    st.add_argument("--company", action="store_true",
                    help="правила компании (для отделов без своих правил)")
    st.add_argument("--from", dest="effective_from", metavar="YYYY-MM-DD", required=True,
                    help="с какого дня действуют")
    st.add_argument("--target-minutes", type=_positive, metavar="N",
                    help="норма минут разговора в день")
    st.add_argument("--weekdays", metavar="DIGITS",
                    help="рабочие дни недели цифрами (1 — понедельник), например 12345")
    st.add_argument("--min-call-seconds", type=_positive, metavar="N",
                    help="звонки короче этого не засчитываются")
    st.add_argument("--fine", metavar="AMOUNT", help="штраф за подтверждённое нарушение, ₽")
    st.add_argument("--day-start", metavar="HH:MM", help="начало рабочего дня (для прогноза)")
    st.add_argument("--day-end", metavar="HH:MM", help="конец рабочего дня (для прогноза)")
    st.set_defaults(handler=cmd_rules_set)

    hol = talk_sub.add_parser("holidays", help="календарь праздников")
    hol_sub = hol.add_subparsers(dest="holidays_command", required=True, metavar="ACTION")
    add = hol_sub.add_parser("add", parents=[common], help="добавить нерабочий день")
    add.add_argument("--date", required=True, metavar="YYYY-MM-DD", help="день")
    add.add_argument("--name", default="", help="например, День народного единства")
    add.add_argument("--team", help="только для этого отдела (по умолчанию — вся компания)")
    add.set_defaults(handler=cmd_holidays_add)
    imp = hol_sub.add_parser("import", parents=[common],
                             help="добавить даты из CSV-файла (date[,name] в строке)")
    imp.add_argument("file", metavar="FILE.csv")
    imp.add_argument("--team", help="только для этого отдела (по умолчанию — вся компания)")
    imp.set_defaults(handler=cmd_holidays_import)
    hls = hol_sub.add_parser("list", parents=[common], help="праздники (JSON)")
    hls.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="с этого дня")
    hls.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="по этот день")
    hls.set_defaults(handler=cmd_holidays_list)
    rm = hol_sub.add_parser("remove", parents=[common],
                            help="снова сделать праздник рабочим днём (переносится в архив, не "
                                 "удаляется)")
    rm.add_argument("--date", metavar="YYYY-MM-DD", help="день праздника")
    rm.add_argument("--team", help="отдел, чей это праздник (по умолчанию — компании)")
    rm.add_argument("--id", type=_positive, help="номер праздника (из list)")
    rm.set_defaults(handler=cmd_holidays_remove)

    ab = talk_sub.add_parser("absences", help="отгулы, больничные и отпуска менеджеров")
    ab_sub = ab.add_subparsers(dest="absences_command", required=True, metavar="ACTION")
    aa = ab_sub.add_parser("add", parents=[common],
                           help="записать отсутствие (эти дни не оцениваются)")
    aa.add_argument("--manager", required=True, help="внутренний номер или логин")
    aa.add_argument("--from", dest="date_from", required=True, metavar="YYYY-MM-DD",
                    help="первый день")
    aa.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD",
                    help="последний день (по умолчанию — как --from)")
    aa.add_argument("--kind", choices=["day_off", "sick", "vacation"], default="day_off",
                    help="отгул, больничный или отпуск")
    aa.add_argument("--note", default="", help="комментарий")
    aa.set_defaults(handler=cmd_absences_add)
    al = ab_sub.add_parser("list", parents=[common], help="отсутствия (JSON)")
    al.add_argument("--manager", help="внутренний номер или логин")
    al.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="с этого дня")
    al.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="по этот день")
    al.set_defaults(handler=cmd_absences_list)
    ac = ab_sub.add_parser("cancel", parents=[common],
                           help="отменить отсутствие (переносится в архив)")
    ac.add_argument("id", type=_positive, help="номер отсутствия (из list)")
    ac.set_defaults(handler=cmd_absences_cancel)

    ru = talk_sub.add_parser("rollup", parents=[common],
                             help="посчитать закончившиеся дни и сохранить итоги (их читает "
                                  "таблица "
                                  "месяца; `serve` делает это после каждого дня)")
    ru.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD",
                    help="по умолчанию — 31 день назад")
    ru.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="по умолчанию — вчера")
    ru.set_defaults(handler=cmd_rollup)


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Nothing at the top level: the actions hang under ``telecrm talktime`` (see cli.py)."""
