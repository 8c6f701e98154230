"""People management: what an admin (or the server's command line) changes about users and teams.

Every change is audited in the transaction that makes it. Nobody is deleted: a user
who leaves is switched off. He can no longer sign in, his sessions end at once, and
his calls, clients and tasks stay as they are (his clients stay his until someone
reassigns them). Switching him on again keeps the record of the time he was away,
which talk time reads so that no day of it is judged.

``actor`` is the admin doing it, or None for the command line (run by whoever
administers the server). Passwords arrive hashed: hashing (Argon2) is the
application's job, and no hash ever goes into the audit log.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm_core.audit import ACTION_CREATE, ACTION_UPDATE, write_audit
from crm_core.clients.phones import format_phone
from crm_core.errors import ConflictError, DomainError, NotAllowedError, NotFoundError
from crm_core.people.models import PhoneKind, Role, Team, User, UserDeactivation, UserPhone
from crm_core.people.sessions import end_other_sessions, end_user_sessions
from crm_core.people.users import (
    add_user,
    ensure_extension_free,
    validate_device,
    validate_extension,
    validate_mobile,
    validate_role,
)
from crm_core.timestamps import utcnow

CLI_ACTOR = "cli"  # the audit log's name for the command line
ACTION_DEACTIVATE = "deactivate"
ACTION_REACTIVATE = "reactivate"
ACTION_PASSWORD = "password"


class Keep(enum.Enum):
    """A field of :class:`UserChange` left as it is (None would mean "clear it")."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class UserChange:
    """What to change about a user; ``None`` name/role and ``KEEP`` leave a field alone."""

    name: str | None = None
    role: str | None = None
    team_id: int | Literal[Keep.KEEP] | None = KEEP
    extension: str | Literal[Keep.KEEP] | None = KEEP
    devices: Sequence[str] | Literal[Keep.KEEP] = KEEP  # the whole new list
    mobiles: Sequence[str] | Literal[Keep.KEEP] = KEEP


# -- who may, and finding people --------------------------------------------------------------


def require_admin(actor: User | None) -> None:
    """People and teams are managed by admins only (and from the server's command line)."""
    if actor is not None and actor.role != Role.ADMIN:
        raise NotAllowedError("people.admin_only", "only an admin manages users and teams")


def _actor(actor: User | None) -> tuple[str, int | None]:
    return (actor.username, actor.id) if actor is not None else (CLI_ACTOR, None)


def _audit(session: AsyncSession, actor: User | None, entity: str, entity_id: int,
           action: str, changes: dict[str, Any]) -> None:
    name, actor_id = _actor(actor)
    write_audit(session, actor=name, user_id=actor_id, entity=entity, entity_id=entity_id,
                action=action, changes=changes)


async def find_user(session: AsyncSession, username: str) -> User:
    """The user with this login (switched off or not), team loaded."""
    user = await session.scalar(select(User).where(User.username == username.strip())
                                .options(selectinload(User.team), selectinload(User.phones)))
    if user is None:
        raise NotFoundError("people.user_not_found", f"no user {username!r}", username=username)
    return user


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await session.scalar(select(User).where(User.id == user_id)
                                .options(selectinload(User.team), selectinload(User.phones)))
    if user is None:
        raise NotFoundError("people.user_not_found", f"no user #{user_id}", username=user_id)
    return user


async def get_team(session: AsyncSession, team_id: int) -> Team:
    team = await session.get(Team, team_id)
    if team is None:
        raise NotFoundError("people.team_not_found", f"no team #{team_id}", team=team_id)
    return team


async def list_users(session: AsyncSession) -> list[User]:
    """Everyone, the active first, by name; teams and phones loaded."""
    stmt = (select(User).options(selectinload(User.team), selectinload(User.phones))
            .order_by(User.active.desc(), User.name, User.username))
    return list(await session.scalars(stmt))


async def list_teams(session: AsyncSession) -> list[Team]:
    return list(await session.scalars(select(Team).order_by(Team.name)))


async def team_heads(session: AsyncSession) -> dict[int, User]:
    """The head of each team that has one, by team id."""
    rows = await session.scalars(select(User).where(User.heads_team.is_(True),
                                                    User.team_id.is_not(None)))
    return {u.team_id: u for u in rows if u.team_id is not None}


async def _active_admins(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User).where(
        User.role == Role.ADMIN.value, User.active.is_(True))) or 0)


async def _keep_an_admin(session: AsyncSession, user: User) -> None:
    """Refuse a change that would leave nobody able to manage people."""
    if user.role == Role.ADMIN and user.active and await _active_admins(session) <= 1:
        raise ConflictError("people.last_admin", f"{user.username} is the last active admin",
                            user=user.name)


async def claim_headless_team(session: AsyncSession, user: User) -> None:
    """A supervisor joining a team that has no head becomes its head."""
    if user.role != Role.SUPERVISOR or not user.active or user.team_id is None:
        return
    taken = await session.scalar(select(User.id).where(
        User.team_id == user.team_id, User.heads_team.is_(True), User.id != user.id))
    if taken is None:
        user.heads_team = True
        await session.flush()


def _clean_name(name: str) -> str:
    value = " ".join(name.split())[:200]
    if not value:
        raise DomainError("people.name_empty", "the name must not be empty")
    return value


# -- users ------------------------------------------------------------------------------------


async def create_user(session: AsyncSession, actor: User | None, *, username: str, name: str,
                      role: str, team_id: int | None, extension: str | None,
                      password_hash: str | None, must_change_password: bool = False,
                      devices: Sequence[str] = (), mobiles: Sequence[str] = ()) -> User:
    """A new user in a team picked from the existing ones, with his devices and mobiles."""
    require_admin(actor)
    team = await get_team(session, team_id) if team_id is not None else None
    user = await add_user(session, username, name=_clean_name(name), role=role,
                          extension=extension or None, password_hash=password_hash)
    user.team_id = team.id if team is not None else None
    user.must_change_password = must_change_password and password_hash is not None
    await session.flush()
    await claim_headless_team(session, user)
    phones = await set_user_phones(session, user, devices, mobiles)
    _audit(session, actor, "user", user.id, ACTION_CREATE, {
        "username": user.username, "name": user.name, "role": user.role,
        "team": team.name if team is not None else None, "extension": user.extension,
        "heads_team": user.heads_team, "must_change_password": user.must_change_password,
        **{k: new for k, (_, new) in phones.items()}})
    return user


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


async def set_user_phones(session: AsyncSession, user: User,
                          devices: Sequence[str] | Keep = KEEP,
                          mobiles: Sequence[str] | Keep = KEEP) -> dict[str, list[Any]]:
    """Make ``user``'s devices and/or mobiles exactly these; ``{kind: [old, new]}`` changed.

    Values are validated (``PJSIP/ivanov``, a phone number) and refused when another
    user holds them (``people.device_taken`` / ``people.mobile_taken``), switched off
    or not: the tracker must name one owner per phone. Not audited here (the caller is).
    """
    await session.refresh(user, ["phones"])
    wanted: dict[PhoneKind, list[str]] = {}
    if not isinstance(devices, Keep):
        wanted[PhoneKind.DEVICE] = _unique([validate_device(d) for d in devices if d.strip()])
    if not isinstance(mobiles, Keep):
        wanted[PhoneKind.MOBILE] = _unique([validate_mobile(m) for m in mobiles if m.strip()])
    changes: dict[str, list[Any]] = {}
    for kind, values in wanted.items():
        current = [p.value for p in user.phones if p.kind == kind]
        if current == values:
            continue
        for value in values:
            if value in current:
                continue
            holder = await session.scalar(
                select(User).join(UserPhone, UserPhone.user_id == User.id)
                .where(UserPhone.value == value, User.id != user.id))
            if holder is None:
                continue
            taken = f"{value} already belongs to user {holder.username!r}"
            if kind == PhoneKind.DEVICE:
                raise ConflictError("people.device_taken", taken, value=value, user=holder.name)
            raise ConflictError("people.mobile_taken", taken, value=format_phone(value),
                                user=holder.name)
        for phone in [p for p in user.phones if p.kind == kind and p.value not in values]:
            user.phones.remove(phone)
        for value in values:
            if value not in current:
                user.phones.append(UserPhone(kind=kind.value, value=value))
        changes[f"{kind.value}s"] = [current, values]
    if changes:
        await session.flush()
    return changes


async def edit_user(session: AsyncSession, actor: User | None, user: User,
                    change: UserChange) -> dict[str, list[Any]]:
    """Change name, role, team, extension, devices or mobiles; ``{field: [old, new]}`` (audited).

    Devices and mobiles are written at once (a refused one stops the whole change: the
    caller's transaction rolls back).
    """
    require_admin(actor)
    changes: dict[str, list[Any]] = {}
    if change.name is not None and _clean_name(change.name) != user.name:
        changes["name"] = [user.name, _clean_name(change.name)]
    if change.role is not None and validate_role(change.role) != user.role:
        if user.role == Role.ADMIN:
            await _keep_an_admin(session, user)
        changes["role"] = [user.role, change.role]
    if change.extension is not KEEP:
        extension = validate_extension(change.extension) if change.extension else None
        if extension != user.extension:
            if extension is not None:
                await ensure_extension_free(session, extension, user.id)
            changes["extension"] = [user.extension, extension]
    if change.devices is not KEEP:
        changes |= await set_user_phones(session, user, devices=change.devices)
    if change.mobiles is not KEEP:
        changes |= await set_user_phones(session, user, mobiles=change.mobiles)
    team: Team | None = None
    if change.team_id is not KEEP:
        team = await get_team(session, change.team_id) if change.team_id is not None else None
        if (team.id if team else None) != user.team_id:
            old = await session.get(Team, user.team_id) if user.team_id is not None else None
            changes["team"] = [old.name if old else None, team.name if team else None]
    if not changes:
        return {}
    was_head = user.heads_team
    if was_head and ("role" in changes or "team" in changes):
        user.heads_team = False  # a head who leaves his team or his role heads nothing
        await session.flush()  # before another team's head may be set (unique index)
    if "name" in changes:
        user.name = changes["name"][1]
    if "role" in changes:
        user.role = changes["role"][1]
    if "extension" in changes:
        user.extension = changes["extension"][1]
    if "team" in changes:
        user.team_id = team.id if team is not None else None
    await session.flush()
    await claim_headless_team(session, user)
    if user.heads_team != was_head:
        changes["heads_team"] = [was_head, user.heads_team]
    _audit(session, actor, "user", user.id, ACTION_UPDATE, changes)
    return changes


async def deactivate_user(session: AsyncSession, actor: User | None, user: User) -> int:
    """Switch a user off: no sign-in, every session ended; returns how many were ended.

    His calls, clients and tasks are kept as they are. The caller also ends his live
    event streams (the web app's business, not the database's).
    """
    require_admin(actor)
    if actor is not None and actor.id == user.id:
        raise NotAllowedError("people.deactivate_self", "an admin cannot switch himself off")
    if not user.active:
        raise ConflictError("people.already_inactive", f"{user.username} is switched off "
                            "already", user=user.name)
    await _keep_an_admin(session, user)
    name, _ = _actor(actor)
    was_head = user.heads_team
    user.active = False
    user.heads_team = False
    session.add(UserDeactivation(user_id=user.id, deactivated_at=utcnow(), deactivated_by=name))
    ended = await end_user_sessions(session, user.id)
    changes: dict[str, Any] = {"active": [True, False], "sessions_ended": ended}
    if was_head:
        changes["heads_team"] = [True, False]
    _audit(session, actor, "user", user.id, ACTION_DEACTIVATE, changes)
    await session.flush()
    return ended


async def reactivate_user(session: AsyncSession, actor: User | None, user: User) -> None:
    """Switch a user on again; the time he was off stays on record."""
    require_admin(actor)
    if user.active:
        raise ConflictError("people.already_active", f"{user.username} is active already",
                            user=user.name)
    if user.extension is not None:  # the phone may have gone to someone else meanwhile
        await ensure_extension_free(session, user.extension, user.id)
    name, _ = _actor(actor)
    await session.execute(
        update(UserDeactivation)
        .where(UserDeactivation.user_id == user.id, UserDeactivation.reactivated_at.is_(None))
        .values(reactivated_at=utcnow(), reactivated_by=name))
    user.active = True
    await session.flush()
    await claim_headless_team(session, user)
    _audit(session, actor, "user", user.id, ACTION_REACTIVATE, {"active": [False, True]})


async def reset_password(session: AsyncSession, actor: User | None, user: User,
                         password_hash: str) -> int:
    """A temporary password he must change at his next sign-in; his sessions end.

    Returns how many sessions were ended (whoever knew the old password is out).
    """
    require_admin(actor)
    old = user.must_change_password
    user.password_hash = password_hash
    user.must_change_password = True
    ended = await end_user_sessions(session, user.id)
    _audit(session, actor, "user", user.id, ACTION_PASSWORD,
           {"must_change_password": [old, True], "sessions_ended": ended})
    await session.flush()
    return ended


async def change_own_password(session: AsyncSession, user: User, password_hash: str,
                              keep_session_id: int | None) -> int:
    """The user's own new password (checked by the caller); his other sessions end."""
    old = user.must_change_password
    user.password_hash = password_hash
    user.must_change_password = False
    ended = await end_other_sessions(session, user.id, keep_session_id)
    write_audit(session, actor=user.username, user_id=user.id, entity="user",
                entity_id=user.id, action=ACTION_PASSWORD,
                changes={"must_change_password": [old, False], "sessions_ended": ended})
    await session.flush()
    return ended


# -- teams ------------------------------------------------------------------------------------


def _team_name(name: str) -> str:
    value = " ".join(name.split())[:200]
    if not value:
        raise DomainError("people.team_name_empty", "Team name must not be empty.")
    return value


async def _team_name_free(session: AsyncSession, name: str, team_id: int | None) -> None:
    holder = await session.scalar(select(Team.id).where(Team.name == name))
    if holder is not None and holder != team_id:
        raise ConflictError("people.team_name_taken", f"team {name!r} exists already",
                            team=name)


async def create_team(session: AsyncSession, actor: User | None, name: str) -> Team:
    require_admin(actor)
    name = _team_name(name)
    await _team_name_free(session, name, None)
    team = Team(name=name)
    session.add(team)
    await session.flush()
    _audit(session, actor, "team", team.id, ACTION_CREATE, {"name": name})
    return team


async def rename_team(session: AsyncSession, actor: User | None, team: Team, name: str) -> bool:
    """Rename a team; False when the name is the same."""
    require_admin(actor)
    name = _team_name(name)
    if name == team.name:
        return False
    await _team_name_free(session, name, team.id)
    _audit(session, actor, "team", team.id, ACTION_UPDATE, {"name": [team.name, name]})
    team.name = name
    await session.flush()
    return True


async def set_team_head(session: AsyncSession, actor: User | None, team: Team,
                        head: User | None) -> bool:
    """Make ``head`` (an active supervisor) the head of ``team``, moving him into it.

    None leaves the team without a head. Returns False when nothing changed.
    """
    require_admin(actor)
    if head is not None and (head.role != Role.SUPERVISOR or not head.active):
        raise DomainError("people.head_not_supervisor", f"{head.username} is not an active "
                          "supervisor", user=head.name)
    current = await session.scalar(select(User).where(User.team_id == team.id,
                                                      User.heads_team.is_(True)))
    if current is not None and head is not None and current.id == head.id:
        return False
    if current is None and head is None:
        return False
    if current is not None:
        current.heads_team = False
    if head is not None and head.heads_team:  # he headed another team: it has none now
        head.heads_team = False
    await session.flush()  # the unique index allows one head per team at any moment
    if head is not None:
        if head.team_id != team.id:
            old = await session.get(Team, head.team_id) if head.team_id is not None else None
            _audit(session, actor, "user", head.id, ACTION_UPDATE,
                   {"team": [old.name if old else None, team.name]})
            head.team_id = team.id
        head.heads_team = True
        await session.flush()
    _audit(session, actor, "team", team.id, ACTION_UPDATE,
           {"head": [current.name if current else None, head.name if head else None]})
    return True


# -- for talk time ----------------------------------------------------------------------------


async def deactivation_periods(session: AsyncSession, user_ids: Sequence[int],
                               ) -> dict[int, list[tuple[datetime, datetime | None]]]:
    """When each user was switched off: ``(from, until)``, ``until`` None while still off."""
    out: dict[int, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    if not user_ids:
        return out
    rows = await session.execute(
        select(UserDeactivation.user_id, UserDeactivation.deactivated_at,
               UserDeactivation.reactivated_at)
        .where(UserDeactivation.user_id.in_(list(user_ids)))
        .order_by(UserDeactivation.deactivated_at))
    for user_id, start, end in rows:
        out[user_id].append((start, end))
    return out
