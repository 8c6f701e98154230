"""Calls: the idempotent writer fed by the AMI pipeline, and the JSON export.

The pipeline hands over snapshots (``CallData``) keyed by Asterisk's ``linkedid``;
the same snapshot twice changes nothing, a fuller one updates the row and its
legs (by ``uniqueid``). An unknown external number becomes a lead owned by the
manager who talked, so no caller is ever lost.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import PurePath, PurePosixPath
from typing import Any

from sqlalchemy import BindParameter, Select, and_, bindparam, inspect, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from crm_core.audit import ACTION_UPDATE, write_audit
from crm_core.calls.hooks import NO_HOOKS, CallHooks, WrittenCall
from crm_core.calls.log import call_query
from crm_core.calls.models import Call, CallLeg, CallStatus, Direction, LegRole, Recording
from crm_core.calls.snapshot import (
    DEFAULT_PBX,
    RECORDING_SIDES,
    CallData,
    LegData,
    RecordingRef,
    asterisk_id,
    side_from_path,
)
from crm_core.clients.models import Client, Phone
from crm_core.clients.phones import format_phone, normalize_phone
from crm_core.clients.services import AUDIT_ENTITY as CLIENT_ENTITY
from crm_core.clients.services import create_client, find_client_by_phone
from crm_core.people.models import User
from crm_core.people.users import users_by_extension
from crm_core.timestamps import ensure_utc, isoformat, utcnow

log = logging.getLogger(__name__)

AUDIT_ACTOR = "call"
LEAD_SOURCE = "call"
QUEUE_NAME_MAX = 80  # Call.queue / Team.queue column width
_LEAD_LOCK_NAMESPACE = 0x7E1E  # advisory-lock class for "lead for this number"


# -- validation ---------------------------------------------------------------------------


def _check_one_of(what: str, value: str, allowed: Iterable[str]) -> None:
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"Unknown {what} {value!r}; expected one of: {', '.join(allowed)}.")


def is_safe_recording_path(path: str) -> bool:
    """True for a path inside the recordings root (relative, no ``..``): safe to serve."""
    return (
        bool(path)
        and not path.startswith("/")
        and "\\" not in path
        and (".." not in PurePosixPath(path).parts)
    )


def relative_recording_path(path: str, root: PurePath | str | None) -> str:
    """``path`` relative to the recordings source ``root`` when it is an absolute path in it.

    Asterisk's own ``MIXMONITOR_FILENAME`` is absolute (FreePBX's dated folders too:
    ``/var/spool/asterisk/monitor/2026/12/05/in-....wav``). A path outside ``root``, or
    one with ``..`` in it, is returned unchanged, so the writer refuses and logs it.
    """
    if root is None or not path.startswith("/"):
        return path
    absolute = PurePosixPath(path)
    if ".." in absolute.parts:
        return path
    try:
        inside = absolute.relative_to(PurePosixPath(str(root)))
    except ValueError:
        return path
    return str(inside) if inside.parts else path


def with_relative_recordings(data: CallData, root: PurePath | str | None) -> CallData:
    """The snapshot with its absolute recording paths under ``root`` made relative to it."""
    if root is None or not any(path.startswith("/") for path in data.recordings):
        return data
    return replace(
        data,
        recordings=tuple(relative_recording_path(path, root) for path in data.recordings),
        recording_details=tuple(replace(ref, path=relative_recording_path(ref.path, root))
                                for ref in data.recording_details))


def _safe_recordings(data: CallData) -> tuple[str, ...]:
    """The snapshot's recordings minus unsafe paths, which are logged and dropped.

    A bad path must not cost the call itself, and must never reach the file server.
    """
    safe = []
    for path in data.recordings:
        if is_safe_recording_path(path):
            safe.append(path)
        else:
            log.warning(
                "call %s: ignoring recording path %r (not relative to the recordings root)",
                data.linkedid,
                path,
            )
    return tuple(safe)


def _validate(data: CallData) -> None:
    """Reject malformed snapshots before touching the database (ValueError)."""
    if not data.linkedid:
        raise ValueError("A call needs a linkedid.")
    _check_one_of("direction", data.direction, (d.value for d in Direction))
    _check_one_of("call status", data.status, (s.value for s in CallStatus))
    for moment in (data.started_at, data.answered_at, data.ended_at):
        if moment is not None:
            ensure_utc(moment)
    seen: set[str] = set()
    for leg in data.legs:
        _check_one_of("leg role", leg.role, (r.value for r in LegRole))
        if leg.uniqueid in seen:
            raise ValueError(f"Leg {leg.uniqueid!r} appears twice in call {data.linkedid!r}.")
        seen.add(leg.uniqueid)
        for moment in (leg.started_at, leg.answered_at, leg.ended_at, leg.bridged_at):
            if moment is not None:
                ensure_utc(moment)


# -- helpers ------------------------------------------------------------------------------


def managers_who_talked(legs: Iterable[CallLeg | LegData]) -> list[str]:
    """Extensions of manager legs that talked (were bridged with the client, even for no
    measurable time), ordered by first answer, without repeats."""
    talked = [
        leg
        for leg in legs
        if leg.role == LegRole.MANAGER and leg.extension
        and (leg.talk_seconds > 0 or leg.bridged_at is not None)
    ]
    talked.sort(key=lambda leg: (leg.answered_at is None, leg.answered_at or leg.started_at))
    ordered: list[str] = []
    for leg in talked:
        assert leg.extension is not None
        if leg.extension not in ordered:
            ordered.append(leg.extension)
    return ordered


def _assign(obj: Any, values: dict[str, Any]) -> bool:
    """Set only the attributes that differ, so an identical snapshot writes nothing."""
    changed = False
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed = True
    return changed


def _lead_owner(data: CallData, managers: Iterable[str], users: dict[str, User]) -> int | None:
    """The first manager who talked, else the first whose phone rang, else nobody.

    A last resort before nobody: the first manager leg (who dialled an outbound call
    that was never answered).
    """
    dialled = (leg.extension for leg in data.legs if leg.role == LegRole.MANAGER and leg.extension)
    for extension in (*managers, *data.rang, *dialled):
        user = users.get(extension)
        if user is not None:
            return user.id
    return None


def _queue_name(data: CallData) -> str | None:
    """The queue name as stored: at most 80 characters (a longer one is cut, not fatal)."""
    queue = (data.queue or "").strip()
    if len(queue) > QUEUE_NAME_MAX:
        log.warning("call %s: queue name %r cut to %d characters",
                    data.linkedid, queue, QUEUE_NAME_MAX)  # fmt: skip
        queue = queue[:QUEUE_NAME_MAX]
    return queue or None


def _normalized(raw: str | None) -> str | None:
    return normalize_phone(raw) if raw else None


# -- writer -------------------------------------------------------------------------------


def _call_values(data: CallData, client_number: str | None, client: Client | None,
                 managers: list[str], created_client: bool) -> dict[str, Any]:
    """The columns of a call row as a snapshot sets them (one place for both writers)."""
    return {
        "direction": data.direction,
        "status": data.status,
        "client_number": client_number,
        "did": _normalized(data.did),
        "client_id": client.id if client else None,
        "started_at": data.started_at,
        "answered_at": data.answered_at,
        "ended_at": data.ended_at,
        "ring_seconds": float(data.ring_seconds),
        "talk_seconds": float(data.talk_seconds),
        "transferred": bool(data.transferred),
        "queue": _queue_name(data),
        "managers": managers,
        "created_client": created_client,
        "pbx": data.pbx or DEFAULT_PBX,
    }


async def _create_lead(session: AsyncSession, client_number: str, owner_id: int | None,
                       linkedid: str) -> Client:
    """A new client in status potential, named after the number that called (audited)."""
    return await create_client(
        session,
        format_phone(client_number),
        phones=[client_number],
        owner_id=owner_id,
        source=LEAD_SOURCE,
        actor=AUDIT_ACTOR,
        audit_extra={"linkedid": linkedid},
    )


async def _load_call(session: AsyncSession, linkedid: str) -> Call | None:
    stmt = (
        select(Call)
        .where(Call.linkedid == linkedid)
        .options(selectinload(Call.legs), selectinload(Call.recordings), joinedload(Call.client))
    )
    return await session.scalar(stmt)


async def _lock_number(session: AsyncSession, e164: str) -> None:
    """Serialize lead creation per number across PostgreSQL transactions.

    Two calls from one new number written at once would otherwise both miss the lead
    and create two. The lock lives until commit; SQLite needs none (one writer at a time).
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:number))"),
            {"namespace": _LEAD_LOCK_NAMESPACE, "number": e164},
        )


async def _resolve_client(
    session: AsyncSession,
    call: Call | None,
    data: CallData,
    client_number: str | None,
    owner_id: int | None,
) -> tuple[Client | None, bool]:
    """The call's client and whether this call created it (a lead)."""
    if data.direction == Direction.INTERNAL:
        return None, False
    if call is not None and call.client is not None:
        client = call.client
        following = call.created_client and call.status == CallStatus.IN_PROGRESS
        if following and owner_id is not None and owner_id != client.owner_id:
            # Until the call that created the lead ends, a fuller snapshot knows better who
            # talked. Afterwards the owner is settled: a replay never undoes a reassignment.
            write_audit(
                session,
                actor=AUDIT_ACTOR,
                entity=CLIENT_ENTITY,
                entity_id=client.id,
                action=ACTION_UPDATE,
                changes={"owner_id": [client.owner_id, owner_id], "linkedid": data.linkedid},
            )
            client.owner_id = owner_id
            client.updated_at = utcnow()
        return client, call.created_client
    if client_number is None:
        return None, False
    await _lock_number(session, client_number)
    found = await find_client_by_phone(session, client_number)
    if found is not None:
        return found, False
    return await _create_lead(session, client_number, owner_id, data.linkedid), True


def _adopt(call: Call, stray: CallLeg) -> None:
    """Move ``stray`` (a leg stored under another call) into ``call``, never losing it.

    A leg still pending (both calls new in one batch) is first taken out of its old
    call explicitly: that expunges it as a delete-orphan, and the append below adds it
    back. Left to the backref, SQLAlchemy takes two unsaved calls for the same parent,
    expunges the leg after the append, and neither call keeps it.
    """
    if inspect(stray).pending:
        old = stray.call
        if old is not None and old is not call:
            old.legs.remove(stray)
    call.legs.append(stray)


def _merge_legs(call: Call, data: CallData, users: dict[str, User], strays: list[CallLeg]) -> bool:
    by_uniqueid = {leg.uniqueid: leg for leg in call.legs}
    if data.merged_into is not None:
        # The last word of a call another absorbed: the legs already stored elsewhere
        # belong to the absorbing call, whose snapshots are newer. Whatever the order of
        # writing, a leg ends up there.
        stored_elsewhere = {stray.uniqueid for stray in strays}
        strays = []
    else:
        stored_elsewhere = set()
    for stray in strays:  # a uniqueid recorded under another linkedid moves to this call
        _adopt(call, stray)
        by_uniqueid[stray.uniqueid] = stray
    changed = bool(strays)
    for seq, leg_data in enumerate(data.legs):
        if leg_data.uniqueid in stored_elsewhere:
            continue
        user = users.get(leg_data.extension) if leg_data.extension else None
        values = {
            "channel": leg_data.channel,
            "role": leg_data.role,
            "extension": leg_data.extension,
            "user_id": user.id if user else None,
            "started_at": leg_data.started_at,
            "answered_at": leg_data.answered_at,
            "ended_at": leg_data.ended_at,
            "talk_seconds": float(leg_data.talk_seconds),
            "hold_seconds": float(leg_data.hold_seconds),
            "bridged_at": leg_data.bridged_at,
            "hangup_cause": leg_data.hangup_cause,
            "seq": seq,
        }
        leg = by_uniqueid.get(leg_data.uniqueid)
        if leg is None:
            call.legs.append(CallLeg(uniqueid=leg_data.uniqueid, **values))
            changed = True
        else:
            changed |= _assign(leg, values)
    return changed


def _merge_recordings(call: Call, paths: tuple[str, ...],
                      details: tuple[RecordingRef, ...] = ()) -> bool:
    """Add or reorder the call's recordings, with their side and leg (from the same call).

    A side or leg already known is never cleared by a snapshot that lacks it; without
    details the side is read from the file name, as migration 0012 does for old rows.
    """
    by_path = {recording.path: recording for recording in call.recordings}
    refs = {ref.path: ref for ref in reversed(details)}  # the first announcement wins
    legs = {leg.uniqueid: leg for leg in call.legs}
    changed = False
    for position, path in enumerate(dict.fromkeys(paths)):
        ref = refs.get(path)
        side = ref.side if ref is not None and ref.side in RECORDING_SIDES else (
            side_from_path(path))
        leg = legs.get(ref.uniqueid) if ref is not None and ref.uniqueid else None
        values: dict[str, Any] = {"position": position}
        if side is not None:
            values["side"] = side
        if leg is not None:
            values["leg"] = leg
        recording = by_path.get(path)
        if recording is None:
            call.recordings.append(Recording(path=path, **values))
            changed = True
        else:
            changed |= _assign(recording, values)
    return changed


async def _upsert(session: AsyncSession, data: CallData) -> Call:
    call = await _load_call(session, data.linkedid)
    if (
        call is not None
        and call.status != CallStatus.IN_PROGRESS
        and (data.status == CallStatus.IN_PROGRESS)
    ):
        return call  # a stale snapshot (e.g. a replay of the call's start) never rewinds it

    internal = data.direction == Direction.INTERNAL
    client_number = None if internal else _normalized(data.client_number)
    managers = list(data.managers) or managers_who_talked(data.legs)
    extensions = {*managers, *data.rang, *(leg.extension for leg in data.legs if leg.extension)}
    users = await users_by_extension(session, extensions)
    owner_id = _lead_owner(data, managers, users)
    client, created_client = await _resolve_client(session, call, data, client_number, owner_id)

    values = _call_values(data, client_number, client, managers, created_client)
    if call is None:
        call = Call(linkedid=data.linkedid, legs=[], recordings=[], **values)
        call.client = client
        session.add(call)
        changed = True
    else:
        changed = _assign(call, values)
        if call.client is not client:
            call.client = client

    known = {leg.uniqueid for leg in call.legs}
    missing = [leg.uniqueid for leg in data.legs if leg.uniqueid not in known]
    strays = (
        list(await session.scalars(select(CallLeg).where(CallLeg.uniqueid.in_(missing))))
        if missing
        else []
    )
    changed |= _merge_legs(call, data, users, strays)
    changed |= _merge_recordings(call, _safe_recordings(data), data.recording_details)
    if changed and call.id is not None:
        call.updated_at = utcnow()
    await session.flush()
    return call


async def _record(session: AsyncSession, data: CallData, hooks: CallHooks) -> Call:
    async with session.begin_nested():
        call = await _upsert(session, data)
        await hooks.calls_written(session, [WrittenCall(call, data.rang)])
        return call


async def record_call(
    session: AsyncSession, data: CallData, *, hooks: CallHooks = NO_HOOKS
) -> Call:
    """Insert or update the call ``data.linkedid``, and apply the task rules; idempotent.

    Runs in a savepoint and flushes; the caller commits. A concurrent writer inserting
    the same call (or its callback task) first is handled by retrying as an update.
    Malformed data (unknown direction/status/role, naive datetimes, a repeated
    uniqueid) is a ValueError and nothing is written; an unsafe recording path is only
    dropped (and logged). Then ``hooks`` run in the same savepoint: the features'
    reactions (task rules, call-tracking attribution) wired by the composition root.
    """
    _validate(data)
    try:
        return await _record(session, data, hooks)
    except IntegrityError:
        return await _record(session, data, hooks)


# -- bulk writer --------------------------------------------------------------------------

_IN_CHUNK = 500  # bound on bound parameters per IN (...) query


def validate_call(data: CallData) -> None:
    """Raise ValueError for a snapshot ``record_call`` would reject, touching nothing."""
    _validate(data)


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), _IN_CHUNK):
        yield items[i:i + _IN_CHUNK]


@dataclass
class _Preloaded:
    """What a batch of snapshots needs from the database, fetched one query per kind."""

    calls: dict[str, Call] = field(default_factory=dict)  # by linkedid
    users: dict[str, User] = field(default_factory=dict)  # active users by extension
    clients: dict[str, Client] = field(default_factory=dict)  # preferred client by e164
    legs: dict[str, CallLeg] = field(default_factory=dict)  # any call's leg by uniqueid


@functools.cache
def _preload_queries() -> tuple[Select[Call], Select[CallLeg], Select[str, Client]]:
    """The writer's lookups, built once with their ids bound at each run (``ids``): building
    the statements (the joined loads' aliases, each IN list's values) cost more processor
    time than running them, on every write of the listener."""
    ids: BindParameter[list[str]] = bindparam("ids", expanding=True)
    calls = (select(Call).where(Call.linkedid.in_(ids))
             .options(joinedload(Call.legs), joinedload(Call.recordings),
                      joinedload(Call.client)))
    legs = select(CallLeg).where(CallLeg.uniqueid.in_(ids))
    clients = (select(Phone.e164, Client).join(Client, Client.id == Phone.client_id)
               .where(Phone.e164.in_(ids))
               .order_by(Client.archived_at.is_not(None), Client.id))
    return calls, legs, clients


async def _preload(session: AsyncSession, batch: Sequence[CallData]) -> _Preloaded:
    pre = _Preloaded()
    linkedids = sorted({data.linkedid for data in batch})
    calls_query, legs_query, _ = _preload_queries()
    for part in _chunks(linkedids):
        for loaded in (await session.scalars(calls_query, {"ids": list(part)})).unique():
            pre.calls[loaded.linkedid] = loaded
    for known in pre.calls.values():
        for leg in known.legs:
            pre.legs[leg.uniqueid] = leg
    extensions: set[str] = set()
    uniqueids: set[str] = set()  # legs the loaded calls lack: maybe under another linkedid
    numbers: set[str] = set()  # of calls that may need their client looked up
    for data in batch:
        extensions.update(data.managers)
        extensions.update(data.rang)
        for leg_data in data.legs:
            if leg_data.extension:
                extensions.add(leg_data.extension)
            if leg_data.uniqueid not in pre.legs:
                uniqueids.add(leg_data.uniqueid)
        call = pre.calls.get(data.linkedid)
        if (data.direction != Direction.INTERNAL and data.client_number
                and (call is None or call.client is None)):
            e164 = _lookup_key(data.client_number)
            if e164 is not None:
                numbers.add(e164)
    pre.users = await users_by_extension(session, extensions)
    for part in _chunks(sorted(uniqueids)):
        for leg in await session.scalars(legs_query, {"ids": list(part)}):
            pre.legs[leg.uniqueid] = leg
    await _load_clients(session, pre, sorted(numbers))
    if numbers - pre.clients.keys() and session.get_bind().dialect.name == "postgresql":
        # Numbers without a client may become leads: take the per-number locks that
        # record_call takes (sorted, so two bulk writers never deadlock), then look again.
        unknown = sorted(numbers - pre.clients.keys())
        for e164 in unknown:
            await _lock_number(session, e164)
        await _load_clients(session, pre, unknown)
    return pre


def _lookup_key(client_number: str | None) -> str | None:
    """The E.164 under which ``find_client_by_phone`` would look ``client_number`` up."""
    number = _normalized(client_number)
    return normalize_phone(number) if number else None


async def _load_clients(session: AsyncSession, pre: _Preloaded, numbers: Sequence[str]) -> None:
    """Preferred client per number, ordered exactly as ``find_client_by_phone`` orders."""
    clients_query = _preload_queries()[2]
    for part in _chunks(numbers):
        for e164, client in await session.execute(clients_query, {"ids": list(part)}):
            pre.clients.setdefault(e164, client)


async def _resolve_client_preloaded(
    session: AsyncSession,
    call: Call | None,
    data: CallData,
    client_number: str | None,
    owner_id: int | None,
    pre: _Preloaded,
) -> tuple[Client | None, bool]:
    """``_resolve_client`` with the phone lookup answered from the preload."""
    if data.direction == Direction.INTERNAL or (call is not None and call.client is not None):
        return await _resolve_client(session, call, data, client_number, owner_id)
    if client_number is None:
        return None, False
    key = normalize_phone(client_number)
    client = pre.clients.get(key) if key is not None else None
    if client is not None:
        return client, False
    client = await _create_lead(session, client_number, owner_id, data.linkedid)
    if key is not None:
        pre.clients[key] = client
    return client, True


async def _upsert_preloaded(session: AsyncSession, data: CallData, pre: _Preloaded) -> Call:
    """``_upsert`` without its per-call queries and flush (the batch flushes once)."""
    call = pre.calls.get(data.linkedid)
    if (
        call is not None
        and call.status != CallStatus.IN_PROGRESS
        and (data.status == CallStatus.IN_PROGRESS)
    ):
        return call

    internal = data.direction == Direction.INTERNAL
    client_number = None if internal else _normalized(data.client_number)
    managers = list(data.managers) or managers_who_talked(data.legs)
    users = pre.users
    owner_id = _lead_owner(data, managers, users)
    client, created_client = await _resolve_client_preloaded(
        session, call, data, client_number, owner_id, pre)  # fmt: skip

    values = _call_values(data, client_number, client, managers, created_client)
    new = call is None
    if call is None:
        # Added to the session once its legs and recordings are in place: one cascade
        # for the whole call instead of one per appended row (same rows, same order).
        call = Call(linkedid=data.linkedid, legs=[], recordings=[], **values)
        call.client = client
        pre.calls[data.linkedid] = call
        changed = True
    else:
        changed = _assign(call, values)
        if call.client is not client:
            call.client = client

    known = {leg.uniqueid for leg in call.legs}
    strays = [
        pre.legs[leg.uniqueid]
        for leg in data.legs
        if leg.uniqueid not in known and leg.uniqueid in pre.legs
    ]
    changed |= _merge_legs(call, data, users, strays)
    for leg in call.legs:
        pre.legs[leg.uniqueid] = leg
    changed |= _merge_recordings(call, _safe_recordings(data), data.recording_details)
    if new:
        session.add(call)
    elif changed and call.id is not None:
        call.updated_at = utcnow()
    return call


async def _record_many(
    session: AsyncSession, batch: Sequence[CallData], hooks: CallHooks
) -> list[Call]:
    pre = await _preload(session, batch)
    calls = [await _upsert_preloaded(session, data, pre) for data in batch]
    await session.flush()  # one bulk INSERT per table instead of one flush per call
    await hooks.calls_written(session, [WrittenCall(call, data.rang)
                                        for call, data in zip(calls, batch, strict=True)])
    return calls


async def _record_many_in_savepoint(
    session: AsyncSession, batch: Sequence[CallData], hooks: CallHooks
) -> list[Call]:
    async with session.begin_nested():
        return await _record_many(session, batch, hooks)


async def record_calls(
    session: AsyncSession,
    calls: Sequence[CallData],
    *,
    hooks: CallHooks = NO_HOOKS,
    savepoint: bool = True,
) -> list[Call]:
    """``record_call`` for many snapshots at once, in order, with the same results.

    Existing calls, clients by phone, users by extension and legs by uniqueid are
    fetched one query each, new rows are inserted in one flush, then ``hooks`` run once
    for the batch, calls in order (the task rules are order independent: a missed call
    already reached by a later one gets its callback created and closed at once).
    All or nothing: any malformed snapshot is a ValueError before anything is written,
    and the batch runs in one savepoint, retried once on a concurrent insert.
    ``savepoint=False`` saves two round trips for a caller that owns the transaction:
    it then gets the IntegrityError and retries the whole transaction itself.
    """
    for data in calls:
        _validate(data)
    if not calls:
        return []
    if not savepoint:
        return await _record_many(session, calls, hooks)
    try:
        return await _record_many_in_savepoint(session, calls, hooks)
    except IntegrityError:
        return await _record_many_in_savepoint(session, calls, hooks)


# -- export -------------------------------------------------------------------------------


def _recording_leg(recording: Recording) -> dict[str, Any]:
    leg = None if "leg" in inspect(recording).unloaded else recording.leg
    return {"path": recording.path, "side": recording.side,
            "leg": leg.uniqueid if leg is not None else None}


def call_attempts(call: Call) -> list[dict[str, Any]]:
    """Who placed or received each attempt: the manager phones that dialled or rang, in order.

    ``managers`` names only who talked, so a busy outbound call or a missed inbound one
    would name nobody although the CRM knows whose phone dialled or rang. The first leg
    of an outbound or internal call is the phone that dialled; every other manager leg
    is a phone that rang (answered or not). One entry per extension; ``talked`` is true
    when that phone's leg was in the conversation. Legs and their users must be loaded.
    """
    attempts: dict[str, dict[str, Any]] = {}
    for index, leg in enumerate(call.legs):
        if leg.role != LegRole.MANAGER or not leg.extension:
            continue
        dialled = index == 0 and call.direction != Direction.INBOUND
        entry = attempts.get(leg.extension)
        if entry is None:
            loaded = leg.user_id is not None and "user" not in inspect(leg).unloaded
            user = leg.user if loaded else None
            attempts[leg.extension] = {
                "extension": leg.extension, "user_id": leg.user_id,
                "name": user.name if user is not None else None,
                "kind": "dialled" if dialled else "rang",
                "talked": leg.talk_seconds > 0, "talk_seconds": round(leg.talk_seconds, 3)}
        else:  # the same phone rang again (a queue retry): one attempt, its talk added up
            entry["talked"] = entry["talked"] or leg.talk_seconds > 0
            entry["talk_seconds"] = round(entry["talk_seconds"] + leg.talk_seconds, 3)
    return list(attempts.values())


def call_to_dict(call: Call, hooks: CallHooks = NO_HOOKS) -> dict[str, Any]:
    """The public call shape (architecture.md); ``client``, ``recordings`` and ``legs`` (with
    their users) must be loaded, as :func:`crm_core.calls.log.call_query` loads them.

    Fields a feature owns (``tracking``) come from ``hooks``' describers; without them
    they are null, so the shape never changes.
    """
    return {
        "id": call.id,
        "linkedid": asterisk_id(call.pbx, call.linkedid),  # as the PBX wrote it
        "pbx": call.pbx,  # an extension of the fixed shape: which PBX (``pbx list``)
        "direction": call.direction,
        "status": call.status,
        "client_number": call.client_number,
        "did": call.did,
        "client_id": call.client_id,
        "client_name": call.client.name if call.client is not None else None,
        "managers": list(call.managers),
        "started_at": isoformat(call.started_at),
        "answered_at": isoformat(call.answered_at),
        "ended_at": isoformat(call.ended_at),
        "ring_seconds": round(call.ring_seconds, 3),
        "talk_seconds": round(call.talk_seconds, 3),
        "transferred": call.transferred,
        "recordings": [recording.path for recording in call.recordings],
        # An extension of the fixed shape: each file's side and the leg (uniqueid) it is on.
        "recording_legs": [_recording_leg(recording) for recording in call.recordings],
        "tracking": None,
        "queue": call.queue,  # an extension of the fixed shape
        # An extension too: whose phone dialled or rang, beside ``managers`` (who talked).
        "attempts": call_attempts(call),
        **hooks.describe(call),
    }


def _export_query() -> Any:
    return call_query()


async def export_calls(
    session: AsyncSession,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    include_in_progress: bool = False,
    batch_size: int = 500,
    hooks: CallHooks = NO_HOOKS,
) -> AsyncIterator[dict[str, Any]]:
    """Calls as public dicts ordered by ``started_at``; ``since`` inclusive, ``until`` exclusive.

    Calls still in progress are left out unless asked for (the export lists finished
    calls). Streams in keyset-paginated batches, so memory stays flat on big exports.
    """
    base = _export_query().order_by(Call.started_at, Call.id).limit(batch_size)
    if since is not None:
        base = base.where(Call.started_at >= ensure_utc(since))
    if until is not None:
        base = base.where(Call.started_at < ensure_utc(until))
    if not include_in_progress:
        base = base.where(Call.status != CallStatus.IN_PROGRESS.value)
    after: tuple[datetime, int] | None = None
    while True:
        stmt = base
        if after is not None:
            started, call_id = after
            stmt = stmt.where(
                or_(
                    Call.started_at > started,
                    and_(Call.started_at == started, Call.id > call_id),
                )
            )
        calls = list((await session.scalars(stmt)).unique())
        for call in calls:
            yield call_to_dict(call, hooks)
        if len(calls) < batch_size:
            return
        after = (calls[-1].started_at, calls[-1].id)


async def get_call(session: AsyncSession, call_id: int, hooks: CallHooks = NO_HOOKS
                   ) -> dict[str, Any] | None:
    """One call in the public shape (in progress included), or None."""
    call = await session.scalar(_export_query().where(Call.id == call_id))
    return call_to_dict(call, hooks) if call is not None else None
