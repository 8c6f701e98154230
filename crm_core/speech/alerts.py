"""Speech alerts: rules that tell supervisors when a dictionary is said, and the alerts.

A rule names a phrase dictionary, whose speech counts (the client's, the manager's or
either) and a team (a supervisor's own; an admin's any team or the whole company).
When a transcript is saved (:func:`crm_core.speech.transcripts.save_transcript`, in
the same transaction as its phrase index) every rule in force is matched against the
call's phrases through the lemma index, exactly as the dictionary report counts
(:func:`crm_core.speech.search.matches`), and each hit is recorded once per rule and
call: a call transcribed again alerts nobody twice. Delivery (a live event and e-mail)
is the app's; :func:`take_undelivered` hands it what is due, each alert once, with the
people who may see the call.

Rules are edited by supervisors (their team's) and admins, every change audited; none
is deleted (archived rules stop alerting and keep their alerts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.calls.models import Call
from crm_core.clients.models import Client
from crm_core.clock import utcnow
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.missed.services import addresses
from crm_core.people import access
from crm_core.people.models import Role, Team, User
from crm_core.speech import search as index
from crm_core.speech.dictionaries import groups_of
from crm_core.speech.models import (
    PhraseDictionary,
    SpeechAlert,
    SpeechAlertRule,
    SpeechAlertSeen,
    TranscriptPhrase,
)

ENTITY = "speech_alert_rule"
ANY = "any"
SPEAKERS = ("client", "manager", ANY)
MAX_LIST = 500  # the most alerts one page lists


def may_manage(user: User) -> bool:
    return user.role in (Role.SUPERVISOR, Role.ADMIN)


def _manager(user: User) -> None:
    if not may_manage(user):
        raise NotAllowedError("speech.alerts.bosses_only",
                              "only supervisors and admins keep alert rules")


def _may_touch(user: User, rule: SpeechAlertRule) -> bool:
    """An admin any rule; a supervisor his team's."""
    if user.role == Role.ADMIN:
        return True
    return (user.role == Role.SUPERVISOR and user.team_id is not None
            and rule.team_id == user.team_id)


def rules_filter(user: User) -> ColumnElement[bool]:
    """A WHERE clause on ``SpeechAlertRule``: the rules ``user`` sees and edits."""
    if user.role == Role.ADMIN:
        return SpeechAlertRule.id.is_not(None)
    if user.role == Role.SUPERVISOR and user.team_id is not None:
        return SpeechAlertRule.team_id == user.team_id
    return SpeechAlertRule.id.is_(None)


async def create_rule(session: AsyncSession, user: User, *, dictionary_id: int, speaker: str,
                      team_id: int | None) -> SpeechAlertRule:
    """A new rule, on (not committed); audited. A supervisor's is always his own team's."""
    _manager(user)
    if speaker not in SPEAKERS:
        raise DomainError("speech.alerts.bad_speaker", "speaker is client, manager or any")
    dictionary = await session.get(PhraseDictionary, dictionary_id)
    if dictionary is None or dictionary.archived_at is not None:
        raise NotFoundError("speech.dictionaries.not_found", "no such dictionary")
    if user.role == Role.SUPERVISOR:
        if user.team_id is None or team_id not in (None, user.team_id):
            raise NotAllowedError("speech.alerts.own_team_only",
                                  "a supervisor sets rules for his own team")
        team_id = user.team_id
    elif team_id is not None and await session.get(Team, team_id) is None:
        raise NotFoundError("speech.alerts.no_team", "no such team")
    rule = SpeechAlertRule(dictionary_id=dictionary_id, speaker=speaker, team_id=team_id,
                           created_by=user.id, created_at=utcnow(), updated_at=utcnow())
    session.add(rule)
    await session.flush()
    write_audit(session, actor=user.username, user_id=user.id, entity=ENTITY,
                entity_id=rule.id, action=ACTION_CREATE,
                changes={"dictionary_id": [None, dictionary_id], "speaker": [None, speaker],
                         "team_id": [None, team_id], "active": [None, True]})
    return rule


async def update_rule(session: AsyncSession, user: User, rule_id: int, *,
                      active: bool | None = None,
                      archived: bool | None = None) -> SpeechAlertRule:
    """Switch a rule on or off, archive or bring it back (not committed); audited."""
    _manager(user)
    rule = await session.get(SpeechAlertRule, rule_id)
    if rule is None or not _may_touch(user, rule):
        raise NotFoundError("speech.alerts.rule_not_found", "no such rule")
    changes: dict[str, list[Any]] = {}
    if active is not None and active != rule.active:
        changes["active"] = [rule.active, active]
        rule.active = active
    if archived is not None and archived != (rule.archived_at is not None):
        changes["archived"] = [not archived, archived]
        rule.archived_at = utcnow() if archived else None
    if changes:
        rule.updated_at = utcnow()
        write_audit(session, actor=user.username, user_id=user.id, entity=ENTITY,
                    entity_id=rule.id, action=ACTION_UPDATE, changes=changes)
    return rule


@dataclass(frozen=True)
class RuleView:
    id: int
    dictionary: str
    speaker: str
    team: str | None  # None: the whole company
    active: bool
    archived: bool


async def rules(session: AsyncSession, user: User) -> list[RuleView]:
    """The rules ``user`` sees, those in force first."""
    stmt = (select(SpeechAlertRule, PhraseDictionary.name, Team.name)
            .join(PhraseDictionary, PhraseDictionary.id == SpeechAlertRule.dictionary_id)
            .outerjoin(Team, Team.id == SpeechAlertRule.team_id)
            .where(rules_filter(user))
            .order_by(SpeechAlertRule.archived_at.is_not(None), PhraseDictionary.name,
                      SpeechAlertRule.id))
    return [RuleView(r.id, name, r.speaker, team, r.active, r.archived_at is not None)
            for r, name, team in await session.execute(stmt)]


# -- matching ----------------------------------------------------------------------------


def _said(dictionary: PhraseDictionary, lemmas: str) -> str:
    """Which of the dictionary's phrases the matched phrase holds (for the alert's text)."""
    held = set(lemmas.split())
    for phrase, terms in zip(dictionary.phrases, groups_of(dictionary), strict=True):
        if all(forms & held for forms in terms):
            return phrase
    return dictionary.phrases[0] if dictionary.phrases else dictionary.name


async def _in_team(session: AsyncSession, call: Call, team_id: int) -> bool:
    """Did a manager of the team take part in the call?"""
    if not call.managers:
        return False
    return bool(await session.scalar(select(exists().where(
        User.team_id == team_id, User.extension.in_(list(call.managers))))))


async def record_alerts(session: AsyncSession, call_id: int) -> list[int]:
    """Match the rules in force against the call's indexed phrases; record each new hit
    (not committed) and return the new alerts' ids. A rule that already alerted on this
    call is skipped, so a transcript saved again records nothing."""
    call = await session.get(Call, call_id)
    if call is None:
        return []
    stmt = (select(SpeechAlertRule, PhraseDictionary)
            .join(PhraseDictionary, PhraseDictionary.id == SpeechAlertRule.dictionary_id)
            .where(SpeechAlertRule.active.is_(True), SpeechAlertRule.archived_at.is_(None),
                   PhraseDictionary.archived_at.is_(None),
                   ~exists().where(SpeechAlert.rule_id == SpeechAlertRule.id,
                                   SpeechAlert.call_id == call_id))
            .order_by(SpeechAlertRule.id))
    found: list[int] = []
    for rule, dictionary in (await session.execute(stmt)).all():
        if rule.team_id is not None and not await _in_team(session, call, rule.team_id):
            continue
        query = (select(TranscriptPhrase)
                 .where(TranscriptPhrase.call_id == call_id,
                        index.matches(session, groups_of(dictionary)))
                 .order_by(TranscriptPhrase.start).limit(1))
        if rule.speaker != ANY:
            query = query.where(TranscriptPhrase.speaker == rule.speaker)
        phrase = await session.scalar(query)
        if phrase is None:
            continue
        values = {"rule_id": rule.id, "call_id": call_id, "speaker": phrase.speaker,
                  "start": phrase.start, "text": phrase.text,
                  "said": _said(dictionary, phrase.lemmas)[:100], "created_at": utcnow()}
        insert = (pg_insert if session.get_bind().dialect.name == "postgresql"
                  else sqlite_insert)(SpeechAlert).values(**values)
        new_id = await session.scalar(insert.on_conflict_do_nothing(
            index_elements=["rule_id", "call_id"]).returning(SpeechAlert.id))
        if new_id is not None:
            found.append(new_id)
    return found


# -- delivery ----------------------------------------------------------------------------


@dataclass
class AlertNotice:
    """One alert to tell: what was said, in which call, and to whom."""

    alert_id: int
    call_id: int
    speaker: str
    said: str
    text: str
    start: float
    dictionary: str
    client_name: str | None
    manager_name: str | None
    started_at: datetime
    recipients: list[User] = field(default_factory=list)
    emails: dict[int, str] = field(default_factory=dict)


async def _people(session: AsyncSession, rule: SpeechAlertRule) -> list[User]:
    """The rule's supervisors: its team's (an admin's company rule: the admins), and
    whoever made it while he still oversees calls."""
    where: ColumnElement[bool] = (
        (User.team_id == rule.team_id) & (User.role == Role.SUPERVISOR.value)
        if rule.team_id is not None else User.role == Role.ADMIN.value)
    people = list(await session.scalars(select(User).where(User.active.is_(True), where)
                                        .order_by(User.id)))
    if rule.created_by is not None and rule.created_by not in {p.id for p in people}:
        author = await session.get(User, rule.created_by)
        if author is not None and author.active and may_manage(author):
            people.append(author)
    return people


async def take_undelivered(session: AsyncSession, *, call_id: int | None = None,
                           since: datetime | None = None) -> list[AlertNotice]:
    """Alerts not yet delivered (of one call, or recorded since ``since``): mark them
    delivered (not committed) and return them with their recipients, only those who may
    see the call. Rows are locked on PostgreSQL, so two processes never tell one twice."""
    stmt = (select(SpeechAlert, SpeechAlertRule, PhraseDictionary.name)
            .join(SpeechAlertRule, SpeechAlertRule.id == SpeechAlert.rule_id)
            .join(PhraseDictionary, PhraseDictionary.id == SpeechAlertRule.dictionary_id)
            .where(SpeechAlert.delivered_at.is_(None))
            .order_by(SpeechAlert.id)
            .with_for_update(of=SpeechAlert, skip_locked=True))
    if call_id is not None:
        stmt = stmt.where(SpeechAlert.call_id == call_id)
    if since is not None:
        stmt = stmt.where(SpeechAlert.created_at >= since)
    notices = []
    now = utcnow()
    for alert, rule, dictionary in (await session.execute(stmt)).all():
        alert.delivered_at = now
        call = await session.get(Call, alert.call_id)
        if call is None:
            continue
        recipients = [u for u in await _people(session, rule)
                      if await access.can_see_call(session, u, call.id)]
        client = await session.get(Client, call.client_id) if call.client_id else None
        manager = await session.scalar(select(User.name).where(
            User.extension == call.managers[0])) if call.managers else None
        notices.append(AlertNotice(
            alert_id=alert.id, call_id=call.id, speaker=alert.speaker, said=alert.said,
            text=alert.text, start=alert.start, dictionary=dictionary,
            client_name=client.name if client else None,
            manager_name=manager or (call.managers[0] if call.managers else None),
            started_at=call.started_at, recipients=recipients,
            emails=await addresses(session, recipients)))
    await session.flush()
    return notices


# -- the list ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRow:
    id: int
    rule_id: int
    dictionary: str
    call_id: int
    speaker: str
    said: str
    text: str
    start: float
    created_at: datetime
    started_at: datetime
    client_name: str | None
    manager: str | None  # extension of the call's first manager
    seen: bool


async def listing(session: AsyncSession, user: User, *, rule_id: int | None = None,
                  since: datetime | None = None, until: datetime | None = None
                  ) -> list[AlertRow]:
    """The alerts of the rules ``user`` sees, in calls he may see, newest first."""
    _manager(user)
    seen = exists().where(SpeechAlertSeen.alert_id == SpeechAlert.id,
                          SpeechAlertSeen.user_id == user.id)
    stmt = (select(SpeechAlert, PhraseDictionary.name, Call.started_at, Call.managers,
                   Client.name, seen)
            .join(SpeechAlertRule, SpeechAlertRule.id == SpeechAlert.rule_id)
            .join(PhraseDictionary, PhraseDictionary.id == SpeechAlertRule.dictionary_id)
            .join(Call, Call.id == SpeechAlert.call_id)
            .outerjoin(Client, Client.id == Call.client_id)
            .where(rules_filter(user), await access.calls_filter(session, user))
            .order_by(SpeechAlert.created_at.desc(), SpeechAlert.id.desc()).limit(MAX_LIST))
    if rule_id is not None:
        stmt = stmt.where(SpeechAlert.rule_id == rule_id)
    if since is not None:
        stmt = stmt.where(SpeechAlert.created_at >= since)
    if until is not None:
        stmt = stmt.where(SpeechAlert.created_at < until)
    return [AlertRow(a.id, a.rule_id, name, a.call_id, a.speaker, a.said, a.text, a.start,
                     a.created_at, started, client, managers[0] if managers else None,
                     bool(was_seen))
            for a, name, started, managers, client, was_seen in await session.execute(stmt)]


async def mark_seen(session: AsyncSession, user: User, alert_id: int) -> None:
    """«Просмотрено»: for this user only (not committed); an alert he cannot list is 404."""
    _manager(user)
    alert = await session.get(SpeechAlert, alert_id)
    rule = await session.get(SpeechAlertRule, alert.rule_id) if alert else None
    if (alert is None or rule is None or not _may_touch(user, rule)
            or not await access.can_see_call(session, user, alert.call_id)):
        raise NotFoundError("speech.alerts.not_found", "no such alert")
    already = await session.scalar(select(SpeechAlertSeen.id).where(
        SpeechAlertSeen.alert_id == alert_id, SpeechAlertSeen.user_id == user.id))
    if already is None:
        session.add(SpeechAlertSeen(alert_id=alert_id, user_id=user.id, seen_at=utcnow()))
        await session.flush()
