"""``telecrm report missed``, ``telecrm mail set|show|address|test``, ``telecrm missed limit``.

The mail password is taken from ``--password`` or, better, standard input
(``--password-stdin``), stored, and never printed: ``mail show`` says only whether
one is set.
"""

from __future__ import annotations

import argparse
import smtplib
import sys
from typing import Any

from sqlalchemy import select

from crm_core.errors import DomainError
from crm_core.missed.mail import describe, mail_settings, set_address, set_mail_settings
from crm_core.missed.report import missed_report
from crm_core.missed.services import set_escalate_minutes
from crm_core.people.management import find_user
from crm_core.people.models import Team
from telecrm.cli_support import database, print_json
from telecrm.messages import done
from telecrm.missed.mailer import MailServer, send_now
from telecrm.settings import Settings


async def report_missed(args: argparse.Namespace, settings: Settings, period: Any
                        ) -> dict[str, Any]:
    """The ``telecrm report missed`` runner: everyone's figures."""
    async with database(settings, writer=False) as sessions:
        async with sessions() as session:
            report = await missed_report(session, period.start, period.end, None)
    return report.body


def _port(value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise DomainError("missed.mail_port_invalid", f"bad port {value!r}", port=value) from None


async def cmd_mail_set(args: argparse.Namespace, settings: Settings) -> int:
    password = args.password
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            row = await set_mail_settings(session, host=args.host, port=_port(args.port),
                                          security=args.security, username=args.user,
                                          password=password, sender=args.sender)
            host, port, sender = row.host, row.port, row.sender
    print(done("missed.mail_saved", host=host, port=port, sender=sender))
    return 0


async def cmd_mail_show(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings, writer=False) as sessions:
        async with sessions() as session:
            print_json(describe(await mail_settings(session)))
    return 0


async def cmd_mail_address(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            user = await find_user(session, args.user)
            await set_address(session, user, args.email)
            name = user.name
    if args.email:
        print(done("missed.address_saved", user=name, email=args.email.strip()))
    else:
        print(done("missed.address_removed", user=name))
    return 0


async def cmd_mail_test(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings, writer=False) as sessions:
        async with sessions() as session:
            row = await mail_settings(session)
            if row is None:
                raise DomainError("missed.mail_not_configured", "no mail server")
            server = MailServer.of(row)
    try:
        send_now(server, args.to, "Проверка почты Telecrm",
                 "Это проверочное письмо: уведомления о пропущенных звонках будут приходить так.")
    except (smtplib.SMTPException, OSError) as exc:
        raise DomainError("missed.mail_failed", f"not sent: {exc}", reason=str(exc)) from None
    print(done("missed.mail_sent", email=args.to))
    return 0


async def cmd_missed_limit(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            team = await session.scalar(select(Team).where(Team.name == args.team.strip()))
            if team is None:
                raise DomainError("missed.team_unknown", f"no team {args.team!r}",
                                  team=args.team)
            await set_escalate_minutes(session, None, team.id, args.minutes)
    print(done("missed.limit_saved", team=args.team.strip(), minutes=args.minutes))
    return 0


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register this feature's commands on the top-level subparsers."""
    from telecrm.calltracking.cli import register_report

    register_report("missed", report_missed)
    mail = sub.add_parser("mail", help="почта для уведомлений о пропущенных звонках")
    mail_sub = mail.add_subparsers(dest="mail_command", required=True, metavar="ACTION")
    mset = mail_sub.add_parser("set", parents=[common], help="SMTP-сервер для уведомлений")
    mset.add_argument("--host", required=True, help="адрес SMTP-сервера")
    mset.add_argument("--port", default="587", help="порт (по умолчанию 587)")
    mset.add_argument("--security", choices=["starttls", "none"], default="starttls",
                      help="шифрование: starttls (по умолчанию) или none")
    mset.add_argument("--user", help="пользователь SMTP (если сервер требует входа)")
    mset.add_argument("--password", help="пароль SMTP (лучше --password-stdin)")
    mset.add_argument("--password-stdin", action="store_true",
                      help="прочитать пароль из первой строки стандартного ввода")
    mset.add_argument("--sender", required=True, help="адрес отправителя писем")
    mset.set_defaults(handler=cmd_mail_set)
    mail_sub.add_parser("show", parents=[common],
                        help="настройки почты (JSON, без пароля)").set_defaults(
        handler=cmd_mail_show)
    maddr = mail_sub.add_parser("address", parents=[common],
                                help="адрес сотрудника для уведомлений (пустой — удалить)")
    maddr.add_argument("user", metavar="USER", help="имя для входа")
    maddr.add_argument("email", metavar="EMAIL", nargs="?", default="")
    maddr.set_defaults(handler=cmd_mail_address)
    mtest = mail_sub.add_parser("test", parents=[common], help="отправить проверочное письмо")
    mtest.add_argument("--to", required=True, metavar="EMAIL")
    mtest.set_defaults(handler=cmd_mail_test)

    missed = sub.add_parser("missed", help="пропущенные звонки")
    missed_sub = missed.add_subparsers(dest="missed_command", required=True, metavar="ACTION")
    limit = missed_sub.add_parser("limit", parents=[common],
                                  help="через сколько минут без перезвона сообщить руководителю")
    limit.add_argument("--team", required=True, metavar="T", help="команда")
    limit.add_argument("--minutes", required=True, type=int, metavar="N", help="минут")
    limit.set_defaults(handler=cmd_missed_limit)
