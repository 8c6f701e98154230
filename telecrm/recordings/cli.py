"""``telecrm recordings policy|status``: retention per team and what needs a supervisor.

``finalize`` and ``retention`` live in telecrm.cli (cmd_recordings); these two are the
administrator's view. Output is JSON; a refusal is one sentence (exit 2).
"""

from __future__ import annotations

import argparse
from typing import Any

from telecrm.cli_support import UsageError, database, print_json
from telecrm.settings import Settings


def _print(rows: Any) -> None:
    print_json(rows)


async def cmd_policy(args: argparse.Namespace, settings: Settings) -> int:
    """Show every team's retention, or set one team's (audited, actor "cli")."""
    from sqlalchemy import select

    from crm_core.people.models import Team
    from crm_core.recordings.jobs import retention_days, set_retention

    if args.days is not None and not args.team:
        raise UsageError("cli.recordings_days_need_team", "--days needs --team NAME")
    if args.days is not None and args.days < 1:
        raise UsageError("recordings.retention_too_short", "--days must be at least 1")
    async with database(settings, writer=args.days is not None) as sessions:
        async with sessions() as session:
            teams = {t.name: t.id for t in await session.scalars(select(Team))}
            if args.team and args.team not in teams:
                raise UsageError("cli.team_not_found", f"no team {args.team!r}", team=args.team,
                                 known=", ".join(sorted(teams)) or "—")
            if args.days is not None:
                await set_retention(session, teams[args.team], args.days, actor="cli")
            policies = await retention_days(session)
    default = settings.recordings_retention_days
    _print([{"team": name, "days": policies.get(team_id, default),
             "own_policy": team_id in policies}
            for name, team_id in sorted(teams.items()) if not args.team or name == args.team])
    return 0


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """Calls per recording state, and the failed ones (originals kept on the PBX)."""
    from crm_core.recordings.jobs import problems, status_counts

    async with database(settings, writer=False) as sessions:
        async with sessions() as session:
            counts = await status_counts(session)
            failed = await problems(session, limit=args.limit)
    _print({"counts": counts, "store": settings.recordings_store or
            str(settings.recordings_store_dir),
            "failed": [{"call_id": call.id, "linkedid": call.linkedid,
                        "started_at": call.started_at.isoformat(), "managers": call.managers,
                        "attempts": audio.attempts, "error": audio.error}
                       for audio, call in failed]})
    return 1 if failed else 0


def add_actions(recs_sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """``policy`` and ``status`` under ``telecrm recordings``."""
    policy = recs_sub.add_parser("policy", parents=[common],
                                 help="срок хранения записей по отделам (показать или задать с "
                                      "--days)")
    policy.add_argument("--team", metavar="NAME", help="отдел")
    policy.add_argument("--days", type=int, metavar="N", help="хранить записи отдела N дней")
    policy.set_defaults(handler=cmd_policy)
    status = recs_sub.add_parser("status", parents=[common],
                                 help="записи по состояниям и несохранённые (код выхода 1, если "
                                      "такие есть)")
    status.add_argument("--limit", type=int, default=200, metavar="N",
                        help="показать не больше N несохранённых")
    status.set_defaults(handler=cmd_status)


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register this feature's commands on the top-level subparsers (none beyond the above)."""
