"""Commands of the speech feature, registered by telecrm.cli.build_parser.

``telecrm kkp scripts add|list`` (versioned scripts in the database) and the
backlog mode of ``telecrm transcribe``; the rest of the speech commands live in
telecrm/cli.py's speech section.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from crm_core.clock import utcnow
from telecrm.messages import done
from telecrm.settings import Settings


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """``telecrm qc sample``: the weekly random sample, for a timer on Monday mornings."""
    qc = sub.add_parser("qc", help="контроль качества звонков")
    qc_sub = qc.add_subparsers(dest="qc_command", required=True, metavar="ACTION")
    sample = qc_sub.add_parser(
        "sample", parents=[common],
        help="отобрать случайные звонки недели на оценку (по N на менеджера, N задаёт "
             "отдел на странице /qc); повторный запуск только добирает до N")
    sample.add_argument("--week", metavar="D",
                        help="любой день недели ГГГГ-ММ-ДД (по умолчанию — прошлая неделя)")
    sample.set_defaults(handler=cmd_qc_sample)


async def cmd_qc_sample(args: argparse.Namespace, settings: Settings) -> int:
    """Draw a week for every team; one JSON object per call drawn."""
    from datetime import date, timedelta

    from crm_core.clock import local_today
    from crm_core.speech import sampling
    from telecrm.cli_support import UsageError, database, workday_timezone

    tz = workday_timezone(settings)
    if args.week:
        try:
            week = date.fromisoformat(args.week)
        except ValueError:
            raise UsageError("cli.not_a_date", f"{args.week!r} is not a date (YYYY-MM-DD)",
                             value=args.week) from None
    else:
        week = sampling.monday(local_today(tz)) - timedelta(days=7)
    async with database(settings) as sessions:
        async with sessions() as session:
            added = await sampling.draw(session, None, week, tz)
            await session.commit()
            for row in added:
                print(json.dumps({"week": row.week, "manager": row.manager,
                                  "call_id": row.call_id}, ensure_ascii=False))
    print(done("speech.sample.drawn", count=len(added),
               week=sampling.monday(week).strftime("%d.%m.%Y")), file=sys.stderr)
    return 0


def add_kkp_commands(kkp_sub: argparse._SubParsersAction,
                     common: argparse.ArgumentParser) -> None:
    """``kkp scripts add|list`` under ``telecrm kkp``."""
    scripts = kkp_sub.add_parser("scripts", help="скрипты продаж, сохранённые в базе")
    s_sub = scripts.add_subparsers(dest="scripts_command", required=True, metavar="ACTION")
    add = s_sub.add_parser("add", parents=[common],
                           help="загрузить скрипт новой версией (проверяется с --from)")
    add.add_argument("file", metavar="FILE.yaml", help="скрипт в YAML")
    add.add_argument("--team", metavar="T", help="отдел (по умолчанию — скрипт компании)")
    add.add_argument("--stage", metavar="S", help="ключ этапа воронки сделок")
    add.add_argument("--from", dest="effective_from", metavar="D",
                     help="действует с этой даты или времени ISO (по умолчанию — сейчас)")
    add.add_argument("--fine", type=int, default=0, metavar="RUB",
                     help="штраф за подтверждённое нарушение, ₽ (по умолчанию 0 — предупреждение)")
    add.set_defaults(handler=cmd_scripts_add)
    lst = s_sub.add_parser("list", parents=[common], help="все сохранённые версии, по строке JSON")
    lst.add_argument("--team", metavar="T", help="только скрипты этого отдела и компании")
    lst.set_defaults(handler=cmd_scripts_list)


async def cmd_scripts_add(args: argparse.Namespace, settings: Settings) -> int:

    from crm_core.speech import scripts as kkp_scripts
    from speech.script import KkpError, parse_script_text
    from telecrm.cli_support import UsageError, database, parse_moment, workday_timezone

    path = Path(args.file)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise UsageError("speech.script.unreadable", f"cannot read the script {path}: {exc}",
                         path=str(path), reason=exc.strerror or str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise UsageError("speech.script.not_utf8", f"the script {path} is not UTF-8 text",
                         path=str(path)) from exc
    try:
        script = parse_script_text(text)
    except KkpError as exc:
        raise UsageError("speech.script.in_file", f"{path}: {exc}", path=str(path),
                         error=exc) from exc
    if args.fine < 0:
        raise UsageError("speech.scripts.fine_negative", "--fine cannot be negative")
    since = (parse_moment(args.effective_from, workday_timezone(settings)) if args.effective_from
             else utcnow())
    async with database(settings) as sessions:
        async with sessions() as session:
            team_id = None
            if args.team:
                team = await kkp_scripts.team_by_name(session, args.team)
                if team is None:
                    raise UsageError("speech.scripts.no_team", f"no team called {args.team!r}",
                                     team=args.team)
                team_id = team.id
            row = await kkp_scripts.add_version(
                session, name=script.name or path.stem, text=text, team_id=team_id,
                stage=args.stage, effective_from=since, fine_amount=args.fine, actor="cli")
            await session.commit()
            print(json.dumps(_version_dict(row, args.team), ensure_ascii=False))
    return 0


def _version_dict(row: Any, team: str | None) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "team": team, "stage": row.stage,
            "effective_from": row.effective_from.isoformat(), "version": row.digest,
            "fine_amount": row.fine_amount}


async def cmd_scripts_list(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select

    from crm_core.people.models import Team
    from crm_core.speech import scripts as kkp_scripts
    from telecrm.cli_support import UsageError, database

    async with database(settings, writer=False) as sessions:
        async with sessions() as session:
            team_id = None
            if args.team:
                team = await kkp_scripts.team_by_name(session, args.team)
                if team is None:
                    raise UsageError("speech.scripts.no_team", f"no team called {args.team!r}",
                                     team=args.team)
                team_id = team.id
            names = {k: v for k, v in await session.execute(select(Team.id, Team.name))}
            for row in await kkp_scripts.list_versions(session, team_id):
                print(json.dumps(_version_dict(row, names.get(row.team_id)),
                                 ensure_ascii=False))
    return 0


# -- transcribe --backlog ------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr: calls done of all, hours of audio, time left."""

    def __init__(self, total: int, audio_seconds: float, out: TextIO = sys.stderr) -> None:
        self.total, self.audio_total, self.out = total, audio_seconds, out
        self.done = self.failed = 0
        self.audio_done = 0.0
        self.started = time.monotonic()

    def step(self, audio_seconds: float, *, failed: bool = False) -> None:
        self.done += 1
        self.failed += int(failed)
        self.audio_done += audio_seconds
        self.draw()

    def line(self) -> str:
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        elapsed = time.monotonic() - self.started
        left = self.audio_total - self.audio_done
        if self.audio_done > 0:
            eta = elapsed * left / self.audio_done
        else:
            eta = elapsed * (self.total - self.done) / self.done if self.done else 0.0
        h, rest = divmod(int(eta), 3600)
        from telecrm.web.present import number

        failed = done("speech.progress_failed", failed=self.failed) if self.failed else ""
        return f"[{'#' * filled}{'.' * (width - filled)}] " + done(
            "speech.progress", done=self.done, total=self.total, failed=failed,
            hours=number(self.audio_done / 3600, 2), hours_total=number(self.audio_total / 3600, 2),
            eta=f"{h}:{rest // 60:02d}:{rest % 60:02d}")

    def draw(self) -> None:
        end = "\n" if self.done >= self.total else ""
        self.out.write(f"\r{self.line()}{end}" if self.out.isatty() else f"{self.line()}\n")
        self.out.flush()


async def run_backlog(args: argparse.Namespace, settings: Settings) -> int:
    """Transcribe every call with a recording and no transcript; resumable (saved per call)."""
    from crm_core.speech import transcripts as store
    from speech.jobs import InProcessQueue
    from speech.model import load_model, resolve_model_dir
    from speech.worker import JobFailed, SpeechWorker
    from telecrm.app import recordings_config
    from telecrm.cli_support import open_sessions

    model_dir = resolve_model_dir(args.model or settings.vosk_model)
    engine, sessions = await open_sessions(settings)
    worker: SpeechWorker | None = None
    try:
        async with sessions() as session:
            ids = await store.calls_without_transcript(session, limit=10_000_000)
            seconds = await store.audio_seconds(session, ids)
        if not ids:  # said at once: loading a model takes seconds
            print(done("speech.nothing_to_transcribe"), file=sys.stderr)
            return 0
        progress = Progress(len(ids), sum(seconds.values()))
        worker = transcriber = SpeechWorker(sessions, InProcessQueue(), load_model(model_dir),
                              settings.recordings_source,
                              recordings=recordings_store(recordings_config(settings)),
                              threads=args.threads)
        slots = asyncio.Semaphore(max(1, args.threads))
        failures: dict[int, str] = {}

        async def one(call_id: int) -> None:
            async with slots:
                try:
                    await transcriber.do_call(call_id)
                except JobFailed as exc:
                    failures[call_id] = str(exc)
                    print("\n" + done("speech.call_failed", call=call_id, reason=exc),
                          file=sys.stderr)
                progress.step(seconds.get(call_id, 0.0), failed=call_id in failures)

        await asyncio.gather(*(one(call_id) for call_id in ids))
    finally:
        if worker is not None:
            worker.close()
        await engine.dispose()
    transcribed = len(ids) - len(failures)
    print(json.dumps({"transcribed": transcribed, "failed": len(failures),
                      "errors": {str(k): v for k, v in sorted(failures.items())}},
                     ensure_ascii=False))
    return 1 if failures else 0


def recordings_store(config: Any) -> Any:
    """The finalized recordings' store (directory or S3), opened as the app opens it."""
    from recordings.store import open_store

    return open_store(config)
