"""Who may see what: the one place every page and API handler asks.

- a **manager** sees the calls he took part in (any leg on his phone, rung or
  talked) and every call of the clients he owns; the clients he owns or has talked
  with; his tasks and the unassigned tasks of his team;
- a **supervisor** sees the same for everyone in his team (and the calls that went
  through his team's queue);
- a **marketer** sees customer calls (call-tracking data) but never recordings or
  transcripts, and no client cards or tasks;
- an **admin** sees everything.

The functions are pure queries: they never raise for "not allowed"; they return
None or an empty result, and the web layer answers 404 so that existence is not
revealed. Role-wide refusals (a marketer asking for recordings) are answered by
the ``may_*`` predicates, which the web layer turns into 403.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, or_, select, true, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from crm_core.calls.hooks import NO_HOOKS, CallHooks
from crm_core.calls.log import call_query, took_part
from crm_core.calls.models import Call, CallLeg, CallStatus, Direction
from crm_core.calls.services import call_to_dict
from crm_core.clients.models import Client, Contact
from crm_core.errors import NotAllowedError, NotFoundError
from crm_core.people.models import Role, Team, User
from crm_core.tasks.models import Task, TaskStatus
from crm_core.timestamps import ensure_utc

# -- role-wide permissions --------------------------------------------------------------------


def may_hear_recordings(user: User) -> bool:
    """Recordings and transcripts are for everyone but marketers."""
    return user.role != Role.MARKETER


def may_see_clients(user: User) -> bool:
    return user.role != Role.MARKETER


def may_see_tasks(user: User) -> bool:
    return user.role != Role.MARKETER


def may_see_talk_time(user: User) -> bool:
    return user.role != Role.MARKETER


def may_read_metrics(user: User) -> bool:
    """The system's metrics (load, backlogs, PBX links) are the admin's, besides the scraper."""
    return user.role == Role.ADMIN


def may_place_calls(user: User) -> bool:
    """Click-to-call needs a phone of one's own."""
    return bool(user.extension) and user.role in (Role.MANAGER, Role.SUPERVISOR, Role.ADMIN)


# -- the people behind a user's view -------------------------------------------------------


async def team_members(session: AsyncSession, user: User) -> list[User]:
    """Everyone whose work ``user`` oversees: the team for a supervisor, else himself."""
    if user.role == Role.SUPERVISOR and user.team_id is not None:
        stmt = select(User).where(User.team_id == user.team_id).order_by(User.extension, User.id)
        return list(await session.scalars(stmt))
    return [user]


async def visible_managers(session: AsyncSession, user: User) -> list[User]:
    """Managers whose talk time ``user`` may see, by extension."""
    stmt = select(User).where(User.role == Role.MANAGER, User.active.is_(True))
    if user.role == Role.ADMIN:
        pass
    elif user.role == Role.SUPERVISOR and user.team_id is not None:
        stmt = stmt.where(User.team_id == user.team_id)
    elif user.role == Role.MANAGER:
        stmt = stmt.where(User.id == user.id)
    else:
        return []
    return list(await session.scalars(stmt.order_by(User.extension, User.id)))


async def team_queue(session: AsyncSession, user: User) -> str | None:
    """The Asterisk queue of a supervisor's team, whose calls he sees."""
    if user.role != Role.SUPERVISOR or user.team_id is None:
        return None
    return await session.scalar(select(Team.queue).where(Team.id == user.team_id))


# -- calls ------------------------------------------------------------------------------------


async def _circle(session: AsyncSession, user: User
                  ) -> tuple[list[int], list[str], str | None]:
    """A manager's or supervisor's calls are those of these people, extensions and queue."""
    people, extensions, queue = [user.id], [user.extension] if user.extension else [], None
    if user.role == Role.SUPERVISOR and user.team_id is not None:
        # One round trip for the team's people and its queue. Lists, not subqueries: with
        # the ids written out PostgreSQL finds their legs through (user_id, started_at).
        rows = (await session.execute(
            select(User.id, User.extension, Team.queue).join(Team, Team.id == User.team_id)
            .where(User.team_id == user.team_id))).all()
        people = [person_id for person_id, _, _ in rows] or [user.id]
        extensions = [ext for _, ext, _ in rows if ext]
        queue = rows[0][2] if rows else None
    return people, extensions, queue


async def calls_filter(session: AsyncSession, user: User, *, since: datetime | None = None,
                       until: datetime | None = None) -> ColumnElement[bool]:
    """A WHERE clause on ``Call`` selecting the calls ``user`` may see.

    A caller that looks at calls of ``[since, until)`` only (the call log) says so (see
    :func:`crm_core.calls.log.took_part`).
    """
    if user.role == Role.ADMIN:
        return true()
    if user.role == Role.MARKETER:
        return Call.direction != Direction.INTERNAL.value
    if user.role not in (Role.MANAGER, Role.SUPERVISOR):
        return false()
    people, extensions, queue = await _circle(session, user)
    # SQLite tests each call with a lookup by primary key (a page of the log tests a few
    # hundred calls; ``client_id IN (every client of the team)`` built a list of thousands
    # each time); PostgreSQL may hash the team's clients instead, through their owner index.
    owned = exists().where(Client.id == Call.client_id,
                           Client.owner_id.in_(people)).correlate(Call)
    # The period helps PostgreSQL only (it may hash the people's legs of the period); SQLite
    # tests each call by its legs' call_id, and a period there tempts it onto a worse index.
    if session.get_bind().dialect.name != "postgresql":
        since = until = None
    clauses: list[ColumnElement[bool]] = [took_part(people, extensions, since, until), owned]
    if queue:
        clauses.append(Call.queue == queue)
    return or_(*clauses)


async def call_ids_seen_by(session: AsyncSession, user: User) -> Select[int] | None:
    """The ids of the calls a manager or supervisor sees, as one SELECT that finds them from
    his side (his people's legs, their clients' calls, his team's queue) through indexes;
    None for the roles that see all or most calls (or none).

    It returns every call :func:`calls_filter` lets him see (it may name a call twice);
    a caller still narrows by that clause, so this only says where to look first (transcript
    search walks these calls' phrases instead of every phrase).
    """
    if user.role not in (Role.MANAGER, Role.SUPERVISOR):
        return None
    people, extensions, queue = await _circle(session, user)
    parts: list[Select[int]] = [  # each part from one index alone (migration 0032)
        select(CallLeg.call_id).where(CallLeg.user_id.in_(people)),
        select(CallLeg.call_id).where(CallLeg.extension.in_(extensions or [""])),
        select(Call.id).join(Client, Client.id == Call.client_id)
        .where(Client.owner_id.in_(people)),
    ]
    if queue:
        parts.append(select(Call.id).where(Call.queue == queue))
    return select(union_all(*parts).subquery().c[0])


def redact_call(user: User, call: dict[str, Any]) -> dict[str, Any]:
    """The call as ``user`` may see it: no recordings for those who may not hear them."""
    if may_hear_recordings(user):
        return call
    return {**call, "recordings": [], "recording_legs": []}


def may_search_call_log(user: User) -> bool:
    """The call log page (filters, CSV) is for the sales floor; a marketer has call tracking."""
    return user.role in (Role.MANAGER, Role.SUPERVISOR, Role.ADMIN)


def may_filter_by_recordings(user: User) -> bool:
    """Whether a call has a recording or a script check is recordings data: not for marketers."""
    return may_hear_recordings(user)


async def pickable_people(session: AsyncSession, user: User) -> list[User]:
    """Whose calls ``user`` may pick in the call log's filter: his team (admin: everyone with
    a phone), former staff included, so old calls stay searchable. A manager picks nobody:
    he sees his own calls anyway."""
    stmt = select(User).where(User.extension.is_not(None))
    if user.role == Role.ADMIN:
        pass
    elif user.role == Role.SUPERVISOR and user.team_id is not None:
        stmt = stmt.where(User.team_id == user.team_id)
    else:
        return []
    return list(await session.scalars(stmt.order_by(User.active.desc(), User.name, User.id)))


def may_list_people(user: User) -> bool:
    """Who has which extension, device and mobile: an admin (everyone), a supervisor (his
    team, to read); managers and marketers manage no phones."""
    return user.role in (Role.ADMIN, Role.SUPERVISOR)


async def visible_people(session: AsyncSession, user: User,
                         user_id: int | None = None) -> list[User]:
    """The users ``user`` may read with their phones (only ``user_id``, if given), the
    active first, by name.

    Everyone for an admin; his own team for a supervisor (himself alone without one),
    switched-off members included; nobody for anyone else.
    """
    stmt = select(User).options(selectinload(User.team), selectinload(User.phones))
    if user_id is not None:
        stmt = stmt.where(User.id == user_id)
    if user.role == Role.ADMIN:
        pass
    elif user.role == Role.SUPERVISOR:
        stmt = stmt.where(User.team_id == user.team_id if user.team_id is not None
                          else User.id == user.id)
    else:
        return []
    return list(await session.scalars(stmt.order_by(User.active.desc(), User.name,
                                                    User.username)))


async def visible_teams(session: AsyncSession, user: User) -> list[Team]:
    """The teams whose people ``user`` may read: all for an admin, his own for a supervisor."""
    if user.role == Role.ADMIN:
        return list(await session.scalars(select(Team).order_by(Team.name)))
    if user.role == Role.SUPERVISOR and user.team_id is not None:
        return list(await session.scalars(select(Team).where(Team.id == user.team_id)))
    return []


async def pickable_teams(session: AsyncSession, user: User) -> list[Team]:
    """Teams ``user`` may pick in the call log's filter: every team for an admin only."""
    if user.role != Role.ADMIN:
        return []
    return list(await session.scalars(select(Team).order_by(Team.name)))


def _call_query() -> Any:
    return call_query()


async def visible_calls(
    session: AsyncSession,
    user: User,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    client_id: int | None = None,
    include_in_progress: bool = True,
    limit: int = 5000,
    hooks: CallHooks = NO_HOOKS,
) -> list[dict[str, Any]]:
    """The calls ``user`` may see in ``[since, until)``, newest first, in the public shape."""
    stmt = _call_query().where(await calls_filter(session, user))
    if since is not None:
        stmt = stmt.where(Call.started_at >= ensure_utc(since))
    if until is not None:
        stmt = stmt.where(Call.started_at < ensure_utc(until))
    if client_id is not None:
        stmt = stmt.where(Call.client_id == client_id)
    if not include_in_progress:
        stmt = stmt.where(Call.status != CallStatus.IN_PROGRESS.value)
    stmt = stmt.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit)
    calls = (await session.scalars(stmt)).unique()
    return [redact_call(user, call_to_dict(call, hooks)) for call in calls]


async def visible_call(session: AsyncSession, user: User, call_id: int) -> Call | None:
    """The call if it exists and ``user`` may see it (client and recordings loaded)."""
    stmt = _call_query().where(Call.id == call_id, await calls_filter(session, user))
    return await session.scalar(stmt)


async def openable_client(session: AsyncSession, user: User, client_id: int) -> Client:
    """:func:`visible_client`, or the refusal the user gets: his role opens no cards,
    or this client does not exist for him."""
    if not may_see_clients(user):
        raise NotAllowedError("clients.role_no_cards", "your role has no access to client cards")
    client = await visible_client(session, user, client_id)
    if client is None:
        raise NotFoundError("clients.not_found", "no such client")
    return client


async def can_see_call(session: AsyncSession, user: User, call_id: int) -> bool:
    return await visible_call(session, user, call_id) is not None


# -- clients ----------------------------------------------------------------------------------


async def clients_filter(session: AsyncSession, user: User) -> ColumnElement[bool]:
    """A WHERE clause on ``Client`` selecting the clients ``user`` may open."""
    if user.role == Role.ADMIN:
        return true()
    if not may_see_clients(user) or user.role not in (Role.MANAGER, Role.SUPERVISOR):
        return false()
    ids = [p.id for p in await team_members(session, user)]
    talked = Client.id.in_(
        select(Call.client_id).where(Call.client_id.is_not(None), await calls_filter(session, user))
    )
    return or_(Client.owner_id.in_(ids), talked)


def may_assign_to(by: User, assignee: User) -> bool:
    """The one rule for "may give a task to": a manager himself; a supervisor himself or
    an active manager of his own team; an admin any active manager or supervisor. Every
    path that chooses an assignee (API, page forms, the next task) asks this."""
    if not assignee.active:
        return False
    if by.role == Role.ADMIN:
        return assignee.role in (Role.MANAGER, Role.SUPERVISOR)
    if assignee.id == by.id:
        return by.role in (Role.MANAGER, Role.SUPERVISOR)
    return (by.role == Role.SUPERVISOR and assignee.role == Role.MANAGER
            and by.team_id is not None and assignee.team_id == by.team_id)


async def may_open_client(session: AsyncSession, user: User, client_id: int) -> bool:
    """Whether ``user`` may open the client's card: one query, nothing loaded."""
    return await session.scalar(select(Client.id).where(
        Client.id == client_id, await clients_filter(session, user))) is not None


async def who_may_open_client(session: AsyncSession, users: Sequence[User],
                              client_id: int) -> set[int]:
    """Ids of those of ``users`` for whom :func:`may_open_client` holds, for a list to pick
    from (the card's «Ответственный»): one query whatever the number of managers.

    The rule of :func:`clients_filter`, written for many at once: an admin opens any
    client; a manager his own and those with a call he took part in (a leg with his id, or
    his extension as :func:`crm_core.calls.log.took_part` matches it). Other roles are
    rare in such lists and asked one by one.
    """
    managers = {u.id: u for u in users if u.role == Role.MANAGER}
    allowed = {u.id for u in users if u.role == Role.ADMIN}
    for other in users:
        if other.id not in managers and other.id not in allowed \
                and await may_open_client(session, other, client_id):
            allowed.add(other.id)
    if not managers:
        return allowed
    exts = {u.extension or "" for u in managers.values()}
    rows = (await session.execute(
        select(Client.owner_id, CallLeg.user_id, CallLeg.extension).select_from(Client)
        .outerjoin(Call, Call.client_id == Client.id)
        .outerjoin(CallLeg, and_(CallLeg.call_id == Call.id,
                                 or_(CallLeg.user_id.in_(list(managers)),
                                     CallLeg.extension.in_(sorted(exts)))))
        .where(Client.id == client_id).distinct())).all()
    owners = {owner for owner, _, _ in rows}
    leg_users = {user_id for _, user_id, _ in rows}
    leg_exts = {ext for _, _, ext in rows}
    allowed |= {m.id for m in managers.values()
                if m.id in owners or m.id in leg_users or (m.extension or "") in leg_exts}
    return allowed


async def unopenable_clients(session: AsyncSession, user: User,
                             client_ids: Sequence[int]) -> list[int]:
    """Those of ``client_ids`` that ``user`` may not open (or that do not exist), in order:
    one set-based query, so a bulk request costs the same whatever ids it lists."""
    if not client_ids:
        return []
    seen = set(await session.scalars(select(Client.id).where(
        Client.id.in_(client_ids), await clients_filter(session, user))))
    return [i for i in client_ids if i not in seen]


async def visible_client(session: AsyncSession, user: User, client_id: int) -> Client | None:
    """The client with phones, contacts and owner loaded, if ``user`` may open it."""
    # Two statements: the client with his phones and e-mails (a few each, so their rows
    # multiply little), and his contacts with theirs (the card lists them). Each load is
    # a round trip, and the card is the floor's most viewed page.
    stmt = (
        select(Client)
        .where(Client.id == client_id, await clients_filter(session, user))
        .options(
            joinedload(Client.phones),
            joinedload(Client.emails),
            selectinload(Client.contacts).options(joinedload(Contact.phones),
                                                  joinedload(Contact.emails)),
            joinedload(Client.owner),
        )
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(stmt)).unique().one_or_none()


def may_edit_client(user: User, client: Client) -> bool:
    """Who may change a card he can open (``client.owner`` loaded).

    An admin any; a supervisor those of his team's managers and those nobody owns; a
    manager his own and those nobody owns (a lead nobody took). A manager who only
    talked with another manager's client reads the card but does not change it.
    """
    if user.role == Role.ADMIN:
        return True
    if client.owner_id is None:
        return user.role in (Role.MANAGER, Role.SUPERVISOR)
    if user.role == Role.MANAGER:
        return client.owner_id == user.id
    if user.role == Role.SUPERVISOR:
        owner = client.owner
        return owner is not None and user.team_id is not None and owner.team_id == user.team_id
    return False


def may_create_clients(user: User) -> bool:
    return user.role in (Role.MANAGER, Role.SUPERVISOR, Role.ADMIN)


def may_merge_clients(user: User) -> bool:
    """Merging duplicates is the head of sales' (his team's) or an admin's."""
    return user.role in (Role.SUPERVISOR, Role.ADMIN)


async def can_see_client(session: AsyncSession, user: User, client_id: int) -> bool:
    return await visible_client(session, user, client_id) is not None


# -- recordings -------------------------------------------------------------------------------


async def visible_recording(
    session: AsyncSession, user: User, call_id: int, index: int = 0
) -> str | None:
    """The relative path of recording ``index`` of a call ``user`` may see, or None.

    Callers check :func:`may_hear_recordings` first (a role-wide 403).
    """
    if index < 0:
        return None
    call = await visible_call(session, user, call_id)
    if call is None or index >= len(call.recordings):
        return None
    return call.recordings[index].path


# -- tasks ------------------------------------------------------------------------------------


async def tasks_filter(session: AsyncSession, user: User) -> ColumnElement[bool]:
    """A WHERE clause on ``Task``: his own, and the unassigned tasks of his team."""
    if user.role == Role.ADMIN:
        return true()
    if not may_see_tasks(user):
        return false()
    people = await team_members(session, user)  # whose work he sees: one query, or none
    ids = [p.id for p in people]
    team_ids = {p.team_id for p in people if p.team_id is not None}
    clauses: list[ColumnElement[bool]] = [Task.assignee_id.in_(ids)]
    if team_ids:
        clauses.append(and_(Task.assignee_id.is_(None), Task.team_id.in_(team_ids)))
    clauses.append(
        and_(
            Task.assignee_id.is_(None),
            Task.client_id.in_(select(Client.id).where(Client.owner_id.in_(ids))),
        )
    )
    return or_(*clauses)


async def visible_tasks(
    session: AsyncSession,
    user: User,
    *,
    due_from: datetime | None = None,
    due_before: datetime | None = None,
    client_id: int | None = None,
    statuses: Sequence[str] = (TaskStatus.OPEN.value,),
) -> list[Task]:
    """Tasks ``user`` may see (client loaded), most urgent first; no due date last."""
    stmt = (
        select(Task)
        .where(await tasks_filter(session, user), Task.status.in_(list(statuses)))
        .options(joinedload(Task.client), joinedload(Task.assignee), joinedload(Task.call))
    )
    if due_from is not None:
        stmt = stmt.where(Task.due_at >= ensure_utc(due_from))
    if due_before is not None:
        stmt = stmt.where(Task.due_at < ensure_utc(due_before))
    if client_id is not None:
        stmt = stmt.where(Task.client_id == client_id)
    stmt = stmt.order_by(Task.due_at.is_(None), Task.due_at, Task.id)
    return list((await session.scalars(stmt)).unique())
