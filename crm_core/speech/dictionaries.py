"""Phrase dictionaries: named lists of phrases, and who said them in which calls, week by week.

A dictionary («Конкуренты», «Возражения», «Грубость», «Обещания скидок») is a list of
phrases; a call "said" it when one phrase of its transcript (optionally only the
manager's or only the client's) holds every word of one of the dictionary's phrases, in
any inflected form (the search index, :mod:`crm_core.speech.search`). The report counts,
per manager (the call's first manager, as the QC queue does) and per week (Monday to
Sunday in the working day's timezone), the transcribed calls, those that said it and
those that did not; the drill-down lists those calls.

Counts are made from the index when asked, never stored: a phrase added today counts in
last month's calls too, which is what a new competitor's name needs. Dictionaries are the
company's; supervisors and admins edit them, every change audited; none is deleted (an
archived one leaves the lists and keeps its history).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.calls.models import Call
from crm_core.clients.models import Client
from crm_core.clock import utcnow
from crm_core.errors import ConflictError, DomainError, NotAllowedError, NotFoundError
from crm_core.people.models import Role, User
from crm_core.speech import search as index
from crm_core.speech.models import PhraseDictionary, Transcript, TranscriptPhrase
from crm_core.speech.review import scope

MAX_NAME = 100
MAX_PHRASES = 200
MAX_PHRASE_CHARS = 100
MAX_CALLS = 5000  # the most calls one drill-down lists
ENTITY = "phrase_dictionary"


def may_edit(user: User) -> bool:
    return user.role in (Role.SUPERVISOR, Role.ADMIN)


def _editor(user: User) -> None:
    if not may_edit(user):
        raise NotAllowedError("speech.dictionaries.bosses_only",
                              "only supervisors and admins edit dictionaries")


def clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise DomainError("speech.dictionaries.name_required", "a dictionary needs a name")
    if len(name) > MAX_NAME:
        raise DomainError("request.too_long", "name is too long", name="name", max=MAX_NAME)
    return name


def clean_phrases(phrases: list[str]) -> list[str]:
    """The phrases as kept: spaces collapsed, blanks and repeats dropped, each with words."""
    out: dict[str, str] = {}
    for raw in phrases:
        phrase = " ".join(str(raw).split())
        if not phrase:
            continue
        if len(phrase) > MAX_PHRASE_CHARS:
            raise DomainError("speech.dictionaries.phrase_too_long",
                              f"phrase {phrase[:30]!r} is too long", phrase=phrase[:40],
                              max=MAX_PHRASE_CHARS)
        if not index.word_parts(phrase):
            raise DomainError("speech.dictionaries.phrase_no_words",
                              f"phrase {phrase!r} has no words", phrase=phrase)
        index.query_terms(phrase)  # refuses a phrase of too many words
        out.setdefault(phrase.casefold(), phrase)
    if not out:
        raise DomainError("speech.dictionaries.phrases_required", "a dictionary needs phrases")
    if len(out) > MAX_PHRASES:
        raise DomainError("speech.dictionaries.too_many_phrases", "too many phrases",
                          max=MAX_PHRASES)
    return list(out.values())


async def _name_free(session: AsyncSession, name: str, but: int | None = None) -> None:
    stmt = select(PhraseDictionary.id, PhraseDictionary.name).where(
        PhraseDictionary.archived_at.is_(None))
    for dictionary_id, other in await session.execute(stmt):
        if dictionary_id != but and other.casefold() == name.casefold():
            raise ConflictError("speech.dictionaries.name_taken",
                                f"a dictionary called {name!r} exists", name=name)


async def create(session: AsyncSession, user: User, name: str,
                 phrases: list[str]) -> PhraseDictionary:
    """A new dictionary (not committed); audited."""
    _editor(user)
    name, phrases = clean_name(name), clean_phrases(phrases)
    await _name_free(session, name)
    row = PhraseDictionary(name=name, phrases=phrases, created_by=user.id)
    session.add(row)
    await session.flush()
    write_audit(session, actor=user.username, user_id=user.id, entity=ENTITY, entity_id=row.id,
                action=ACTION_CREATE, changes={"name": [None, name], "phrases": [None, phrases]})
    return row


async def get(session: AsyncSession, dictionary_id: int) -> PhraseDictionary:
    row = await session.get(PhraseDictionary, dictionary_id)
    if row is None:
        raise NotFoundError("speech.dictionaries.not_found", "no such dictionary")
    return row


async def update(session: AsyncSession, user: User, dictionary_id: int, *,
                 name: str | None = None, phrases: list[str] | None = None,
                 archived: bool | None = None) -> PhraseDictionary:
    """Rename, change the phrases, archive or bring back (not committed); audited."""
    _editor(user)
    row = await get(session, dictionary_id)
    changes: dict[str, list[Any]] = {}
    if name is not None and (name := clean_name(name)) != row.name:
        changes["name"] = [row.name, name]
        row.name = name
    if phrases is not None and (phrases := clean_phrases(phrases)) != row.phrases:
        changes["phrases"] = [row.phrases, phrases]
        row.phrases = phrases
    if archived is not None and archived != (row.archived_at is not None):
        changes["archived"] = [not archived, archived]
        row.archived_at = utcnow() if archived else None
    if row.archived_at is None and ("name" in changes or "archived" in changes):
        await _name_free(session, row.name, but=row.id)
    if changes:
        row.updated_at = utcnow()
        write_audit(session, actor=user.username, user_id=user.id, entity=ENTITY,
                    entity_id=row.id, action=ACTION_UPDATE, changes=changes)
    return row


async def listing(session: AsyncSession, *, archived: bool = False) -> list[PhraseDictionary]:
    stmt = select(PhraseDictionary).where(
        PhraseDictionary.archived_at.is_not(None) if archived
        else PhraseDictionary.archived_at.is_(None))
    return list(await session.scalars(stmt.order_by(PhraseDictionary.name)))


def to_dict(row: PhraseDictionary) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "phrases": list(row.phrases),
            "archived": row.archived_at is not None, "updated_at": row.updated_at.isoformat()}


# -- the report ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    since: datetime  # inclusive
    until: datetime  # exclusive
    tz: ZoneInfo

    def week_of(self, moment: datetime) -> date:
        day = moment.astimezone(self.tz).date()
        return day - timedelta(days=day.weekday())

    def weeks(self) -> list[date]:
        first, out = self.week_of(self.since), []
        last = self.week_of(self.until - timedelta(microseconds=1))
        while first <= last:
            out.append(first)
            first += timedelta(days=7)
        return out


def groups_of(row: PhraseDictionary) -> list[index.Terms]:
    return [index.query_terms(p) for p in row.phrases]


async def _calls(session: AsyncSession, user: User, visible: ColumnElement[bool],
                 period: Period) -> tuple[list[tuple[int, datetime, str]], dict[str, str]]:
    """(call, start, first manager) of the transcribed calls ``user`` may see in the period
    whose manager is his to judge; and those managers' names by extension."""
    allowed = await scope(session, user)
    stmt = (select(Call.id, Call.started_at, Call.managers)
            .join(Transcript, Transcript.call_id == Call.id)
            .where(visible, Call.started_at >= period.since, Call.started_at < period.until)
            .order_by(Call.started_at))
    names = allowed if allowed is not None else {
        ext: name for ext, name in await session.execute(
            select(User.extension, User.name).where(User.extension.is_not(None))) if ext}
    out = []
    for call_id, started, managers in await session.execute(stmt):
        manager = managers[0] if managers else None
        if manager is None or (allowed is not None and manager not in allowed):
            continue
        out.append((call_id, started, manager))
    return out, names


async def _said_calls(session: AsyncSession, row: PhraseDictionary,
                      visible: ColumnElement[bool], period: Period,
                      speaker: str | None) -> set[int]:
    """The calls of the period (that ``user`` may see) where the dictionary was said: one
    query, the full-text index asked once."""
    stmt = (select(TranscriptPhrase.call_id).distinct()
            .join(Call, Call.id == TranscriptPhrase.call_id)
            .where(index.matches(session, groups_of(row)), visible,
                   Call.started_at >= period.since, Call.started_at < period.until))
    if speaker is not None:
        stmt = stmt.where(TranscriptPhrase.speaker == speaker)
    return set(await session.scalars(stmt))


async def _said(session: AsyncSession, row: PhraseDictionary, call_ids: list[int],
                speaker: str | None) -> dict[int, TranscriptPhrase]:
    """The first phrase that says the dictionary, per call of ``call_ids`` that has one."""
    found: dict[int, TranscriptPhrase] = {}
    groups = groups_of(row)
    for start in range(0, len(call_ids), 500):
        stmt = (select(TranscriptPhrase)
                .where(TranscriptPhrase.call_id.in_(call_ids[start:start + 500]),
                       index.matches(session, groups))
                .order_by(TranscriptPhrase.call_id, TranscriptPhrase.start))
        if speaker is not None:
            stmt = stmt.where(TranscriptPhrase.speaker == speaker)
        for phrase in await session.scalars(stmt):
            found.setdefault(phrase.call_id, phrase)
    return found


def _counts() -> dict[str, int]:
    return {"calls": 0, "said": 0, "not_said": 0}


def _add(counts: dict[str, int], said: bool) -> None:
    counts["calls"] += 1
    counts["said" if said else "not_said"] += 1


async def report(session: AsyncSession, user: User, row: PhraseDictionary, *,
                 visible: ColumnElement[bool], period: Period,
                 speaker: str | None = None) -> dict[str, Any]:
    """Per manager and week: transcribed calls, those that said the dictionary, the others."""
    calls, names = await _calls(session, user, visible, period)
    said = await _said_calls(session, row, visible, period, speaker)
    weeks = period.weeks()
    rows: dict[str, dict[str, Any]] = {}
    total = _counts()
    for call_id, started, manager in calls:
        entry = rows.setdefault(manager, {
            "manager": {"extension": manager, "name": names.get(manager)},
            **_counts(), "weeks": {w: _counts() for w in weeks}})
        hit = call_id in said
        _add(entry, hit)
        _add(entry["weeks"].setdefault(period.week_of(started), _counts()), hit)
        _add(total, hit)
    out = []
    for manager in sorted(rows, key=lambda ext: (names.get(ext) or ext, ext)):
        entry = rows[manager]
        entry["weeks"] = [{"week": w.isoformat(), **c} for w, c in sorted(entry["weeks"].items())]
        out.append(entry)
    return {"dictionary": to_dict(row), "since": period.since.isoformat(),
            "until": period.until.isoformat(), "speaker": speaker,
            "weeks": [w.isoformat() for w in weeks], "managers": out, "total": total}


async def drill_down(session: AsyncSession, user: User, row: PhraseDictionary, *,
                     visible: ColumnElement[bool], period: Period, said: bool,
                     speaker: str | None = None, manager: str | None = None,
                     week: date | None = None) -> list[dict[str, Any]]:
    """The calls behind one cell of the report, newest first, with the phrase that said it."""
    calls, names = await _calls(session, user, visible, period)
    calls = [(c, s, m) for c, s, m in calls
             if (manager is None or m == manager) and (week is None or period.week_of(s) == week)]
    said_calls = await _said_calls(session, row, visible, period, speaker)
    chosen = [(c, s, m) for c, s, m in reversed(calls) if (c in said_calls) == said][:MAX_CALLS]
    found = await _said(session, row, [c for c, _, _ in chosen], speaker) if said else {}
    clients = dict((await session.execute(
        select(Call.id, Client.name).join(Client, Client.id == Call.client_id)
        .where(Call.id.in_([c for c, _, _ in chosen])))).all()) if chosen else {}
    terms = [t for g in groups_of(row) for t in g]
    out = []
    for call_id, started, ext in chosen:
        phrase = found.get(call_id)
        out.append({
            "call_id": call_id, "started_at": started.isoformat(),
            "when": started.astimezone(period.tz).strftime("%d.%m.%Y %H:%M"),
            "manager": {"extension": ext, "name": names.get(ext)},
            "client": clients.get(call_id),
            "phrase": None if phrase is None else {
                "speaker": phrase.speaker, "start": phrase.start, "end": phrase.end,
                "text": phrase.text,
                "fragments": [{"text": t, "hit": h}
                              for t, h in index.fragments(phrase.text, terms)]}})
    return out
