"""The client's timeline: everything that happened with him, newest first, in one list.

Calls (with their outcome, recording and transcript), notes, e-mails and meetings,
tasks closed with their result («Итог»), deals and their stage moves, invoices and
payments, status and owner changes. Each entry is JSON-safe (times as ISO strings,
money as strings) and carries its ``kind`` and the ``group`` the card filters by.
Calls are those the viewer may see (``calls_where``, from
:mod:`crm_core.people.access`); the rest belongs to the client, whom he may open.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    cast,
    exists,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from crm_core.activities.models import ActivityKind, CallOutcome, CallResult, ClientActivity
from crm_core.activities.outcomes import needs_outcome
from crm_core.calls.models import Call, Recording
from crm_core.people.models import User
from crm_core.sales.models import (
    ClientOwnerChange,
    ClientStatusChange,
    Deal,
    DealStageChange,
    Invoice,
    LoseReason,
    Payment,
    Pipeline,
    PipelineStage,
)
from crm_core.speech.models import Transcript
from crm_core.tasks.models import Task, TaskStatus
from crm_core.timestamps import isoformat

PER_KIND = 200  # the newest entries of each kind; older ones stay in the reports and the API
PAGE = 50  # the card shows this many entries at first, and as many more on each «Показать ещё»
MAX_SHOWN = 2000  # at most this many on the card at once

# kind -> the filter it is shown under on the card
GROUPS = {"call": "calls", "note": "notes", "task": "tasks", "email": "contacts",
          "meeting": "contacts", "deal": "deals", "invoice": "money", "payment": "money",
          "status": "changes", "owner": "changes"}
ACTIVITY_KINDS = {ActivityKind.NOTE.value: "note", ActivityKind.EMAIL_OUT.value: "email",
                  ActivityKind.EMAIL_IN.value: "email", ActivityKind.MEETING.value: "meeting"}

_FROM_STAGE = aliased(PipelineStage)
_TO_STAGE = aliased(PipelineStage)


def _entry(kind: str, at: Any, **data: Any) -> dict[str, Any]:
    return {"kind": kind, "group": GROUPS[kind], "at": isoformat(at), **data}


def _money(value: Any) -> str | None:
    return None if value is None else str(value)


async def _calls(session: AsyncSession, client_id: int, where: ColumnElement[bool],
                 limit: int) -> list[dict[str, Any]]:
    # Plain columns, and whether a recording or a transcript exists, in one statement: the
    # card is the most viewed page, and loading each call's recordings costs more than this.
    wanted = needs_outcome()
    recorded = exists().where(Recording.call_id == Call.id).correlate(Call)
    transcribed = exists().where(Transcript.call_id == Call.id).correlate(Call)
    rows = (await session.execute(
        select(Call.id, Call.started_at, Call.direction, Call.status, Call.client_number,
               Call.talk_seconds, Call.managers, recorded, transcribed, CallResult.id,
               CallResult.note, CallResult.user_id, CallOutcome.name, wanted)
        .outerjoin(CallResult, CallResult.call_id == Call.id)
        .outerjoin(CallOutcome, CallOutcome.id == CallResult.outcome_id)
        .where(Call.client_id == client_id, where)
        .order_by(Call.started_at.desc(), Call.id.desc()).limit(limit))).all()
    return [_entry("call", started_at, id=call_id, direction=direction, status=status,
                   number=number, talk_seconds=round(talk, 3), managers=list(managers),
                   recording=bool(has_recording), transcript=bool(has_transcript),
                   outcome=outcome, outcome_note=note, outcome_by=outcome_by,
                   needs_outcome=bool(needed) and result_id is None)
            for (call_id, started_at, direction, status, number, talk, managers, has_recording,
                 has_transcript, result_id, note, outcome_by, outcome, needed) in rows]


async def _activities(session: AsyncSession, client_id: int, limit: int,
                      groups: set[str]) -> list[dict[str, Any]]:
    kinds = [k for k, kind in ACTIVITY_KINDS.items() if GROUPS[kind] in groups]
    rows = await session.scalars(
        select(ClientActivity)
        .where(ClientActivity.client_id == client_id, ClientActivity.archived_at.is_(None),
               ClientActivity.kind.in_(kinds))
        .order_by(ClientActivity.happened_at.desc(), ClientActivity.id.desc())
        .limit(limit))
    return [_entry(ACTIVITY_KINDS[a.kind], a.happened_at, id=a.id, activity=a.kind,
                   text=a.text, people=a.people, by=a.user_id) for a in rows]


async def _tasks(session: AsyncSession, client_id: int, limit: int) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(Task).where(Task.client_id == client_id,
                           Task.status.in_([TaskStatus.DONE.value, TaskStatus.CANCELLED.value]),
                           Task.done_at.is_not(None))
        .order_by(Task.done_at.desc(), Task.id.desc()).limit(limit))
    return [_entry("task", t.done_at, id=t.id, title=t.title, task_kind=t.kind,
                   status=t.status, result=t.note, result_call_id=t.result_call_id,
                   by=t.assignee_id) for t in rows]


async def _deals(session: AsyncSession, client_id: int, limit: int) -> list[dict[str, Any]]:
    rows = (await session.execute(
        select(DealStageChange, Deal, Pipeline.name, _FROM_STAGE.name, _TO_STAGE.name,
               _TO_STAGE.outcome, LoseReason.name)
        .join(Deal, Deal.id == DealStageChange.deal_id)
        .join(Pipeline, Pipeline.id == Deal.pipeline_id)
        .join(_TO_STAGE, _TO_STAGE.id == DealStageChange.to_stage_id)
        .outerjoin(_FROM_STAGE, _FROM_STAGE.id == DealStageChange.from_stage_id)
        .outerjoin(LoseReason, LoseReason.id == Deal.lose_reason_id)
        .where(Deal.client_id == client_id, Deal.archived_at.is_(None))
        .order_by(DealStageChange.at.desc(), DealStageChange.id.desc())
        .limit(limit))).all()
    out = []
    for change, deal, pipeline, from_stage, to_stage, outcome, lose_reason in rows:
        event = ("created" if change.from_stage_id is None
                 else outcome if outcome in ("won", "lost") else "moved")
        out.append(_entry(
            "deal", change.at, id=change.id, deal_id=deal.id, title=deal.title,
            pipeline=pipeline, pipeline_id=deal.pipeline_id, event=event,
            from_stage=from_stage, to_stage=to_stage, amount=_money(deal.amount),
            won_amount=_money(deal.won_amount),
            lose_reason=lose_reason,
            lose_note=deal.lose_note, by=change.by_id))
    return out


def _newest(stmt: Select[*tuple[Any, ...]], limit: int) -> Select[*tuple[Any, ...]]:
    """``stmt``'s newest ``limit`` rows (as it orders them), as a part of a ``UNION ALL``:
    each kind keeps its own limit, and the kinds come in one round trip. Every column of
    each part is labelled alike (two unnamed ``NULL``s would be taken for one)."""
    return select(stmt.limit(limit).subquery())


async def _money_entries(session: AsyncSession, client_id: int, limit: int
                         ) -> list[dict[str, Any]]:
    invoices = (
        select(literal("invoice").label("kind"), Invoice.id, Invoice.created_at.label("at"),
               Invoice.amount, Invoice.paid_amount, Invoice.status,
               Invoice.issued_on.label("day"), Invoice.number,
               Invoice.created_by_id.label("by"))
        .where(Invoice.client_id == client_id, Invoice.archived_at.is_(None))
        .order_by(Invoice.created_at.desc()))
    payments = (
        select(literal("payment").label("kind"), Payment.id, Payment.created_at.label("at"),
               Payment.amount, cast(null(), Invoice.paid_amount.type).label("paid_amount"),
               cast(null(), Invoice.status.type).label("status"),
               Payment.paid_on.label("day"), Invoice.number, Payment.created_by_id.label("by"))
        .outerjoin(Invoice, Invoice.id == Payment.invoice_id)
        .where(Payment.client_id == client_id, Payment.archived_at.is_(None))
        .order_by(Payment.created_at.desc()))
    rows = await session.execute(union_all(_newest(invoices, limit), _newest(payments, limit)))
    return [_entry("invoice", at, id=row_id, number=number, amount=_money(amount),
                   paid_amount=_money(paid), status=status, issued_on=day.isoformat(), by=by)
            if kind == "invoice" else
            _entry("payment", at, id=row_id, amount=_money(amount), paid_on=day.isoformat(),
                   invoice=number, by=by)
            for kind, row_id, at, amount, paid, status, day, number, by in rows]


async def _changes(session: AsyncSession, client_id: int, limit: int) -> list[dict[str, Any]]:
    user_id = ClientOwnerChange.old_owner_id.type
    text_of = ClientStatusChange.new_status.type
    statuses = (
        select(literal("status").label("kind"), ClientStatusChange.id, ClientStatusChange.at,
               ClientStatusChange.old_status, ClientStatusChange.new_status,
               cast(null(), user_id).label("old_owner"), cast(null(), user_id).label("new_owner"),
               cast(null(), user_id).label("by"),
               cast(null(), ClientOwnerChange.reason.type).label("reason"))
        .where(ClientStatusChange.client_id == client_id)
        .order_by(ClientStatusChange.at.desc()))
    owners = (
        select(literal("owner").label("kind"), ClientOwnerChange.id, ClientOwnerChange.at,
               cast(null(), text_of).label("old_status"),
               cast(null(), text_of).label("new_status"),
               ClientOwnerChange.old_owner_id.label("old_owner"),
               ClientOwnerChange.new_owner_id.label("new_owner"),
               ClientOwnerChange.by_id.label("by"), ClientOwnerChange.reason)
        .where(ClientOwnerChange.client_id == client_id)
        .order_by(ClientOwnerChange.at.desc()))
    rows = await session.execute(union_all(_newest(statuses, limit), _newest(owners, limit)))
    return [_entry("status", at, id=row_id, old=old_status, new=new_status)
            if kind == "status" else
            _entry("owner", at, id=row_id, old=old_owner, new=new_owner, reason=reason, by=by)
            for kind, row_id, at, old_status, new_status, old_owner, new_owner, by, reason
            in rows]


async def _names(session: AsyncSession, entries: Iterable[dict[str, Any]]
                 ) -> tuple[dict[int, str], dict[str, str]]:
    """Names of the people the entries refer to, by id and by extension (the calls'
    managers), in one statement."""
    ids = {e.get(key) for e in entries for key in ("by", "old", "new", "outcome_by")
           if isinstance(e.get(key), int)}
    extensions = {ext for e in entries if e["kind"] == "call" for ext in e["managers"] if ext}
    if not ids and not extensions:
        return {}, {}
    by_id: dict[int, str] = {}
    by_extension: dict[str, str] = {}
    for uid, extension, name in await session.execute(
            select(User.id, User.extension, User.name)
            .where(or_(User.id.in_(ids), User.extension.in_(sorted(extensions))))):
        if uid in ids:
            by_id[uid] = name
        if extension is not None and extension in extensions:
            by_extension[extension] = name
    return by_id, by_extension


async def client_timeline(session: AsyncSession, client_id: int, *,
                          calls_where: ColumnElement[bool] | None = None,
                          group: str | None = None) -> list[dict[str, Any]]:
    """Everything that happened with the client, newest first (see the module doc): the
    newest :data:`PER_KIND` entries of each kind, of one filter's ``group`` if given.

    People are named: ``by`` (who did it), ``old``/``new`` of an owner change and
    ``outcome_by`` get ``*_name`` keys beside their ids, a call's ``managers`` (their
    extensions) ``managers_names`` (the extension itself where nobody has it).
    """
    # notes, e-mails and meetings come in one statement: each kind's newest, whatever the others
    return await _collect(session, client_id, calls_where, group, PER_KIND,
                          activities=PER_KIND * len(ACTIVITY_KINDS))


async def timeline_page(session: AsyncSession, client_id: int, *,
                        calls_where: ColumnElement[bool] | None = None,
                        group: str | None = None, shown: int = PAGE
                        ) -> tuple[list[dict[str, Any]], bool]:
    """The newest ``shown`` entries of the timeline (of ``group`` if given), as the card
    shows them, and whether older ones are left. A client of long standing has hundreds
    of calls and notes: each kind is read ``shown`` deep only, not all of them."""
    shown = max(1, min(shown, MAX_SHOWN))
    entries = await _collect(session, client_id, calls_where, group, shown + 1,
                             activities=shown + 1)
    return entries[:shown], len(entries) > shown


async def _collect(session: AsyncSession, client_id: int,
                   calls_where: ColumnElement[bool] | None, group: str | None,
                   per_kind: int, *, activities: int) -> list[dict[str, Any]]:
    groups = set(GROUPS.values()) if group is None else {group}
    entries: list[dict[str, Any]] = []
    if "calls" in groups:
        entries += await _calls(session, client_id,
                                calls_where if calls_where is not None else true(), per_kind)
    if groups & {"notes", "contacts"}:
        entries += await _activities(session, client_id, activities, groups)
    if "tasks" in groups:
        entries += await _tasks(session, client_id, per_kind)
    if "deals" in groups:
        entries += await _deals(session, client_id, per_kind)
    if "money" in groups:
        entries += await _money_entries(session, client_id, per_kind)
    if "changes" in groups:
        entries += await _changes(session, client_id, per_kind)
    names, staff = await _names(session, entries)
    for entry in entries:
        for key in ("by", "outcome_by") + (("old", "new") if entry["kind"] == "owner" else ()):
            if key in entry:
                entry[f"{key}_name"] = names.get(entry[key]) if entry[key] else None
        if entry["kind"] == "call":
            entry["managers_names"] = [staff.get(ext, ext) for ext in entry["managers"]]
    entries.sort(key=_newest_first, reverse=True)
    return entries


def _newest_first(entry: dict[str, Any]) -> tuple[datetime, str, int]:
    return datetime.fromisoformat(entry["at"]), entry["kind"], entry["id"]
