"""Users and teams: who works the phones, and which extension, device and mobile is whose."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients.phones import DEFAULT_REGION, normalize_phone
from crm_core.errors import ConflictError, DomainError
from crm_core.people.models import PhoneKind, Role, Team, User, UserPhone
from crm_core.timestamps import ensure_utc

_EXTENSION = re.compile(r"[0-9]{2,8}")
_USERNAME = re.compile(r"\S{1,100}")
# TECH/resource as Asterisk names an endpoint: no sequence suffix, no Local channels.
_DEVICE = re.compile(r"([A-Za-z][A-Za-z0-9]{0,19})/([A-Za-z0-9_.+@:\-]{1,99})")


def validate_extension(extension: str) -> str:
    """The stripped extension; a DomainError unless it is 2–8 digits."""
    value = extension.strip()
    if not _EXTENSION.fullmatch(value):
        raise DomainError("people.extension_invalid",
                          f"Extension must be 2 to 8 digits, got {extension!r}.",
                          extension=extension)
    return value


def validate_device(device: str) -> str:
    """``TECH/resource`` with the technology upper-cased (``PJSIP/ivanov``); else a DomainError."""
    value = device.strip()
    match = _DEVICE.fullmatch(value)
    if match is None or match.group(1).lower() == "local":
        raise DomainError("people.device_invalid",
                          f"A device is an Asterisk endpoint like PJSIP/ivanov, got {device!r}.",
                          device=device)
    return f"{match.group(1).upper()}/{match.group(2)}"


def validate_mobile(mobile: str, region: str = DEFAULT_REGION) -> str:
    """The mobile number in E.164; a DomainError for anything that is not a phone number."""
    value = normalize_phone(mobile, region)
    if value is None:
        raise DomainError("people.mobile_invalid", f"{mobile!r} is not a phone number.",
                          mobile=mobile)
    return value


def dialled_forms(e164: str) -> set[str]:
    """The digit strings a PBX may dial for ``e164``: international, national, with prefix.

    ``+79160000001`` is dialled as ``79160000001``, ``89160000001`` or ``9160000001``
    depending on the trunk; each form is looked up as is (the tracker knows no numbering plan).
    """
    digits = e164.lstrip("+")
    forms = {digits}
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return forms
    forms.add(phonenumbers.national_significant_number(number))
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    forms.add("".join(ch for ch in national if ch.isdigit()))
    return {f for f in forms if len(f) >= 5}


def validate_role(role: str) -> str:
    if role not in {r.value for r in Role}:
        expected = ", ".join(r.value for r in Role)
        raise DomainError("people.role_unknown",
                          f"Unknown role {role!r}; expected one of: {expected}.", role=role)
    return role


async def ensure_extension_free(session: AsyncSession, extension: str,
                                user_id: int | None = None) -> None:
    """Refuse an extension that another user's phone has (even a switched-off user's)."""
    holder = await session.scalar(select(User).where(User.extension == extension))
    if holder is not None and holder.id != user_id:
        raise ConflictError("people.extension_taken",
                            f"Extension {extension} is already taken by user "
                            f"{holder.username!r}.", extension=extension, user=holder.name)


async def ensure_team(session: AsyncSession, name: str) -> Team:
    """The team called ``name``, created on first use."""
    name = name.strip()
    if not name:
        raise DomainError("people.team_name_empty", "Team name must not be empty.")
    team = await session.scalar(select(Team).where(Team.name == name))
    if team is None:
        team = Team(name=name)
        session.add(team)
        await session.flush()
    return team


async def add_user(
    session: AsyncSession,
    username: str,
    name: str | None = None,
    role: str = Role.MANAGER.value,
    extension: str | None = None,
    team: str | None = None,
    password_hash: str | None = None,
    *,
    created_at: datetime | None = None,
) -> User:
    """Create a user; every bad input is a DomainError (a sentence for the CLI and pages).

    ``password_hash`` is stored as given: hashing is the caller's job (Argon2 in the web app).
    ``created_at`` backdates the account for staff who worked before it was entered
    (talk time judges no day before it); by default it begins now.
    """
    username = username.strip()
    if not _USERNAME.fullmatch(username):
        raise DomainError("people.username_invalid",
                          "Username must be 1–100 characters without spaces.")
    validate_role(role)
    if extension is not None:
        extension = validate_extension(extension)
    if await session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ConflictError("people.username_taken", f"Username {username!r} is already taken.",
                            username=username)
    if extension is not None:
        await ensure_extension_free(session, extension)
    team_row = await ensure_team(session, team) if team else None
    user = User(
        username=username,
        name=(name or "").strip()[:200] or username,
        role=role,
        extension=extension,
        team_id=team_row.id if team_row else None,
        password_hash=password_hash,
    )
    if created_at is not None:
        user.created_at = ensure_utc(created_at)
    session.add(user)
    await session.flush()
    return user


async def find_user_by_extension(session: AsyncSession, extension: str) -> User | None:
    """The active user whose phone is ``extension``, if any."""
    return await session.scalar(
        select(User).where(User.extension == extension.strip(), User.active.is_(True))
    )


async def users_by_extension(session: AsyncSession, extensions: Iterable[str]) -> dict[str, User]:
    """Active users keyed by extension, for the extensions given (one query)."""
    wanted = {e for e in extensions if e}
    if not wanted:
        return {}
    rows = await session.scalars(_by_extensions(), {"extensions": sorted(wanted)})
    return {user.extension: user for user in rows if user.extension is not None}


@functools.cache
def _by_extensions() -> Select[User]:
    """Built once: the call writer asks on every write, and building the statement (the
    IN list's values each coerced) cost more than running it."""
    return select(User).where(User.extension.in_(bindparam("extensions", expanding=True)),
                              User.active.is_(True))


async def names_by_extension(session: AsyncSession, extensions: Iterable[str] | None
                             ) -> dict[str, str]:
    """Names by extension (former staff too), so pages say «Иван Петров» rather than «101».

    Only for ``extensions`` (those a page shows: a floor has hundreds of people, and a page
    of calls names a few); ``None`` names everyone, for an export that streams every call.
    """
    stmt = select(User.extension, User.name).where(User.extension.is_not(None))
    if extensions is not None:
        wanted = sorted({e for e in extensions if e})
        if not wanted:
            return {}
        stmt = stmt.where(User.extension.in_(wanted))
    return {ext: name for ext, name in await session.execute(stmt) if ext}


def call_extensions(calls: Iterable[dict[str, Any]]) -> set[str]:
    """The extensions a list of calls (as ``call_to_dict`` gives them) names: who talked
    and every attempt."""
    return {ext for call in calls for ext in (
        *call.get("managers", ()), *(a.get("extension") for a in call.get("attempts") or ()))
        if ext}


_QUEUE = re.compile(r"[A-Za-z0-9_.\-]{1,80}")


async def set_team_queue(session: AsyncSession, team: str, queue: str | None) -> Team:
    """Make ``team`` (created on first use) the one that answers Asterisk queue ``queue``.

    A queue belongs to one team, so missed calls from it have one place to go; giving a
    queue that another team holds is a ConflictError. ``None`` unmaps the team's queue.
    """
    if queue is not None:
        queue = queue.strip()
        if not _QUEUE.fullmatch(queue):
            raise DomainError(
                "people.queue_invalid",
                f"Queue name must be 1–80 letters, digits, '.', '_' or '-', got {queue!r}.",
                queue=queue,
            )
        holder = await session.scalar(select(Team).where(Team.queue == queue))
        if holder is not None and holder.name != team.strip():
            raise ConflictError("people.queue_taken",
                                f"Queue {queue!r} already belongs to team {holder.name!r}.",
                                queue=queue, team=holder.name)
    row = await ensure_team(session, team)
    row.queue = queue
    await session.flush()
    return row


async def team_for_queue(session: AsyncSession, queue: str) -> Team | None:
    """The team that answers Asterisk queue ``queue``, if one does."""
    return await session.scalar(select(Team).where(Team.queue == queue.strip()))


@dataclass(frozen=True)
class PartyDirectory:
    """What the call tracker needs from the users table to name each phone's owner.

    ``devices``: Asterisk endpoint (``SIP/150010001``) -> extension; ``mobiles``: every
    dialled form of a mobile (``89160000001``) -> extension; both for active users
    with an extension. ``supervisors``: their extensions.
    """

    supervisors: frozenset[str] = frozenset()
    devices: dict[str, str] = field(default_factory=dict)
    mobiles: dict[str, str] = field(default_factory=dict)


async def party_directory(session: AsyncSession) -> PartyDirectory:
    """The directory of phones from the users table (one query each)."""
    supervisors = await extensions_of_role(session, Role.SUPERVISOR.value)
    rows = await session.execute(
        select(UserPhone.kind, UserPhone.value, User.extension)
        .join(User, User.id == UserPhone.user_id)
        .where(User.active.is_(True), User.extension.is_not(None))
        .order_by(UserPhone.id))
    devices: dict[str, str] = {}
    mobiles: dict[str, str] = {}
    for kind, value, extension in rows:
        if extension is None:
            continue
        if kind == PhoneKind.DEVICE:
            devices[value] = extension
        else:
            for form in dialled_forms(value):
                mobiles.setdefault(form, extension)
    return PartyDirectory(supervisors, devices, mobiles)


async def first_device(session: AsyncSession, extension: str) -> str | None:
    """The device to ring for ``extension`` (click-to-call, listening in): the user's first,
    in the order the administrator gave them; None when he has none (``PJSIP/<extension>``)."""
    return await session.scalar(
        select(UserPhone.value).join(User, User.id == UserPhone.user_id)
        .where(User.extension == extension, User.active.is_(True),
               UserPhone.kind == PhoneKind.DEVICE)
        .order_by(UserPhone.id).limit(1))


async def extensions_of_role(session: AsyncSession, role: str) -> frozenset[str]:
    """Extensions of active users with ``role`` (e.g. supervisors, whose legs only listen)."""
    rows = await session.scalars(
        select(User.extension).where(User.role == role, User.extension.is_not(None),
                                     User.active.is_(True)))
    return frozenset(ext for ext in rows if ext)
