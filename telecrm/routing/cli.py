"""``telecrm routing show|team|did|token``: sticky routing from the administrator's shell.

The shell is the administrator's: any team may be switched. ``token`` prints the PBX's
token once (only its hash is stored); put it into the dialplan's ``CRM_PBX_TOKEN``.
"""

from __future__ import annotations

import argparse

from sqlalchemy import select

from crm_core.errors import NotFoundError
from crm_core.people.models import Team
from crm_core.routing import services
from telecrm.cli_support import database, print_json
from telecrm.messages import done
from telecrm.settings import Settings

DID_WORDS = {"on": "сначала своему менеджеру", "off": "всегда в очередь",
             "team": "как у отдела"}


async def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings, writer=False) as sessions, sessions() as session:
        teams, dids = await services.list_rules(session)
    if args.format == "json":
        print_json({"teams": teams, "dids": dids})
        return 0
    for team in teams:
        state = f"включено, {team['ring_seconds']} с" if team["enabled"] else "выключено"
        print(f"{team['team']}: {state}")
    for did in dids:
        print(f"{did['did']}: {DID_WORDS[did['mode']]}")
    return 0


async def cmd_team(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as sessions, sessions() as session, session.begin():
        team = await session.scalar(select(Team).where(Team.name == args.team))
        if team is None:
            raise NotFoundError("routing.team_not_found", f"no team {args.team!r}")
        rule = await services.set_team_rule(session, None, team.id, enabled=args.enabled,
                                            ring_seconds=args.ring)
        on, ring = rule.enabled, rule.ring_seconds
    if on:
        print(done("routing.team_on", team=args.team, ring=ring))
    else:
        print(done("routing.team_off", team=args.team))
    return 0


async def cmd_did(args: argparse.Namespace, settings: Settings) -> int:
    mode = services.DidMode(args.mode)
    async with database(settings) as sessions, sessions() as session, session.begin():
        rule = await services.set_did_rule(session, None, args.number, mode=mode)
        number = rule.did
    print(done("routing.did_on" if mode == services.DidMode.ON
               else "routing.did_off" if mode == services.DidMode.OFF else "routing.did_team",
               number=number))
    return 0


async def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as sessions, sessions() as session, session.begin():
        token = await services.issue_token(session, "cli", args.set)
    print(token)
    return 0


def add_commands(sub: argparse._SubParsersAction,  # type: ignore[type-arg]
                 common: argparse.ArgumentParser) -> None:
    routing = sub.add_parser("routing", help="звонки известного клиента — сначала своему "
                                             "менеджеру")
    routing_sub = routing.add_subparsers(dest="routing_command", required=True,
                                         metavar="ACTION")
    show = routing_sub.add_parser("show", parents=[common], help="что включено")
    show.add_argument("--format", choices=["table", "json"], default="table")
    show.set_defaults(handler=cmd_show)

    team = routing_sub.add_parser("team", parents=[common], help="включить или выключить "
                                                                 "для отдела")
    team.add_argument("team", help="название отдела")
    switch = team.add_mutually_exclusive_group(required=True)
    switch.add_argument("--on", dest="enabled", action="store_const", const=True)
    switch.add_argument("--off", dest="enabled", action="store_const", const=False)
    team.add_argument("--ring", type=int, metavar="SECONDS",
                      help=f"сколько секунд звонить менеджеру ({services.MIN_RING}–"
                           f"{services.MAX_RING}, по умолчанию {services.DEFAULT_RING_SECONDS})")
    team.set_defaults(handler=cmd_team)

    did = routing_sub.add_parser("did", parents=[common],
                                 help="на номере: включить, выключить или как у отдела")
    did.add_argument("number", help="номер, на который звонят клиенты")
    switch = did.add_mutually_exclusive_group(required=True)
    switch.add_argument("--on", dest="mode", action="store_const", const="on",
                        help="сначала своему менеджеру, что бы ни было у отдела")
    switch.add_argument("--off", dest="mode", action="store_const", const="off",
                        help="всегда в очередь (например, линия поддержки)")
    switch.add_argument("--team", dest="mode", action="store_const", const="team",
                        help="как у отдела ответственного менеджера")
    did.set_defaults(handler=cmd_did)

    token = routing_sub.add_parser("token", parents=[common],
                                   help="выдать новый токен АТС (прежний перестаёт работать)")
    token.add_argument("--set", metavar="TOKEN", help="свой токен вместо случайного")
    token.set_defaults(handler=cmd_token)
