"""``telecrm pbx add|edit|list|disable|enable``: the PBXs of a company with branches.

A PBX is never deleted (its name labels its calls): ``pbx disable`` stops listening to
it. The AMI secret is stored as given and never printed, listed or shown on a page.
``serve`` reads the PBXs when it starts: restart it after a change.
"""

from __future__ import annotations

import argparse
from typing import Any

from crm_core.calls.snapshot import DEFAULT_PBX
from crm_core.errors import DomainError
from crm_core.pbxes.services import (
    add_pbx,
    describe_pbx,
    edit_pbx,
    list_pbxes,
    set_pbx_enabled,
)
from telecrm.cli_support import database, print_json
from telecrm.settings import Settings


def _port(value: str | None) -> int | None:
    """The port as typed; anything but a number is the domain's refusal, in Russian."""
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        raise DomainError("pbx.bad_port", f"bad AMI port {value!r}", port=value) from None


def _table(rows: list[dict[str, Any]]) -> str:
    head = ["АТС", "Адрес AMI", "Пользователь", "Записи", "Состояние"]
    body = [[r["name"], f"{r['host']}:{r['port']}", r["user"],
             r["recordings_source"] or "как у основной",
             "включена" if r["enabled"] else "отключена"] for r in rows]
    widths = [max(len(str(line[i])) for line in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(line)).rstrip()
             for line in [head, *body]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


async def cmd_pbx_add(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            pbx = await add_pbx(session, args.name, host=args.host, port=_port(args.port) or 0,
                                username=args.user, secret=args.secret,
                                recordings_source=args.recordings_source)
    print(f"АТС «{pbx.name}» добавлена ({pbx.host}:{pbx.port}); перезапустите telecrm serve.")
    return 0


async def cmd_pbx_edit(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            pbx = await edit_pbx(session, args.name, host=args.host, port=_port(args.port),
                                 username=args.user, secret=args.secret,
                                 recordings_source=args.recordings_source)
    print(f"АТС «{pbx.name}» изменена; перезапустите telecrm serve.")
    return 0


async def cmd_pbx_switch(args: argparse.Namespace, settings: Settings) -> int:
    enabled = args.pbx_command == "enable"
    async with database(settings) as sessions:
        async with sessions() as session, session.begin():
            pbx = await set_pbx_enabled(session, args.name, enabled)
    state = "включена" if enabled else "отключена"
    print(f"АТС «{pbx.name}» {state}; перезапустите telecrm serve.")
    return 0


async def cmd_pbx_list(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings, writer=False) as sessions:
        async with sessions() as session:
            rows = [describe_pbx(pbx) for pbx in await list_pbxes(session)]
    if not any(row["name"] == DEFAULT_PBX for row in rows):
        rows.insert(0, {"name": DEFAULT_PBX, "host": settings.ami_host,
                        "port": settings.ami_port, "user": settings.ami_user,
                        "recordings_source": str(settings.recordings_source),
                        "enabled": True, "from_settings": True})
    if args.format == "json":
        print_json({"pbxes": rows})
    else:
        print(_table(rows))
    return 0


def add_commands(sub: argparse._SubParsersAction,  # type: ignore[type-arg]
                  common: argparse.ArgumentParser) -> None:
    pbx = sub.add_parser("pbx", help="PBXs (one AMI listener each, for a company with branches)")
    pbx_sub = pbx.add_subparsers(dest="pbx_command", required=True, metavar="ACTION")

    add = pbx_sub.add_parser("add", parents=[common], help="a PBX to listen to")
    add.add_argument("name", help="short Latin name (msk, spb): labels its calls")
    add.add_argument("--host", required=True)
    add.add_argument("--port", default="5038")
    add.add_argument("--user", required=True, help="AMI user (manager.conf section)")
    add.add_argument("--secret", required=True, help="AMI secret (stored, never printed)")
    add.add_argument("--recordings-source", metavar="DIR",
                     help="where this PBX's MixMonitor writes, as this machine sees it "
                          "(default: TELECRM_RECORDINGS_SOURCE)")
    add.set_defaults(handler=cmd_pbx_add)

    edit = pbx_sub.add_parser("edit", parents=[common], help="change a PBX's connection")
    edit.add_argument("name")
    edit.add_argument("--host")
    edit.add_argument("--port")
    edit.add_argument("--user")
    edit.add_argument("--secret")
    edit.add_argument("--recordings-source", metavar="DIR")
    edit.set_defaults(handler=cmd_pbx_edit)

    for action, text in (("disable", "stop listening to a PBX (its calls stay)"),
                         ("enable", "listen to a switched-off PBX again")):
        switch = pbx_sub.add_parser(action, parents=[common], help=text)
        switch.add_argument("name")
        switch.set_defaults(handler=cmd_pbx_switch)

    lst = pbx_sub.add_parser("list", parents=[common], help="the PBXs (never their secrets)")
    lst.add_argument("--format", choices=["table", "json"], default="table")
    lst.set_defaults(handler=cmd_pbx_list)
