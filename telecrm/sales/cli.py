"""Commands of the sales management layer, registered by telecrm.cli.build_parser.

- ``telecrm payments add|import FILE.csv``, ``telecrm invoices add``;
- ``telecrm clients recompute|potential|reassign|archive|history`` (added to ``clients``);
- ``telecrm sales settings [--team T] [KEY=VALUE ...]``.
The command line acts as the server's operator (admin rights); every change is audited
with the actor ``cli``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from datetime import date
from pathlib import Path
from typing import Any

from crm_core.clock import local_today
from telecrm.cli_support import UsageError, database, print_json, workday_timezone
from telecrm.messages import done
from telecrm.settings import Settings

ACTOR = "cli"


async def _write(settings: Settings, work: Callable[[Any], Coroutine[Any, Any, Any]]) -> Any:
    """Run ``work(session)`` in one transaction; a refusal (a DomainError) writes nothing and
    reaches ``telecrm.cli.main``, which prints its sentence."""
    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            return await work(session)




def _today(settings: Settings) -> date:
    """Today in the workday timezone (a payment at 01:00 in Moscow is Moscow's day)."""
    return local_today(workday_timezone(settings))


def _day(value: str | None, settings: Settings) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise UsageError("cli.not_a_date", f"{value!r} is not a date (YYYY-MM-DD)",
                         value=value) from exc


async def _team_id(session: Any, name: str | None) -> int | None:
    from sqlalchemy import select

    from crm_core.people.models import Team

    if not name:
        return None
    team_id = await session.scalar(select(Team.id).where(Team.name == name))
    if team_id is None:
        raise UsageError("cli.no_team", f"there is no team named {name!r}", team=name)
    return int(team_id)


async def _user_id(session: Any, ref: str) -> int:
    """A user by username or extension."""
    from sqlalchemy import or_, select

    from crm_core.people.models import User

    user_id = await session.scalar(select(User.id).where(
        or_(User.username == ref, User.extension == ref)))
    if user_id is None:
        raise UsageError("cli.no_user", f"there is no user {ref!r}", user=ref)
    return int(user_id)


# -- payments and invoices ------------------------------------------------------------------


async def cmd_payments_add(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.sales.payments import payment_to_dict, record_payment

    async def work(session: Any) -> dict[str, Any]:
        payment = await record_payment(session, client=args.client, amount=args.amount,
                                       paid_on=args.date or _today(settings),
                                       invoice=args.invoice, ref=args.ref, note=args.note,
                                       source="cli", actor=ACTOR, today=_today(settings))
        return payment_to_dict(payment)

    row = await _write(settings, work)
    print(done("payments.added", id=row["id"], amount=row["amount"], client=row["client_id"],
               day=date.fromisoformat(row["paid_on"])))
    return 0


async def cmd_payments_import(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.sales.payments import import_payments_csv

    path = Path(args.file)
    if not path.is_file():
        raise UsageError("cli.no_such_file", f"no such file: {path}", path=str(path))
    report = await _write(settings, lambda session: import_payments_csv(
        session, path, today=_today(settings)))
    print(done("payments.imported", booked=report.booked, total=report.total,
               skipped=report.skipped))
    return 0


async def cmd_invoices_add(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.sales.payments import invoice_to_dict, record_invoice

    async def work(session: Any) -> dict[str, Any]:
        invoice = await record_invoice(session, client=args.client, number=args.number,
                                       amount=args.amount,
                                       issued_on=args.date or _today(settings),
                                       due_on=args.due, actor=ACTOR)
        return invoice_to_dict(invoice)

    row = await _write(settings, work)
    print(done("invoices.added", number=row["number"], amount=row["amount"],
               client=row["client_id"]))
    return 0


# -- clients --------------------------------------------------------------------------------


async def cmd_clients_recompute(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.sales.client_status import recompute_all

    workday_timezone(settings)
    today = _day(args.date, settings)
    counts = await _write(settings, lambda session: recompute_all(
        session, today=today, actor="recompute", tz_name=settings.timezone))
    print(done("clients.recomputed", clients=counts["clients"], changed=counts["changed"],
               abc=counts["abc_changed"]))
    return 0


async def cmd_clients_potential(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.sales.clients import set_contact_frequency, set_potential

    async def work(session: Any) -> Any:
        client = None
        if args.amount is not None:
            client = await set_potential(session, args.client, args.amount, items=args.items,
                                         by=None, actor=ACTOR)
        if args.contact_every is not None:
            client = await set_contact_frequency(session, args.client, args.contact_every or None,
                                                 by=None, actor=ACTOR)
        if client is None:
            raise UsageError("cli.potential_nothing", "give an AMOUNT or --contact-every DAYS")
        return client

    client = await _write(settings, work)
    shown = {"client": client.id, "potential": client.annual_potential,
             "group": client.abc_group or "—"}
    if client.contact_every_days:
        print(done("clients.potential_set", days=client.contact_every_days, **shown))
    else:
        print(done("clients.potential_set_group_days", **shown))
    return 0


async def cmd_clients_reassign(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.sales.clients import reassign_clients

    async def work(session: Any) -> int:
        owner = None if args.to == "-" else await _user_id(session, args.to)
        return len(await reassign_clients(session, args.clients, owner, by=None,
                                          reason=args.reason, actor=ACTOR))

    moved = await _write(settings, work)
    print(done("clients.reassigned", moved=moved))
    return 0


async def cmd_clients_archive(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.sales.clients import archive_client

    async def work(session: Any) -> Any:
        return await archive_client(session, args.client, by=None, reason=args.reason,
                                    restore=args.restore, actor=ACTOR)

    await _write(settings, work)
    if args.restore:
        print(done("clients.restored", client=args.client))
    else:
        print(done("clients.archived", client=args.client))
    return 0


async def cmd_clients_history(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.sales.client_status import status_history
    from crm_core.sales.clients import owner_history

    async def work(session: Any) -> dict[str, Any]:
        return {"status": await status_history(session, args.client),
                "owner": await owner_history(session, args.client)}

    print_json(await _write(settings, work))
    return 0


# -- settings -------------------------------------------------------------------------------


async def cmd_sales_settings(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.sales.settings import rules_for_team, save_rules

    values: dict[str, str] = {}
    for pair in args.values:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError("cli.not_key_value", f"{pair!r} is not KEY=VALUE", value=pair)
        values[key.strip()] = value.strip()

    async def work(session: Any) -> dict[str, Any]:
        team_id = await _team_id(session, args.team)
        if values:
            from crm_core.sales.client_status import recompute_all

            await save_rules(session, team_id, values, by=None, actor=ACTOR)
            await recompute_all(session, actor="settings", tz_name=settings.timezone)
        return (await rules_for_team(session, team_id)).to_dict()

    print_json(await _write(settings, work))
    return 0


# -- deals ----------------------------------------------------------------------------------


async def cmd_pipeline_add(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.sales.deals import StageSpec, create_pipeline

    async def work(session: Any) -> Any:
        specs = [StageSpec.parse(text) for text in args.stages]
        return await create_pipeline(session, args.name, specs, by=None, actor=ACTOR)

    pipeline = await _write(settings, work)
    print(done("deals.pipeline_added", id=pipeline.id, name=pipeline.name,
               stages=len(args.stages)))
    return 0


async def cmd_reason_add(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.sales.deals import add_lose_reason

    reason = await _write(settings, lambda session: add_lose_reason(session, args.name, by=None,
                                                                    actor=ACTOR))
    print(done("deals.reason_added", id=reason.id, name=reason.name))
    return 0


async def cmd_plan_set(args: argparse.Namespace, settings: Settings) -> int:
    from crm_core.sales.deals import set_plan

    try:
        month = date.fromisoformat(f"{args.month}-01" if len(args.month) == 7 else args.month)
    except ValueError as exc:
        raise UsageError("cli.not_a_month", f"{args.month!r} is not a month (YYYY-MM)",
                         value=args.month) from exc
    kind, target = ("amount", args.amount) if args.amount else ("count", args.count)

    async def work(session: Any) -> Any:
        return await set_plan(session, await _user_id(session, args.user), month, kind, target,
                              by=None, actor=ACTOR)

    plan = await _write(settings, work)
    from telecrm.web.present import month_label

    if plan.kind == "amount":
        print(done("deals.plan_amount", month=month_label(plan.month), target=plan.target))
    else:
        print(done("deals.plan_count", month=month_label(plan.month), target=plan.target))
    return 0


# -- reports (``telecrm report NAME``, the registry lives in cli_calltracking) ----------------


def report_runner(name: str) -> Callable[[argparse.Namespace, Settings, Any],
                                         Coroutine[Any, Any, dict[str, Any]]]:
    """A ``telecrm report`` runner for a sales report; the command line sees everyone."""

    async def run(args: argparse.Namespace, settings: Settings, period: Any) -> dict[str, Any]:
        from crm_core.sales.reports import REPORTS

        async with database(settings, writer=False) as sessions:
            async with sessions() as session:
                return await REPORTS[name](session, period.start, period.end, None,
                                           tz_name=settings.timezone)

    return run


def register_reports() -> None:
    from crm_core.sales.reports import REPORTS
    from telecrm.calltracking.cli import register_report

    for name in REPORTS:
        register_report(name, report_runner(name))


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError(f"{parser.prog} has no subcommands")


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register this feature's commands on the top-level subparsers."""
    register_reports()
    pay = sub.add_parser("payments", help="платежи клиентов (от них зависят статусы)")
    pay_sub = pay.add_subparsers(dest="payments_command", required=True, metavar="ACTION")
    padd = pay_sub.add_parser("add", parents=[common], help="провести один платёж")
    padd.add_argument("--client", required=True, help="номер клиента или точное название")
    padd.add_argument("--amount", required=True, help="сумма, ₽")
    padd.add_argument("--date", metavar="D", help="день платежа (по умолчанию — сегодня)")
    padd.add_argument("--invoice", metavar="NUMBER", help="счёт, который он оплачивает")
    padd.add_argument("--ref", help="номер в банковской выписке (платёж проводится один раз)")
    padd.add_argument("--note", help="комментарий")
    padd.set_defaults(handler=cmd_payments_add)
    pimp = pay_sub.add_parser("import", parents=[common],
                              help="CSV с заголовком date,client,amount[,invoice,ref,note]; "
                                   "проводятся все строки или ни одной")
    pimp.add_argument("file", metavar="FILE.csv")
    pimp.set_defaults(handler=cmd_payments_import)

    inv = sub.add_parser("invoices", help="счета клиентам")
    inv_sub = inv.add_subparsers(dest="invoices_command", required=True, metavar="ACTION")
    iadd = inv_sub.add_parser("add", parents=[common], help="выставить счёт")
    iadd.add_argument("--client", required=True, help="номер клиента или точное название")
    iadd.add_argument("--number", required=True, help="номер счёта")
    iadd.add_argument("--amount", required=True, help="сумма, ₽")
    iadd.add_argument("--date", metavar="D", help="день выставления (по умолчанию — сегодня)")
    iadd.add_argument("--due", metavar="D", help="срок оплаты")
    iadd.set_defaults(handler=cmd_invoices_add)

    clients = _subparsers(sub.choices["clients"])
    rec = clients.add_parser("recompute", parents=[common],
                             help="пересчитать статус и группу ABC каждого клиента по правилам")
    rec.add_argument("--date", metavar="YYYY-MM-DD", help="на этот день (по умолчанию — сегодня)")
    rec.set_defaults(handler=cmd_clients_recompute)
    pot = clients.add_parser("potential", parents=[common],
                             help="задать годовой потенциал клиента (ABC) или частоту контактов")
    pot.add_argument("client", type=int, metavar="CLIENT_ID")
    pot.add_argument("amount", nargs="?", metavar="AMOUNT", help="годовой потенциал, ₽")
    pot.add_argument("--items", type=int, help="годовой потенциал в штуках")
    pot.add_argument("--contact-every", type=int, metavar="DAYS",
                     help="дней между контактами по плану (0 — как у группы ABC)")
    pot.set_defaults(handler=cmd_clients_potential)
    rea = clients.add_parser("reassign", parents=[common],
                             help="передать клиентов другому менеджеру (история сохраняется)")
    rea.add_argument("clients", type=int, nargs="+", metavar="CLIENT_ID")
    rea.add_argument("--to", required=True, metavar="USER",
                     help="логин или внутренний номер; «-» — забрать клиентов")
    rea.add_argument("--reason", help="причина")
    rea.set_defaults(handler=cmd_clients_reassign)
    arc = clients.add_parser("archive", parents=[common],
                             help="перенести клиента в архив (клиенты не удаляются)")
    arc.add_argument("client", type=int, metavar="CLIENT_ID")
    arc.add_argument("--reason", help="причина")
    arc.add_argument("--restore", action="store_true", help="вернуть клиента из архива")
    arc.set_defaults(handler=cmd_clients_archive)
    his = clients.add_parser("history", parents=[common],
                             help="история статусов и ответственных клиента (JSON)")
    his.add_argument("client", type=int, metavar="CLIENT_ID")
    his.set_defaults(handler=cmd_clients_history)

    deals = sub.add_parser("deals", help="воронки, причины проигрыша, планы на месяц")
    deals_sub = deals.add_subparsers(dest="deals_command", required=True, metavar="ACTION")
    pip = deals_sub.add_parser("pipeline", parents=[common],
                               help="добавить воронку: NAME STAGE..., этап — "
                                    "название[:call|email|meeting|other[:дни[:owner|supervisor]]] "
                                    "или название:won / название:lost")
    pip.add_argument("name", help="название воронки")
    pip.add_argument("stages", nargs="+", metavar="STAGE")
    pip.set_defaults(handler=cmd_pipeline_add)
    lr = deals_sub.add_parser("reason", parents=[common], help="добавить причину проигрыша сделок")
    lr.add_argument("name", help="причина")
    lr.set_defaults(handler=cmd_reason_add)
    pl = deals_sub.add_parser("plan", parents=[common], help="план менеджера на месяц")
    pl.add_argument("--user", required=True, help="логин или внутренний номер")
    pl.add_argument("--month", required=True, metavar="YYYY-MM")
    target = pl.add_mutually_exclusive_group(required=True)
    target.add_argument("--amount", help="сумма выигранных за месяц сделок, ₽")
    target.add_argument("--count", help="число выигранных за месяц сделок")
    pl.set_defaults(handler=cmd_plan_set)

    sales = sub.add_parser("sales", help="правила руководителя продаж")
    sales_sub = sales.add_subparsers(dest="sales_command", required=True, metavar="ACTION")
    st = sales_sub.add_parser("settings", parents=[common],
                              help="показать или изменить правила: KEY=VALUE ... (вывод — JSON)")
    st.add_argument("values", nargs="*", metavar="KEY=VALUE")
    st.add_argument("--team", help="правила отдела (по умолчанию — компании)")
    st.set_defaults(handler=cmd_sales_settings)
