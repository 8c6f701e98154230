"""Sticky routing: the switches, the PBX token, and the decision for one inbound call.

The dialplan asks while the caller waits, so the answer must come in milliseconds: the
rules, the people, who is away and the token's hash are read into a :class:`Snapshot`
(refreshed by the application every few seconds and after each change), and a call
costs one indexed query (:func:`owner_of_number`, always fresh: a client given to
another manager today rings the new one) plus :meth:`Snapshot.decide`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import selectinload

from crm_core.audit import ACTION_UPDATE, write_audit
from crm_core.clients.models import Client, Phone
from crm_core.clients.phones import normalize_phone
from crm_core.clock import utcnow
from crm_core.errors import DomainError, NotAllowedError, NotFoundError
from crm_core.people.models import Role, Team, User
from crm_core.presence.services import current_states
from crm_core.routing.models import PbxToken, RoutingRule
from crm_core.talktime.metric import load_calendar
from crm_core.talktime.models import Absence

DEFAULT_RING_SECONDS = 15
MIN_RING, MAX_RING = 5, 120
TOKEN_BYTES = 24


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


# -- the switches ----------------------------------------------------------------------------


def _may_switch_team(actor: User | None, team_id: int) -> None:
    """None is the administrator's shell (``telecrm routing``)."""
    if actor is None or actor.role == Role.ADMIN:
        return
    if actor.role == Role.SUPERVISOR and actor.team_id == team_id:
        return
    raise NotAllowedError("routing.own_team_only",
                          "a head of sales switches his own team, an admin any")


def _may_switch_did(actor: User | None) -> None:
    if actor is None or actor.role in (Role.ADMIN, Role.SUPERVISOR):
        return
    raise NotAllowedError("routing.for_bosses", "the head of sales or an admin decides")


def _actor(actor: User | None) -> str:
    return actor.username if actor is not None else "cli"


async def set_team_rule(session: AsyncSession, actor: User | None, team_id: int, *,
                        enabled: bool | None = None, ring_seconds: int | None = None
                        ) -> RoutingRule:
    """Switch sticky routing for a team's clients, and how long the owner rings (audited)."""
    _may_switch_team(actor, team_id)
    if await session.get(Team, team_id) is None:
        raise NotFoundError("routing.team_not_found", "no such team")
    if ring_seconds is not None and not MIN_RING <= ring_seconds <= MAX_RING:
        raise DomainError("routing.ring_seconds", "ring time out of range",
                          low=MIN_RING, high=MAX_RING)
    rule = await session.scalar(select(RoutingRule).where(RoutingRule.team_id == team_id))
    if rule is None:
        rule = RoutingRule(team_id=team_id, enabled=False, ring_seconds=DEFAULT_RING_SECONDS,
                           updated_by=_actor(actor))
        session.add(rule)
    changes: dict[str, Any] = {}
    if enabled is not None and enabled != rule.enabled:
        changes["enabled"] = [rule.enabled, enabled]
        rule.enabled = enabled
    if ring_seconds is not None and ring_seconds != rule.ring_seconds:
        changes["ring_seconds"] = [rule.ring_seconds, ring_seconds]
        rule.ring_seconds = ring_seconds
    if changes:
        rule.updated_by, rule.updated_at = _actor(actor), utcnow()
        write_audit(session, actor=_actor(actor), user_id=actor.id if actor else None,
                    entity="routing_team", entity_id=team_id, action=ACTION_UPDATE,
                    changes=changes)
    await session.flush()
    return rule


def did_number(raw: str, region: str = "RU") -> str:
    """A DID as stored: E.164 (the carrier sends ``74951110001``, people write ``+7 495 ...``)."""
    digits = raw.strip()
    number = normalize_phone(digits if digits.startswith(("+", "8")) else "+" + digits, region) \
        if digits.isdigit() else normalize_phone(digits, region)
    if number is None:
        raise DomainError("routing.did_invalid", "not a phone number", number=raw)
    return number


class DidMode(StrEnum):
    """What a DID says about ringing the owner first, over his team's switch."""

    ON = "on"  # whatever the team says (a line whose callers should reach their manager)
    OFF = "off"  # always the queue (a support line)
    TEAM = "team"  # as the owner's team

    @classmethod
    def of(cls, enabled: bool | None) -> DidMode:
        """The mode a stored ``RoutingRule.enabled`` means (NULL: as the team)."""
        return cls.TEAM if enabled is None else cls.ON if enabled else cls.OFF

    @property
    def enabled(self) -> bool | None:
        return None if self is DidMode.TEAM else self is DidMode.ON


async def set_did_rule(session: AsyncSession, actor: User | None, did: str, *,
                       mode: DidMode) -> RoutingRule:
    """Switch sticky routing on or off for calls to one DID, or leave it to the team."""
    _may_switch_did(actor)
    number = did_number(did)
    rule = await session.scalar(select(RoutingRule).where(RoutingRule.did == number))
    before = None if rule is None else DidMode.of(rule.enabled)
    if rule is None:  # a number set once stays on the page, whatever it is set to later
        rule = RoutingRule(did=number, enabled=None, updated_by=_actor(actor))
        session.add(rule)
        await session.flush()
    if before != mode:
        write_audit(session, actor=_actor(actor), user_id=actor.id if actor else None,
                    entity="routing_did", entity_id=rule.id, action=ACTION_UPDATE,
                    changes={"did": [number, number],
                             "mode": [before and before.value, mode.value]})
        rule.enabled, rule.updated_by, rule.updated_at = mode.enabled, _actor(actor), utcnow()
    await session.flush()
    return rule


async def list_rules(session: AsyncSession) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every team (with its rule, off by default) and every DID set once (its mode)."""
    teams = list(await session.scalars(select(Team).order_by(Team.name)))
    rules = list(await session.scalars(select(RoutingRule)))
    by_team = {r.team_id: r for r in rules if r.team_id is not None}
    team_rows = [{"team_id": t.id, "team": t.name,
                  "enabled": bool(by_team[t.id].enabled) if t.id in by_team else False,
                  "ring_seconds": by_team[t.id].ring_seconds if t.id in by_team
                  else DEFAULT_RING_SECONDS} for t in teams]
    did_rows = [{"did": r.did, "mode": DidMode.of(r.enabled).value}
                for r in sorted((r for r in rules if r.did is not None),
                                key=lambda r: r.did or "")]
    return team_rows, did_rows


# -- the PBX token -----------------------------------------------------------------------


async def issue_token(session: AsyncSession, actor: str, token: str | None = None) -> str:
    """A new token for the dialplan (or the administrator's own); earlier ones stop working.

    Returned once: only its hash is stored.
    """
    if token is not None and (len(token) < 16 or not token.isascii()
                              or not all(c.isalnum() or c in "-_" for c in token)):
        raise DomainError("routing.token_weak",
                          "at least 16 characters: latin letters, digits, - and _")
    plain = token or secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    for old in await session.scalars(select(PbxToken).where(PbxToken.revoked_at.is_(None))):
        old.revoked_at = now
    row = PbxToken(token_hash=_hash(plain), created_by=actor, created_at=now)
    session.add(row)
    await session.flush()
    write_audit(session, actor=actor, entity="pbx_token", entity_id=row.id,
                action=ACTION_UPDATE, changes={"issued": [None, True]})
    return plain


# -- the decision --------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    extension: str
    team_id: int | None
    devices: tuple[str, ...]

    @property
    def dial(self) -> str:
        """His phones as one Dial() argument, his extension first; the dialplan rings the
        registered, free ones (none free, or one on a call: the queue)."""
        return "&".join(dict.fromkeys((f"PJSIP/{self.extension}", *self.devices)))


@dataclass
class Snapshot:
    """What the owner lookup needs, read at once (see the module docstring)."""

    token_hashes: tuple[str, ...] = ()
    teams: dict[int, tuple[bool, int]] = field(default_factory=dict)  # enabled, ring seconds
    dids: dict[str, bool] = field(default_factory=dict)  # on/off over the team (not "team")
    people: dict[int, Person] = field(default_factory=dict)
    away: dict[int, str] = field(default_factory=dict)  # user id: why (absence, presence)

    def token_ok(self, token: str) -> bool:
        """Compared in constant time against each valid hash."""
        given = _hash(token)
        found = False
        for known in self.token_hashes:
            found = hmac.compare_digest(given, known) or found
        return found and bool(token)

    def decide(self, owner_id: int | None, did: str | None, busy: Iterable[str] = ()
               ) -> tuple[str | None, str]:
        """``("<ring seconds>:<dial string>", "owner")``, or ``(None, why the queue)``.

        The DID's switch, when it has one, outranks the owner's team's; the ring time is
        always the team's (or the default).
        """
        by_did = self.dids.get(did) if did is not None else None
        if by_did is False:
            return None, "did_off"
        if owner_id is None:
            return None, "no_owner"
        person = self.people.get(owner_id)
        if person is None:
            return None, "owner_unavailable"
        enabled, ring = self.teams.get(person.team_id, (False, 0)) \
            if person.team_id is not None else (False, 0)
        if not enabled and by_did is not True:
            return None, "team_off"
        if owner_id in self.away:
            return None, self.away[owner_id]
        if person.extension in set(busy):
            return None, "in_call"
        return f"{ring or DEFAULT_RING_SECONDS}:{person.dial}", "owner"


async def load_snapshot(session: AsyncSession, today: date) -> Snapshot:
    """Rules, active people with phones, who is away today (absence, holiday, weekend) or
    paused, the valid tokens."""
    tokens = tuple(await session.scalars(
        select(PbxToken.token_hash).where(PbxToken.revoked_at.is_(None))))
    rules = list(await session.scalars(select(RoutingRule)))
    users = list(await session.scalars(
        select(User).options(selectinload(User.phones))
        .where(User.active.is_(True), User.extension.is_not(None))))
    people = {u.id: Person(u.extension or "", u.team_id, tuple(u.devices)) for u in users}
    away: dict[int, str] = {}
    for absence in await session.scalars(select(Absence).where(
            Absence.first_day <= today, Absence.last_day >= today,
            Absence.archived_at.is_(None))):
        away[absence.user_id] = "absent"
    # A company or team holiday, or a day off his team's rules give (a weekend), is
    # not his working day either: the caller goes to the queue, as talk time excuses it.
    calendar = await load_calendar(session, users, today, today)
    for user in users:
        why = calendar.excluded(user, today)
        if why in ("holiday", "weekend"):
            away.setdefault(user.id, why)
    for uid, state in (await current_states(session, list(people))).items():
        if not state.present:
            away.setdefault(uid, "paused")
    return Snapshot(
        token_hashes=tokens,
        teams={r.team_id: (bool(r.enabled), r.ring_seconds) for r in rules
               if r.team_id is not None},
        dids={r.did: r.enabled for r in rules if r.did is not None and r.enabled is not None},
        people=people, away=away)


# A module-level statement: compiled once and cached, the lookup's one query.
_OWNER_OF_NUMBER = (
    select(Client.owner_id).join(Phone, Phone.client_id == Client.id)
    .where(Phone.e164 == bindparam("number"), Client.archived_at.is_(None),
           Client.owner_id.is_not(None)).limit(3))


# The same question as plain SQL for a direct SQLite read (telecrm.routing.lookup).
OWNER_OF_NUMBER_SQL = (
    "SELECT clients.owner_id FROM clients JOIN phones ON phones.client_id = clients.id "
    "WHERE phones.e164 = ? AND clients.archived_at IS NULL AND clients.owner_id IS NOT NULL "
    "LIMIT 3")


def one_owner(owners: Iterable[int | None]) -> int | None:
    """The owner when all the clients with a number share one (a switchboard may not)."""
    found = {o for o in owners if o is not None}
    return found.pop() if len(found) == 1 else None


async def owner_of_number(db: AsyncSession | AsyncConnection, number: str) -> int | None:
    """The one owner of the live clients with this number (two owners: nobody's)."""
    return one_owner(await db.scalars(_OWNER_OF_NUMBER, {"number": number}))
