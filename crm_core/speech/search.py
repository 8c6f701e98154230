"""Full-text search over transcripts: the phrase index, kept with each transcript, and queries.

A transcript is cut into phrases (:func:`crm_core.speech.dialogue.turns`, at most
:data:`MAX_PHRASE_WORDS` words), and each phrase is stored with the dictionary form
(pymorphy3's most probable lemma) of each of its words. Search lemmatizes the query the
same way, so «скидку», «скидки», «скидкам» all find a phrase with «скидок».

Each backend indexes the lemmas with its own full-text engine (migration 0024):

- SQLite: an FTS5 table over ``lemmas`` (external content, kept by triggers), tokenizer
  ``unicode61`` without diacritic folding (it would fold «й» into «и»);
- PostgreSQL: a generated ``tsvector`` column with a GIN index, configuration
  ``'simple'``. Not ``'russian'``: the lemmas are dictionary forms already, and the
  Snowball stemmer would only cut them down further and merge different words
  («компания» and «компаньон» share the stem «компан»), while its stop-word list drops
  «не», «без», «нет», which matter in phrases like «не интересно». ``'simple'`` keeps
  exactly our lemmas, so both backends find the same phrases for the same query.

A query word matches any of its possible lemmas («стали» is «сталь» or «стать»), and a
phrase matches when it holds every word of the query, in any order. Hits come newest
transcript first (the phrase id: transcripts are made minutes after their calls, and the
migration indexed the old ones in the calls' order), in keyset pages on that id, so
both engines can stop at the page's last hit instead of sorting every match. On
PostgreSQL a manager's or supervisor's search looks from his side when the newest matches
are not his (:func:`search`; the indexes of migration 0032).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    Select,
    any_,
    bindparam,
    column,
    delete,
    false,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy import table as sql_table
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call
from crm_core.clients.models import Client
from crm_core.db import plan_for_these_values
from crm_core.errors import DomainError
from crm_core.people.models import User
from crm_core.speech.dialogue import turns
from crm_core.speech.models import TranscriptPhrase
from crm_core.speech.words import best_lemma, lemmas

MAX_PHRASE_WORDS = 30
MAX_QUERY_WORDS = 8
MAX_PAGE = 200
SPEAKERS = ("manager", "client")

_PART = re.compile(r"[a-zа-я0-9]+")
_FTS = sql_table("transcript_phrases_fts", column("rowid"))


def word_parts(text: str) -> list[str]:
    """The letters-and-digits runs of ``text``, lower case, ``ё`` as ``е`` («кто-то»: кто, то).

    Hyphens split words on both sides, as FTS5's tokenizer would split them anyway.
    """
    return _PART.findall(text.lower().replace("ё", "е"))


def lemma_text(text: str) -> str:
    """What the index stores for a phrase: the most probable lemma of each word."""
    return " ".join(best_lemma(part) for part in word_parts(text))


def phrases_of(transcript: dict[str, Any]) -> list[dict[str, Any]]:
    """The transcript's phrases as index rows (without the call): speaker, times, text, lemmas."""
    return [{"speaker": str(t["speaker"])[:10], "start": float(t["start"]),
             "end": float(t["end"]), "text": t["text"], "lemmas": lemma_text(t["text"])}
            for t in turns(transcript, max_words=MAX_PHRASE_WORDS) if word_parts(t["text"])]


async def index_transcript(session: AsyncSession, call_id: int,
                           transcript: dict[str, Any]) -> int:
    """Replace the call's phrases in the index (not committed); how many were written."""
    await session.execute(delete(TranscriptPhrase).where(TranscriptPhrase.call_id == call_id))
    rows = [{"call_id": call_id, **p} for p in phrases_of(transcript)]
    if rows:
        await session.execute(insert(TranscriptPhrase), rows)
    return len(rows)


# -- queries ------------------------------------------------------------------------------


Terms = list[frozenset[str]]  # per query word, the lemmas that stand for it


def query_terms(text: str) -> Terms:
    """The lemmas each word of ``text`` may stand for; DomainError for too many words."""
    parts = list(dict.fromkeys(word_parts(text)))
    if len(parts) > MAX_QUERY_WORDS:
        raise DomainError("speech.search.too_many_words",
                          f"at most {MAX_QUERY_WORDS} words in a search", max=MAX_QUERY_WORDS)
    return [frozenset(lemmas(p) | {best_lemma(p)}) for p in parts]


def _fts5(groups: Sequence[Terms]) -> str:
    """An FTS5 query: any group, each with all its words, each word any of its lemmas."""
    def word(forms: frozenset[str]) -> str:
        return "(" + " OR ".join(f'"{w}"' for w in sorted(_clean(forms))) + ")"
    return " OR ".join("(" + " AND ".join(word(f) for f in g) + ")" for g in groups)


def _tsquery(groups: Sequence[Terms]) -> str:
    """The same query as a PostgreSQL ``tsquery`` text."""
    def word(forms: frozenset[str]) -> str:
        return "(" + " | ".join(sorted(w.replace(" ", " <-> ") for w in _clean(forms))) + ")"
    return " | ".join("(" + " & ".join(word(f) for f in g) + ")" for g in groups)


def _clean(forms: Iterable[str]) -> set[str]:
    """Lemmas as the indexes tokenize them: runs of letters and digits only."""
    return {" ".join(word_parts(f)) for f in forms if word_parts(f)}


def matches(session: AsyncSession, groups: Sequence[Terms]) -> ColumnElement[bool]:
    """A WHERE clause on ``TranscriptPhrase``: phrases holding all words of any group."""
    groups = [g for g in groups if g]
    if not groups:
        return false()
    if session.get_bind().dialect.name == "postgresql":
        query = func.to_tsquery(literal_column("'simple'::regconfig"), _tsquery(groups))
        return literal_column("transcript_phrases.search_vector").op("@@")(query)
    found = select(_FTS.c.rowid).where(
        literal_column("transcript_phrases_fts").op("MATCH")(_fts5(groups)))
    return TranscriptPhrase.id.in_(found)


def fragments(text: str, terms: Terms) -> list[tuple[str, bool]]:
    """The phrase cut into (piece, found) for highlighting the words the query found."""
    wanted = set().union(*terms) if terms else set()
    out: list[tuple[str, bool]] = []
    for piece in re.split(r"(\s+)", text):
        hit = bool(piece.strip()) and any(best_lemma(p) in wanted or p in wanted
                                          for p in word_parts(piece))
        if out and out[-1][1] == hit:
            out[-1] = (out[-1][0] + piece, hit)
        elif piece:
            out.append((piece, hit))
    return out


@dataclass(frozen=True)
class Hit:
    phrase_id: int
    call_id: int
    speaker: str
    start: float
    end: float
    text: str
    started_at: datetime
    manager: str | None  # the extension of the call's first manager
    manager_name: str | None
    client_id: int | None
    client_name: str | None
    fragments: list[tuple[str, bool]]


async def _candidates(session: AsyncSession, terms: Terms, before: int | None,
                      size: int, calls: list[int] | None = None) -> list[int]:
    """Ids of the newest ``size`` phrases holding the words, below ``before``: from the
    full-text index alone, where each engine finds them fastest (FTS5 walks its rowids
    backwards; PostgreSQL picks the GIN or a backward scan of the key by the word's
    frequency, which it estimates well when no other condition is in the way).

    With ``calls`` (PostgreSQL, a word in few phrases), the phrases of those calls only:
    every match below ``before`` from the GIN, then sorted. Told the calls and the order,
    the planner would rather walk the key backwards hoping to meet them soon, and may read
    every phrase of the base (seconds at 1,000,000 calls); the matches are a few thousand.
    """
    if session.get_bind().dialect.name == "postgresql":
        if calls is not None:
            mine = select(TranscriptPhrase.id).where(
                matches(session, [terms]),
                TranscriptPhrase.call_id == any_(
                    bindparam("viewer_calls", calls, type_=ARRAY(Integer))))
            if before is not None:
                mine = mine.where(TranscriptPhrase.id < before)
            found = mine.cte("viewer_matches").prefix_with("MATERIALIZED")
            return list(await session.scalars(
                select(found.c.id).order_by(found.c.id.desc()).limit(size)))
        stmt = (select(TranscriptPhrase.id).where(matches(session, [terms]))
                .order_by(TranscriptPhrase.id.desc()).limit(size))
        if before is not None:
            stmt = stmt.where(TranscriptPhrase.id < before)
    else:
        stmt = (select(_FTS.c.rowid)
                .where(literal_column("transcript_phrases_fts").op("MATCH")(_fts5([terms])))
                .order_by(_FTS.c.rowid.desc()).limit(size))
        if before is not None:
            stmt = stmt.where(_FTS.c.rowid < before)
    return list(await session.scalars(stmt))


async def _walk(session: AsyncSession, calls: list[int], before: int | None,
                size: int) -> list[int]:
    """Ids of the newest ``size`` phrases of ``calls`` (PostgreSQL), below ``before``,
    whatever they say: a backward scan of the index on (id, call_id) alone, which reads
    no phrase (migration 0032)."""
    stmt = (select(TranscriptPhrase.id)
            .where(TranscriptPhrase.call_id == any_(
                bindparam("viewer_calls", calls, type_=ARRAY(Integer))))
            .order_by(TranscriptPhrase.id.desc()).limit(size))
    if before is not None:
        stmt = stmt.where(TranscriptPhrase.id < before)
    return list(await session.scalars(stmt))


def _among(session: AsyncSession, ids: list[int]) -> ColumnElement[bool]:
    """``id IN (ids)``; on PostgreSQL one array parameter rather than thousands."""
    if session.get_bind().dialect.name == "postgresql":
        return TranscriptPhrase.id == any_(bindparam("phrase_ids", ids, type_=ARRAY(Integer)))
    return TranscriptPhrase.id.in_(ids)


MAX_CHUNK = 20_000  # ids bound in one IN (…): under both drivers' limits on parameters
MAX_VIEWER_CALLS = 200_000  # more calls than this: look through the matches instead
# What a phrase id read from the index on (id, call_id) costs, against a phrase read.
INDEX_ENTRY_COST = 0.05


def _next_size(need: int, found: int, seen: int, size: int, floor: int) -> int:
    """The next chunk: what should hold ``need`` more hits at the share of hits among the
    ids seen so far (and half as many again), but at most four times the last one (a share
    read from a handful of hits can be far off; SQLite checks every id of a chunk it is
    given, so an overshoot costs more than a round)."""
    if found <= 0 or seen <= 0:
        return min(size * 4, MAX_CHUNK)
    return max(floor, min(MAX_CHUNK, size * 4, -(-need * seen * 3 // (found * 2))))


async def _viewer_calls(session: AsyncSession, viewer_calls: Select[int]) -> list[int]:
    """The viewer's call ids, each once, in one array (not tens of thousands of rows); at
    most :data:`MAX_VIEWER_CALLS` and one."""
    found = viewer_calls.limit(MAX_VIEWER_CALLS * 2 + 2).subquery()
    ids = await session.scalar(select(func.array_agg(found.c[0])))
    return sorted(set(ids or ()))[:MAX_VIEWER_CALLS + 1]


async def _phrase_share(session: AsyncSession, terms: Terms) -> tuple[float, float] | None:
    """PostgreSQL's statistics of the phrases' lexemes: the estimated share of phrases
    holding the words (a lexeme it does not list as common counted at half the least
    common one's share, as the planner counts it; words assumed independent), and how
    many phrases there are. None before the table was first analysed."""
    row = (await session.execute(sql_text(
        "SELECT most_common_elems::text::text[], most_common_elem_freqs, "
        "(SELECT reltuples FROM pg_class WHERE relname = 'transcript_phrases') "
        "FROM pg_stats WHERE tablename = 'transcript_phrases' "
        "AND attname = 'search_vector'"))).first()
    if row is None or not row[0] or not row[1] or not row[2] or row[2] <= 0:
        return None
    elements, freqs = list(row[0]), list(row[1])[:len(row[0])]
    common = dict(zip(elements, freqs, strict=True))
    least = min(freqs) / 2
    share = 1.0
    for forms in terms:
        share *= min(1.0, sum(min(common.get(part, least) for part in form.split())
                              for form in _clean(forms)))
    return share, float(row[2])


def _walk_is_cheaper(need: int, density: float, calls: list[int], below: int) -> bool:
    """Whether walking the viewer's phrases should read less than the matches of his calls.

    A walk reads ``need / density`` of his phrases (each checked for the words) and, to
    find them, ``need / (density * share)`` index entries, ``share`` being his part of the
    calls (his calls over the newest call id he has: the newest calls are everyone's). The
    GIN reads every match below the cursor: ``density * below`` phrases.
    """
    return _walk_reads(need, density, calls) < density * below


def _walk_reads(need: int, density: float, calls: list[int]) -> float:
    """What walking ``calls``' phrases for ``need`` hits reads (see :func:`_walk_is_cheaper`)."""
    share = len(calls) / max(max(calls), 1)
    return need / max(density, 1e-9) * (1 + INDEX_ENTRY_COST / max(share, 1e-6))


async def search(session: AsyncSession, terms: Terms, *, visible: ColumnElement[bool],
                 where: Sequence[ColumnElement[bool]] = (), speaker: str | None = None,
                 before: int | None = None, limit: int = 50,
                 viewer_calls: Select[int] | None = None,
                 ) -> tuple[list[Hit], int | None]:
    """Phrases holding every word of ``terms`` in calls passing ``visible`` and ``where``
    (clauses on ``Call``), newest first; and the cursor of the next page (None: no more).

    The matches are taken newest first in chunks from the full-text index, and each
    chunk is narrowed by who may see the call and the filters. In one query the planner
    cannot know how few calls a manager sees, and would walk every phrase backwards hoping
    to meet his soon; in chunks, a rare word costs one look-up and a common one stops after
    its first page. The first chunk is four pages' worth; each next one is sized by the
    share of hits among the ids seen so far, at most four times the last.

    ``viewer_calls`` (PostgreSQL; see :func:`crm_core.people.access.call_ids_seen_by`)
    names every call ``visible`` lets through, maybe more. When the first chunk does not
    fill the page, the search lists those calls (one array, from the legs' indexes alone)
    and looks from the viewer's side, the cheaper of two ways by the first chunk's share
    of matches among the phrases it spans (:func:`_walk_is_cheaper`):

    - walk his phrases newest first through the index on (id, call_id), which reads no
      phrase, and keep those holding the words: a manager with 2 % of the calls needs
      ~1,400 of his phrases for a page of a word in 3.6 % of them, where the matches
      walked backwards would be ~70,000 phrases;
    - or, for a word in few phrases, take every match of his calls below the cursor from
      the GIN and sort them (thousands of phrases, whatever the base's size beyond them).

    When PostgreSQL's statistics of the lexemes say the words are clearly rare enough for
    the second way, it is taken at once, without the first chunk (:func:`_phrase_share`).
    Either way each chunk is still narrowed by ``visible`` and ``where``, so the hits,
    their order and the pages are those of the search without ``viewer_calls``.
    """
    pg = session.get_bind().dialect.name == "postgresql"
    # plan each statement for its words and ids: a plan cached for other words (after five
    # runs of the same text) walks every phrase for a rare one
    await plan_for_these_values(session)
    rows: list[Any] = []
    floor = limit + 1
    size, cursor = 4 * (limit + 1), before
    calls: list[int] | None = None
    walk, first = False, True
    found = seen = 0  # hits and ids of the current way of looking
    mine: list[int] | None = None  # the viewer's calls, once listed
    if pg and viewer_calls is not None and (share := await _phrase_share(session, terms)):
        # A word the statistics call rare enough: straight to the matches of his calls
        # (the first chunk would read as many phrases again, the newest matches being
        # mostly others'). Only when clearly cheaper (by half): the words may go together
        # more often than their shares multiplied say.
        density, phrases = share
        mine = await _viewer_calls(session, viewer_calls)
        if not mine:
            return [], None  # he sees no call
        if len(mine) > MAX_VIEWER_CALLS:
            first = False  # look through the matches
        elif 2 * density * (before or phrases) < _walk_reads(limit + 1, density, mine):
            first, size, calls = False, floor, mine
    while len(rows) <= limit:
        if walk:
            assert calls is not None
            ids = await _walk(session, calls, cursor, size)
        else:
            ids = await _candidates(session, terms, cursor, size, calls)
        if not ids:
            break
        stmt = (select(TranscriptPhrase, Call.started_at, Call.managers, Call.client_id,
                       Client.name)
                .join(Call, Call.id == TranscriptPhrase.call_id)
                .outerjoin(Client, Client.id == Call.client_id)
                .where(_among(session, ids), visible, *where)
                .order_by(TranscriptPhrase.id.desc()).limit(limit + 1 - len(rows)))
        if walk:
            stmt = stmt.where(matches(session, [terms]))
        if speaker is not None:
            stmt = stmt.where(TranscriptPhrase.speaker == speaker)
        chunk = (await session.execute(stmt)).all()
        rows += chunk
        found, seen = found + len(chunk), seen + len(ids)
        if len(ids) < size or len(rows) > limit:
            break
        need = limit + 1 - len(rows)
        cursor = ids[-1]
        if first and pg and viewer_calls is not None:
            # The first chunk did not fill the page: look from the viewer's side.
            first = False
            calls = mine if mine is not None else await _viewer_calls(session, viewer_calls)
            if not calls:
                break  # he sees no call (the calls he sees are among these)
            if len(calls) <= MAX_VIEWER_CALLS:
                density = len(ids) / (ids[0] - ids[-1] + 1)
                walk = _walk_is_cheaper(need, density, calls, cursor)
                found = seen = 0
                size = (max(floor, min(MAX_CHUNK, int(need * 1.5 / density))) if walk
                        else max(floor, need * 3 // 2))
                continue
            calls = None
        first = False
        size = _next_size(need, found, seen, size, floor)
    more = len(rows) > limit
    rows = rows[:limit]
    extensions = {m[0] for _, _, m, _, _ in rows if m}
    names = dict((await session.execute(select(User.extension, User.name).where(
        User.extension.in_(extensions)))).all()) if extensions else {}
    hits = [Hit(phrase_id=p.id, call_id=p.call_id, speaker=p.speaker, start=p.start,
                end=p.end, text=p.text, started_at=started, manager=m[0] if m else None,
                manager_name=names.get(m[0]) if m else None, client_id=client_id,
                client_name=client_name, fragments=fragments(p.text, terms))
            for p, started, m, client_id, client_name in rows]
    return hits, (hits[-1].phrase_id if more and hits else None)
