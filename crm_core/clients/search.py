"""Finding clients: the search index kept in step with every write, and the client list.

The index (``client_search_terms``: one row per word a client is found by, see
:mod:`crm_core.clients.terms`) is rewritten for a client whenever a flush writes his
name or INN, or adds, changes or removes one of his contacts, e-mails or phones,
whichever code path does it (a form, an import, a call creating a lead, a merge).
A search is then index range scans on the words' primary key, never a scan of the
base: each word of the query narrows the clients by ``client_id IN (…)``.

:func:`search_clients` pages through the clients a caller may see (``visible``, from
:mod:`crm_core.people.access`) with filters and a keyset cursor; features add their
own conditions (abandoned, over the maximum stay) as ``extra`` clauses, which may
use :data:`OWNER`, the client's owner joined in.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    and_,
    case,
    delete,
    event,
    func,
    insert,
    inspect,
    intersect,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased, contains_eager, load_only

from crm_core.clients.models import Client, ClientSearchTerm, ClientStatus, Contact, Email, Phone
from crm_core.clients.terms import LEGAL_FORMS, client_terms, prefix_end, query_terms
from crm_core.errors import DomainError
from crm_core.people.models import User

OWNER = aliased(User, name="owner")  # the client's owner, joined in by search_clients
SORTS = ("name", "last_contact", "status")
MAX_LIMIT = 200
CANDIDATES = 5_000  # clients the words may find before the search joins them instead
COUNT_CAP = 10_000
_STATUS_ORDER = [s.value for s in ClientStatus]  # potential, new, regular, lost

# -- keeping the index ------------------------------------------------------------------------

_WATCHED: dict[type, tuple[str, ...]] = {
    Client: ("name", "inn"),
    Contact: ("name", "archived_at", "client_id"),
    Phone: ("e164", "client_id"),
    Email: ("address", "client_id"),
}


def _touched(session: Session) -> set[int]:
    """Ids of the clients whose words this flush may have changed."""
    ids: set[int] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        fields = _WATCHED.get(type(obj))
        if fields is None:
            continue
        state = inspect(obj)
        if obj in session.dirty and not any(
                state.attrs[f].history.has_changes() for f in fields):
            continue
        if isinstance(obj, Client):
            if obj.id is not None:
                ids.add(obj.id)
            continue
        history = state.attrs["client_id"].history
        ids.update(i for i in (*history.deleted, *history.unchanged, *history.added)
                   if i is not None)
        if getattr(obj, "client_id", None) is not None:
            ids.add(obj.client_id)
    return ids


def _rows(session: Session, ids: Sequence[int]) -> list[dict[str, Any]]:
    names = {cid: (name, inn) for cid, name, inn in session.execute(
        select(Client.id, Client.name, Client.inn).where(Client.id.in_(ids)))}
    people: dict[int, list[str]] = {}
    for cid, name in session.execute(select(Contact.client_id, Contact.name).where(
            Contact.client_id.in_(ids), Contact.archived_at.is_(None))):
        people.setdefault(cid, []).append(name)
    mails: dict[int, list[str]] = {}
    for cid, address in session.execute(
            select(Email.client_id, Email.address).where(Email.client_id.in_(ids))):
        mails.setdefault(cid, []).append(address)
    numbers: dict[int, list[str]] = {}
    for cid, e164 in session.execute(
            select(Phone.client_id, Phone.e164).where(Phone.client_id.in_(ids))):
        numbers.setdefault(cid, []).append(e164)
    rows: list[dict[str, Any]] = []
    for cid, (name, inn) in names.items():
        terms = client_terms(name=name, inn=inn, contact_names=people.get(cid, ()),
                             emails=mails.get(cid, ()), phones=numbers.get(cid, ()))
        rows.extend({"term": term, "client_id": cid} for term in sorted(terms))
    return rows


def _reindex(session: Session, ids: Iterable[int]) -> None:
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), 500):
        part = wanted[start:start + 500]
        session.execute(delete(ClientSearchTerm).where(ClientSearchTerm.client_id.in_(part))
                        .execution_options(synchronize_session=False))
        rows = _rows(session, part)
        if rows:
            session.execute(insert(ClientSearchTerm), rows)


_DEFERRED = "telecrm_search_deferred"  # session.info key: ids to rewrite after a batch


@event.listens_for(Session, "after_flush")
def _reindex_written(session: Session, _context: object) -> None:
    """Rewrite the words of every client this flush touched, in the same transaction
    (inside :func:`one_reindex`, once at its end)."""
    ids = _touched(session)
    deferred = session.info.get(_DEFERRED)
    if deferred is not None:
        deferred.update(ids)
    elif ids:
        _reindex(session, ids)


@asynccontextmanager
async def one_reindex(session: AsyncSession) -> AsyncIterator[None]:
    """Rewrite the touched clients' words once, at the end, for a batch of writes that
    flushes many times (a card with its contact persons): per flush, each rewrite reads
    the whole card again, and the batch would cost the square of its size."""
    info = session.sync_session.info
    if _DEFERRED in info:  # nested: the outer batch rewrites
        yield
        return
    pending: set[int] = set()
    info[_DEFERRED] = pending
    try:
        yield
        await session.flush()
    finally:
        del info[_DEFERRED]
    if pending:
        await session.run_sync(_reindex, sorted(pending))


async def reindex_clients(session: AsyncSession, ids: Iterable[int] | None = None) -> int:
    """Rebuild the words of ``ids`` (all clients when None), e.g. after bulk SQL writes."""
    if ids is None:
        ids = list(await session.scalars(select(Client.id).order_by(Client.id)))
    wanted = list(ids)
    await session.run_sync(lambda sync: _reindex(sync, wanted))
    return len(wanted)


# -- the list ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientQuery:
    """What the client list asks for; every filter given must hold."""

    text: str = ""
    statuses: tuple[str, ...] = ()
    abc: tuple[str, ...] = ()  # "A", "B", "C"; "none" for not qualified
    owner_ids: tuple[int, ...] = ()
    team_id: int | None = None
    created_before: datetime | None = None
    archived: bool = False  # the archive (merged duplicates too) instead of the working base
    sort: str = "name"
    cursor: str | None = None
    limit: int = 50


@dataclass(frozen=True)
class ClientPage:
    """One page of the list: the clients (the columns a list shows and the owner loaded;
    others are not), their numbers by client id, and the cursor of the next page."""

    clients: list[Client]
    phones: dict[int, list[str]]  # E.164, in the order they were added
    next: str | None  # None on the last page


LIST_COLUMNS = (Client.id, Client.name, Client.name_key, Client.status, Client.owner_id,
                Client.inn, Client.abc_group, Client.last_contact_at, Client.archived_at,
                Client.created_at)


def _matches(text: str) -> tuple[Any, list[ColumnElement[bool]]]:
    """(the ids of the clients every searched word matches, as one SELECT, or None; the
    name conditions of legal forms typed beside another word).

    The ids come from the words' key alone (an index-only range scan per word, intersected)
    so the database fetches only the clients found, whatever else it could walk. A legal
    form («ооо ром») would read a fifth of the base from the index: it is checked on the
    names of the clients the other word found instead.
    """
    wanted = query_terms(text)
    if not wanted:
        return None, []
    forms = [a[0] for a in wanted if len(a) == 1 and a[0] in LEGAL_FORMS]
    if len(forms) == len(wanted):
        forms = []
    names = [or_(Client.name_key.like(f"{form}%"), Client.name_key.like(f"% {form}%"))
             for form in forms]
    selects = []
    for alternatives in wanted:
        if len(alternatives) == 1 and alternatives[0] in forms:
            continue
        ranges = [and_(ClientSearchTerm.term >= a, ClientSearchTerm.term < prefix_end(a))
                  for a in alternatives]
        selects.append(select(ClientSearchTerm.client_id).where(or_(*ranges)))
    ids = selects[0].distinct() if len(selects) == 1 else intersect(*selects)
    return ids, names


def text_clause(text: str) -> ColumnElement[bool] | None:
    """Clients matching every word of ``text`` (None when nothing searchable was typed)."""
    ids, names = _matches(text)
    if ids is None:
        return None
    return and_(Client.id.in_(ids), *names)


def _sort_columns(sort: str) -> list[Any]:
    if sort == "last_contact":  # never contacted first, then the longest ago
        return [case((Client.last_contact_at.is_(None), 0), else_=1), Client.last_contact_at,
                Client.id]
    if sort == "status":
        rank = case(*[(Client.status == s, i) for i, s in enumerate(_STATUS_ORDER)], else_=9)
        return [rank, Client.name_key, Client.id]
    return [Client.name_key, Client.id]


def _key(sort: str, client: Client) -> list[Any]:
    if sort == "last_contact":
        at = client.last_contact_at
        return [0 if at is None else 1, at.isoformat() if at else None, client.id]
    if sort == "status":
        rank = _STATUS_ORDER.index(client.status) if client.status in _STATUS_ORDER else 9
        return [rank, client.name_key, client.id]
    return [client.name_key, client.id]


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode_cursor(sort: str, cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise DomainError("clients.bad_cursor", "the cursor is not valid") from None
    if not isinstance(values, list) or len(values) != len(_sort_columns(sort)):
        raise DomainError("clients.bad_cursor", "the cursor is not valid")
    if sort == "last_contact" and values[1] is not None:
        try:
            values[1] = datetime.fromisoformat(values[1])
        except (TypeError, ValueError):
            raise DomainError("clients.bad_cursor", "the cursor is not valid") from None
    return values


def _after(columns: list[Any], values: list[Any]) -> ColumnElement[bool]:
    """Rows after ``values`` in the ascending order of ``columns`` (NULLs tie among themselves)."""
    alternatives = []
    for i, (column, value) in enumerate(zip(columns, values, strict=True)):
        if value is None:
            continue  # nothing sorts after NULL within its group: the next columns decide
        equal = [c.is_(None) if v is None else c == v
                 for c, v in zip(columns[:i], values[:i], strict=True)]
        alternatives.append(and_(*equal, column > value))
    return or_(*alternatives)


def filters(query: ClientQuery) -> list[ColumnElement[bool]]:
    """The WHERE clauses of ``query`` on ``Client`` (and ``OWNER``), without the text and
    the cursor (the text joins the clients found: :func:`_base`)."""
    where: list[ColumnElement[bool]] = [
        Client.archived_at.is_not(None) if query.archived else Client.archived_at.is_(None)]
    if query.statuses:
        where.append(Client.status.in_(query.statuses))
    if query.abc:
        groups = [g for g in query.abc if g in ("A", "B", "C")]
        either = [Client.abc_group.in_(groups)] if groups else []
        if "none" in query.abc:
            either.append(Client.abc_group.is_(None))
        where.append(or_(*either))
    if query.owner_ids:
        where.append(Client.owner_id.in_(query.owner_ids))
    if query.team_id is not None:
        where.append(OWNER.team_id == query.team_id)
    if query.created_before is not None:
        where.append(Client.created_at < query.created_before)
    return where


async def _base(session: AsyncSession, visible: ColumnElement[bool], query: ClientQuery,
                extra: Sequence[ColumnElement[bool]]) -> Any:
    """The clients of ``query``, those its words found first.

    SQLite drives the query from the words' key by itself (``id IN (…)`` is a list of
    row ids to look up). PostgreSQL's planner, joining, may rather read the whole table
    for a thousand clients found: there the ids are read on their own (index-only) and
    handed back as one array, joined as a set of rows (fetched by primary key). A word
    found in more than ``CANDIDATES`` clients («ооо» alone) is joined instead.
    """
    stmt = select(Client)
    ids, names = _matches(query.text)
    if ids is not None:
        found = None
        if session.get_bind().dialect.name == "postgresql":
            found = list(await session.scalars(ids.limit(CANDIDATES + 1)))
        if found is not None and len(found) <= CANDIDATES:
            listed = (func.unnest(literal(found, ARRAY(Integer))).table_valued("client_id")
                      .render_derived(name="found"))
            stmt = stmt.join(listed, listed.c.client_id == Client.id).where(*names)
        else:
            joined = ids.subquery("found")
            stmt = stmt.join(joined, joined.c.client_id == Client.id).where(*names)
    return (stmt.outerjoin(OWNER, OWNER.id == Client.owner_id)
            .where(visible, *filters(query), *extra))


async def search_clients(session: AsyncSession, query: ClientQuery, *,
                         visible: ColumnElement[bool],
                         extra: Sequence[ColumnElement[bool]] = ()) -> ClientPage:
    """One page of the clients ``visible`` lets the caller see that match ``query``."""
    sort = query.sort if query.sort in SORTS else "name"
    limit = max(1, min(query.limit, MAX_LIMIT))
    columns = _sort_columns(sort)
    stmt = await _base(session, visible, query, extra)
    if query.cursor:
        stmt = stmt.where(_after(columns, _decode_cursor(sort, query.cursor)))
    stmt = (stmt.order_by(*columns).limit(limit + 1)
            .options(load_only(*LIST_COLUMNS),
                     contains_eager(Client.owner.of_type(OWNER)).load_only(
                         OWNER.id, OWNER.name, OWNER.extension, OWNER.team_id)))
    rows = list((await session.scalars(stmt)).unique())
    more = len(rows) > limit
    rows = rows[:limit]
    phones: dict[int, list[str]] = {c.id: [] for c in rows}
    if rows:
        for cid, e164 in await session.execute(
                select(Phone.client_id, Phone.e164).where(Phone.client_id.in_(list(phones)))
                .order_by(Phone.id)):
            phones[cid].append(e164)
    return ClientPage(rows, phones,
                      encode_cursor(_key(sort, rows[-1])) if more and rows else None)


async def count_clients(session: AsyncSession, query: ClientQuery, *,
                        visible: ColumnElement[bool],
                        extra: Sequence[ColumnElement[bool]] = (),
                        cap: int = COUNT_CAP) -> int:
    """How many clients match (up to ``cap`` + 1, so a huge count stays cheap)."""
    inner = ((await _base(session, visible, query, extra)).with_only_columns(Client.id)
             .limit(cap + 1).subquery())
    return int(await session.scalar(select(func.count()).select_from(inner)) or 0)
