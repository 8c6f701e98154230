"""Client status by rule, never by hand: potential, new, regular, lost; ABC; abandonment.

``compute_status`` is a pure function of the facts (first and last payment, last
contact), the rules and the day. The services around it load the facts, write the
status with a ``ClientStatusChange`` row and an audit row, and are called on every
event that can change a status (a payment, an ended call with the client) and by
the nightly run, because time alone moves a client from *new* to *regular* or to
*lost*.

A *contact* is an answered customer call, or an e-mail or a meeting a manager logged on
the card (``crm_core.activities``): all count the same for every rule and report.

Day arithmetic (``today - d`` in whole days, dates in the workday timezone):
- *potential*: the client never paid;
- *lost*: he paid once, and his last payment or contact is ``lost_after_days`` or
  more days ago;
- *new*: fewer than ``new_period_days`` days since his first payment;
- *regular*: otherwise.
A client is *abandoned* when more than his planned contact frequency (days) has
passed since his last contact (or, never contacted, since he came to his manager).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BindParameter,
    CompoundSelect,
    Date,
    bindparam,
    cast,
    func,
    literal,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.activities.models import CONTACT_KINDS, ClientActivity
from crm_core.audit import ACTION_UPDATE, write_audit
from crm_core.calls.models import Call, Direction
from crm_core.clients.models import Client, ClientStatus
from crm_core.people.models import User
from crm_core.sales.models import ClientStatusChange, Payment
from crm_core.sales.settings import StatusRules, rules_by_team, rules_for_team
from crm_core.timestamps import UTCDateTime, utcnow

DEFAULT_TIMEZONE = "Europe/Moscow"
AUDIT_ENTITY = "client"


@dataclass(frozen=True)
class ClientFacts:
    """What the status depends on, as local dates."""

    first_paid_on: date | None = None
    last_paid_on: date | None = None
    last_contact_on: date | None = None


def compute_status(facts: ClientFacts, rules: StatusRules, today: date) -> ClientStatus:
    """The status the rules give for ``facts`` on ``today`` (see the module doc)."""
    if facts.first_paid_on is None:
        return ClientStatus.POTENTIAL
    last = max(d for d in (facts.last_paid_on or facts.first_paid_on, facts.last_contact_on) if d)
    if (today - last).days >= rules.lost_after_days:
        return ClientStatus.LOST
    if (today - facts.first_paid_on).days < rules.new_period_days:
        return ClientStatus.NEW
    return ClientStatus.REGULAR


def abc_group(potential: Decimal | None, rules: StatusRules) -> str | None:
    """A, B or C from the annual potential; None while the potential is not set."""
    if potential is None:
        return None
    if potential >= rules.abc_a_min:
        return "A"
    if potential >= rules.abc_b_min:
        return "B"
    return "C"


def planned_contact_days(client: Client, rules: StatusRules) -> int:
    """The client's own frequency if the supervisor set one, else his ABC group's."""
    return client.contact_every_days or rules.contact_days(client.abc_group)


def is_abandoned(last_contact_on: date | None, since_on: date, every_days: int,
                 today: date) -> bool:
    """True when more than ``every_days`` days passed since the last contact (or ``since_on``)."""
    reference = max(last_contact_on, since_on) if last_contact_on else since_on
    return (today - reference).days > every_days


def local_date(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def today_in(tz_name: str = DEFAULT_TIMEZONE) -> date:
    return utcnow().astimezone(ZoneInfo(tz_name)).date()


def contact_calls() -> list[Any]:
    """WHERE clauses of a call that is a *contact*: an answered customer call (not internal)."""
    return [Call.client_id.is_not(None), Call.answered_at.is_not(None),
            Call.direction != Direction.INTERNAL.value]


def contact_activities() -> list[Any]:
    """WHERE clauses of a logged activity that is a *contact*: an e-mail or a meeting."""
    return [ClientActivity.kind.in_(CONTACT_KINDS), ClientActivity.archived_at.is_(None)]


def _as_utc(value: Any) -> datetime | None:
    """An aggregate's timestamp: SQLite's max() comes back as text, PostgreSQL's aware."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=ZoneInfo("UTC"))
    return value


def _latest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return max(known) if known else None


async def last_contact(session: AsyncSession, client_id: int) -> datetime | None:
    """When the client was last contacted: his last answered call or logged e-mail/meeting."""
    call = await session.scalar(
        select(func.max(Call.started_at)).where(Call.client_id == client_id, *contact_calls()))
    logged = await session.scalar(
        select(func.max(ClientActivity.happened_at))
        .where(ClientActivity.client_id == client_id, *contact_activities()))
    return _latest(_as_utc(call), _as_utc(logged))


# -- loading facts ----------------------------------------------------------------------------


async def client_facts(session: AsyncSession, client_id: int, tz: ZoneInfo) -> ClientFacts:
    first, last = (await session.execute(
        select(func.min(Payment.paid_on), func.max(Payment.paid_on))
        .where(Payment.client_id == client_id, Payment.archived_at.is_(None)))).one()
    contact = await last_contact(session, client_id)
    return ClientFacts(first, last, local_date(contact, tz) if contact else None)


async def _facts_of_all(session: AsyncSession, tz: ZoneInfo) -> dict[int, ClientFacts]:
    paid = {cid: (first, last) for cid, first, last in await session.execute(
        select(Payment.client_id, func.min(Payment.paid_on), func.max(Payment.paid_on))
        .where(Payment.archived_at.is_(None)).group_by(Payment.client_id))}
    contacts: dict[int | None, datetime | None] = {
        cid: _as_utc(at) for cid, at in await session.execute(
            select(Call.client_id, func.max(Call.started_at)).where(*contact_calls())
            .group_by(Call.client_id))}
    for client_id, at in await session.execute(
            select(ClientActivity.client_id, func.max(ClientActivity.happened_at))
            .where(*contact_activities()).group_by(ClientActivity.client_id)):
        contacts[client_id] = _latest(contacts.get(client_id), _as_utc(at))
    facts = {}
    for cid in paid.keys() | contacts.keys():
        if cid is None:
            continue
        first, last = paid.get(cid) or (None, None)
        contact = contacts.get(cid)
        facts[cid] = ClientFacts(first, last, local_date(contact, tz) if contact else None)
    return facts


# -- writing statuses -------------------------------------------------------------------------


def _change_status(session: AsyncSession, client: Client, new: ClientStatus, today: date, *,
                   actor: str, cause: str | None, user_id: int | None
                   ) -> tuple[ClientStatusChange, dict[str, Any]]:
    """The transition row (added) and the arguments of its audit row (the caller writes it)."""
    now = utcnow()
    change = ClientStatusChange(client_id=client.id, old_status=client.status,
                                new_status=new.value, at=now, as_of=today, actor=actor,
                                cause=cause[:300] if cause else None)
    session.add(change)
    audit = {"actor": actor, "user_id": user_id, "entity": AUDIT_ENTITY,
             "entity_id": client.id, "action": ACTION_UPDATE,
             "changes": {"status": [client.status, new.value], "as_of": today.isoformat(),
                         "cause": cause}}
    client.status = new.value
    client.status_since = now
    return change, audit


def _record_change(session: AsyncSession, client: Client, new: ClientStatus, today: date, *,
                   actor: str, cause: str | None, user_id: int | None) -> ClientStatusChange:
    change, audit = _change_status(session, client, new, today, actor=actor, cause=cause,
                                   user_id=user_id)
    write_audit(session, **audit)
    return change


async def recompute_client(session: AsyncSession, client: Client, *, today: date | None = None,
                           actor: str, cause: str | None = None, user_id: int | None = None,
                           tz_name: str = DEFAULT_TIMEZONE) -> ClientStatusChange | None:
    """Apply the rules to one client; returns the transition, or None when nothing changed.

    Archived clients keep the status they were archived with.
    """
    if client.archived_at is not None:
        return None
    tz = ZoneInfo(tz_name)
    today = today or today_in(tz_name)
    team_id = (await session.scalar(select(User.team_id).where(User.id == client.owner_id))
               if client.owner_id is not None else None)
    rules = await rules_for_team(session, team_id)
    new = compute_status(await client_facts(session, client.id, tz), rules, today)
    group = abc_group(client.annual_potential, rules)
    if group != client.abc_group:
        client.abc_group = group
    if new == client.status:
        await session.flush()
        return None
    change = _record_change(session, client, new, today, actor=actor, cause=cause,
                            user_id=user_id)
    await session.flush()
    return change


async def recompute_client_id(session: AsyncSession, client_id: int, **kwargs: object
                              ) -> ClientStatusChange | None:
    client = await session.get(Client, client_id)
    if client is None:
        return None
    return await recompute_client(session, client, **kwargs)  # type: ignore[arg-type]


async def recompute_all(session: AsyncSession, *, today: date | None = None,
                        actor: str = "nightly", tz_name: str = DEFAULT_TIMEZONE,
                        batch: int = 2000) -> dict[str, int]:
    """Re-judge every active client (status and ABC group) in a few set-based queries.

    Returns counts: ``clients`` judged, ``changed`` statuses, ``abc_changed`` groups.
    Idempotent: a second run on the same day changes nothing.
    """
    tz = ZoneInfo(tz_name)
    today = today or today_in(tz_name)
    company, teams = await rules_by_team(session)
    facts = await _facts_of_all(session, tz)
    rows = await session.execute(
        select(Client.id, Client.status, Client.abc_group, Client.annual_potential, User.team_id)
        .outerjoin(User, User.id == Client.owner_id).where(Client.archived_at.is_(None)))
    empty = ClientFacts()
    moves: list[tuple[int, ClientStatus]] = []
    regroup: dict[str | None, list[int]] = {}
    judged = 0
    for cid, status, group, potential, team_id in rows:
        judged += 1
        rules = teams.get(team_id, company) if team_id is not None else company
        new = compute_status(facts.get(cid, empty), rules, today)
        if new != status:
            moves.append((cid, new))
        wanted = abc_group(potential, rules)
        if wanted != group:
            regroup.setdefault(wanted, []).append(cid)
    for group, ids in regroup.items():
        for chunk in _chunks(ids, batch):
            await session.execute(update(Client).where(Client.id.in_(chunk))
                                  .values(abc_group=group))
    for chunk in _chunks(moves, batch):
        clients = {c.id: c for c in await session.scalars(
            select(Client).where(Client.id.in_([cid for cid, _ in chunk])))}
        for cid, new in chunk:
            _record_change(session, clients[cid], new, today, actor=actor, cause=actor,
                           user_id=None)
        await session.flush()
    return {"clients": judged, "changed": len(moves),
            "abc_changed": sum(len(ids) for ids in regroup.values())}


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


async def on_call_ended(session: AsyncSession, call: Call) -> ClientStatusChange | None:
    """A call with the client was answered and ended: a contact, which may save a *lost* one."""
    if call.client_id is None or not _is_ended_contact(call):
        return None
    return await on_contact(session, call.client_id, call.started_at, actor="call",
                            cause=f"call {call.linkedid}")


@dataclass
class CallContacts:
    """What ``on_call_ended`` reads, loaded once for a batch of written calls.

    The facts (payments, last contacts) and the rules do not change while the batch's
    hooks run: the calls are flushed before them, and no hook writes a payment or an
    activity. So each ended call is judged in memory, in order, exactly as
    ``on_call_ended`` judges it one by one; :meth:`call_ended` returns the audit row's
    arguments instead of writing it, so the caller keeps the order of the audit trail.
    """

    clients: dict[int, Client]
    owner_teams: dict[int, int | None]
    company: StatusRules
    teams: dict[int, StatusRules]
    facts: dict[int, ClientFacts]
    tz_name: str = DEFAULT_TIMEZONE

    @classmethod
    async def load(cls, session: AsyncSession, calls: Iterable[Call],
                   tz_name: str = DEFAULT_TIMEZONE) -> CallContacts:
        """What the status rules need of the clients of ``calls`` that are contacts: the
        clients (reused when the writer has them loaded), their owners' teams, the rules,
        and the clients' facts (one ``UNION ALL``), each in a query per chunk of ids."""
        calls = list(calls)
        ids = sorted({call.client_id for call in calls
                      if call.client_id is not None and _is_ended_contact(call)})
        wanted = set(ids)
        clients: dict[int, Client] = {}
        owner_teams: dict[int, int | None] = {}
        facts: dict[int, ClientFacts] = {}
        company, teams = StatusRules(), dict[int, StatusRules]()
        if ids:
            tz = ZoneInfo(tz_name)
            for call in calls:  # the writer loaded or set each call's client: no query
                loaded = call.__dict__.get("client")
                if loaded is not None and loaded.id in wanted:
                    clients[loaded.id] = loaded
            missing = [cid for cid in ids if cid not in clients]
            for part in _chunks(missing, _IN_CHUNK):
                clients.update((c.id, c) for c in await session.scalars(
                    select(Client).where(Client.id.in_(part))))
            live = sorted(c.id for c in clients.values() if c.archived_at is None)
            owners = sorted({c.owner_id for c in clients.values()
                             if c.archived_at is None and c.owner_id is not None})
            for part in _chunks(owners, _IN_CHUNK):
                for owner_id, team_id in await session.execute(
                        select(User.id, User.team_id).where(User.id.in_(part))):
                    owner_teams[owner_id] = team_id
            if live:
                company, teams = await rules_by_team(session)
            for part in _chunks(live, _IN_CHUNK):
                facts.update(await _facts_of(session, part, tz))
        return cls(clients, owner_teams, company, teams, facts, tz_name)

    def call_ended(self, session: AsyncSession, call: Call) -> dict[str, Any] | None:
        """``on_call_ended`` for a call of the loaded batch: the audit row to write, if any."""
        if call.client_id is None or not _is_ended_contact(call):
            return None
        client = self.clients.get(call.client_id)
        if client is None:
            return None
        if client.last_contact_at is None or client.last_contact_at < call.started_at:
            client.last_contact_at = call.started_at
        if client.archived_at is not None:
            return None
        team_id = self.owner_teams.get(client.owner_id) if client.owner_id is not None else None
        rules = self.teams.get(team_id, self.company) if team_id is not None else self.company
        today = today_in(self.tz_name)
        new = compute_status(self.facts.get(client.id, ClientFacts()), rules, today)
        group = abc_group(client.annual_potential, rules)
        if group != client.abc_group:
            client.abc_group = group
        if new == client.status:
            return None
        _change, audit = _change_status(session, client, new, today, actor="call",
                                        cause=f"call {call.linkedid}", user_id=None)
        return audit


_IN_CHUNK = 500  # bound on bound parameters per IN (...) query


async def _facts_of(session: AsyncSession, ids: list[int], tz: ZoneInfo) -> dict[int, ClientFacts]:
    """``client_facts`` for the clients ``ids`` in one statement: each client's first and
    last payment, last contact call and last logged contact, one grouped branch each of
    a UNION ALL (an ended call's write waits for it, so one round trip, not three)."""
    payments: dict[int, tuple[date | None, date | None]] = {}
    contacts: dict[int, datetime | None] = {}
    rows: Iterable[Any] = await session.execute(_facts_query(), {"ids": ids})
    for cid, kind, first, last, at in rows:
        if kind == "p":
            payments[cid] = (first, last)
        else:
            contacts[cid] = _latest(contacts.get(cid), _as_utc(at))
    facts = {}
    for cid in ids:
        first, last = payments.get(cid) or (None, None)
        contact = contacts.get(cid)
        facts[cid] = ClientFacts(first, last, local_date(contact, tz) if contact else None)
    return facts


@functools.cache
def _facts_query() -> CompoundSelect[Any]:
    """Built once, the clients' ids bound at each run: the call writer runs it for every
    ended call, and building it cost more processor time than running it."""
    ids: BindParameter[list[int]] = bindparam("ids", expanding=True)
    no_day, no_moment = cast(null(), Date), cast(null(), UTCDateTime)
    paid = (select(Payment.client_id, literal("p"), func.min(Payment.paid_on),
                   func.max(Payment.paid_on), no_moment)
            .where(Payment.client_id.in_(ids), Payment.archived_at.is_(None))
            .group_by(Payment.client_id))
    called = (select(Call.client_id, literal("c"), no_day, no_day, func.max(Call.started_at))
              .where(Call.client_id.in_(ids), *contact_calls()).group_by(Call.client_id))
    logged = (select(ClientActivity.client_id, literal("a"), no_day, no_day,
                     func.max(ClientActivity.happened_at))
              .where(ClientActivity.client_id.in_(ids), *contact_activities())
              .group_by(ClientActivity.client_id))
    return union_all(paid, called, logged)


def _is_ended_contact(call: Call) -> bool:
    return not (call.client_id is None or call.answered_at is None
                or call.direction == Direction.INTERNAL or call.ended_at is None)


async def on_contact(session: AsyncSession, client_id: int, at: datetime, *, actor: str,
                     cause: str, user_id: int | None = None,
                     tz_name: str = DEFAULT_TIMEZONE) -> ClientStatusChange | None:
    """A contact with the client at ``at`` (a call, an e-mail, a meeting): keep his last
    contact and judge him again, since a contact may save a *lost* client."""
    client = await session.get(Client, client_id)
    if client is None:
        return None
    if client.last_contact_at is None or client.last_contact_at < at:
        client.last_contact_at = at  # a replay of an older contact changes nothing
    return await recompute_client(session, client, actor=actor, cause=cause, user_id=user_id,
                                  tz_name=tz_name)


async def contact_withdrawn(session: AsyncSession, client_id: int, *, actor: str, cause: str,
                            user_id: int | None = None, tz_name: str = DEFAULT_TIMEZONE
                            ) -> ClientStatusChange | None:
    """A logged contact was archived (put in by mistake): the last contact is looked up
    again from what remains, and the client judged again."""
    client = await session.get(Client, client_id)
    if client is None:
        return None
    client.last_contact_at = await last_contact(session, client_id)
    return await recompute_client(session, client, actor=actor, cause=cause, user_id=user_id,
                                  tz_name=tz_name)


async def status_history(session: AsyncSession, client_id: int) -> list[dict[str, object]]:
    """The client's transitions, oldest first, as JSON-safe rows."""
    rows = await session.scalars(select(ClientStatusChange)
                                 .where(ClientStatusChange.client_id == client_id)
                                 .order_by(ClientStatusChange.at, ClientStatusChange.id))
    return [{"at": r.at.isoformat(), "as_of": r.as_of.isoformat(), "from": r.old_status,
             "to": r.new_status, "actor": r.actor, "cause": r.cause} for r in rows]
