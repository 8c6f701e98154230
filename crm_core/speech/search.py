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
are not his (:func:`search`): his phrases or his calls walked newest first (the indexes of
migration 0032, and each call's lemmas and span of phrase ids kept by migration 0035's
triggers), or the matches of his calls.
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
    true,
)
from sqlalchemy import table as sql_table
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import Call
from crm_core.clients.models import Client
from crm_core.db import plan_for_these_values
from crm_core.errors import DomainError
from crm_core.people.users import names_by_extension
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


def _tsquery(groups: Sequence[Terms], *, adjacent: bool = True) -> str:
    """The same query as a PostgreSQL ``tsquery`` text. A lemma of several words («кто
    то») wants them side by side; without ``adjacent``, only all of them (what a vector
    without positions, like a call's, can tell)."""
    join = " <-> " if adjacent else " & "

    def word(forms: frozenset[str]) -> str:
        return "(" + " | ".join(sorted(w.replace(" ", join) for w in _clean(forms))) + ")"
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
                      size: int) -> list[int]:
    """Ids of the newest ``size`` phrases holding the words, below ``before``: from the
    full-text index alone, where each engine finds them fastest (FTS5 walks its rowids
    backwards; PostgreSQL picks the GIN or a backward scan of the key by the word's
    frequency, which it estimates well when no other condition is in the way).
    """
    if session.get_bind().dialect.name == "postgresql":
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


async def _matches_of_calls(session: AsyncSession, terms: Terms, before: int | None,
                            size: int, calls: list[int]) -> list[int]:
    """Ids of the newest ``size`` phrases of ``calls`` holding the words, below ``before``
    (PostgreSQL, words in very few phrases): every match below ``before`` from the GIN,
    kept if of those calls, then sorted. Told the calls and the order, the planner would
    rather walk the key backwards hoping to meet them soon, and may read every phrase of
    the base (seconds at 1,000,000 calls); the matches are a few thousand."""
    mine = select(TranscriptPhrase.id).where(
        matches(session, [terms]),
        TranscriptPhrase.call_id == any_(bindparam("viewer_calls", calls, type_=ARRAY(Integer))),
        true() if before is None else TranscriptPhrase.id < before)
    found = mine.cte("viewer_matches").prefix_with("MATERIALIZED")
    return list(await session.scalars(
        select(found.c.id).order_by(found.c.id.desc()).limit(size)))


_CALL_WORDS = sql_table("transcript_call_words", column("call_id"), column("first_phrase_id"),
                        column("last_phrase_id"), column("search_vector"))


def _call_batch(calls: list[int] | None, visible: ColumnElement[bool]) -> Select[Any]:
    """One batch of the viewer's calls, newest phrase first, and whether each holds every
    word (its row read by the key). His calls are walked from the index on
    ``last_phrase_id`` alone, checked against ``calls`` (``call_id + 0``: hashed, not looked
    up in the key); or, for a viewer with too many calls to list, each call walked is
    checked by ``visible`` (a few index probes: cheaper than his calls' list once he has
    tens of thousands)."""
    w, theirs = _CALL_WORDS, _CALL_WORDS.alias("theirs")
    walked = select(w.c.call_id, w.c.last_phrase_id).where(
        w.c.last_phrase_id < bindparam("upper"), w.c.first_phrase_id < bindparam("before"))
    if calls is not None:
        walked = walked.where((w.c.call_id + literal_column("0")) == any_(
            bindparam("calls", calls, type_=ARRAY(Integer))))
    else:
        walked = walked.join(Call, Call.id == w.c.call_id).where(visible)
    batch = (walked.order_by(w.c.last_phrase_id.desc()).limit(bindparam("batch"))
             .cte("walked").prefix_with("MATERIALIZED"))
    holds = theirs.c.search_vector.op("@@")(
        func.to_tsquery(literal_column("'simple'::regconfig"), bindparam("words")))
    return (select(batch.c.call_id, batch.c.last_phrase_id, holds.label("holds"))
            .join(theirs, theirs.c.call_id == batch.c.call_id)
            .order_by(batch.c.last_phrase_id.desc()))


_NO_ID = 2**31 - 1  # above every phrase id: no bound


async def _call_walk(session: AsyncSession, terms: Terms, calls: list[int] | None,
                     before: int | None, size: int, batch: int, *,
                     visible: ColumnElement[bool] | None = None) -> list[int]:
    """Ids of the newest ``size`` phrases of ``calls`` (None: of the calls passing
    ``visible``) holding the words, below ``before`` (PostgreSQL): the calls walked newest
    phrase first in batches (the first of ``batch`` calls, each next four times larger),
    each call's lemmas checked (``transcript_call_words``, migration 0035), and only the
    phrases of the calls that hold every word read (:func:`_matches_in_calls`).

    No phrase of a call is newer than its last phrase, so once a batch is done every
    match not older than its last call's last phrase is final: the calls left can only
    hold older ones. The walk stops when ``size`` matches are final, or at his last call.
    A word in 0.2 % of the phrases, for a manager with 2 % of 1,000,000 calls: about
    2,000 of his calls walked, 50 of them holding it, 1,000 phrases read, where the
    matches of the phrases' GIN would be ~30,000 phrases read to tell his from the rest.
    """
    words = _tsquery([terms], adjacent=False)
    found: list[int] = []
    upper = _NO_ID
    statement = _call_batch(calls, true() if visible is None else visible)
    while True:
        rows = (await session.execute(statement, {
            "upper": upper, "before": before or _NO_ID, "batch": batch,
            "words": words})).all()
        held = [call_id for call_id, _, holds in rows if holds]
        found += await _matches_in_calls(session, terms, before, size, held)
        if len(rows) < batch:  # every call walked
            return sorted(found, reverse=True)[:size]
        upper = rows[-1].last_phrase_id
        final = sorted((i for i in found if i >= upper), reverse=True)
        if len(final) >= size:
            return final[:size]
        batch = min(batch * 4, MAX_CHUNK)


async def _matches_in_calls(session: AsyncSession, terms: Terms, before: int | None,
                            size: int, held: list[int]) -> list[int]:
    """Ids of the newest ``size`` phrases of the calls ``held`` holding the words, below
    ``before`` (PostgreSQL): each of those calls' phrases read and checked, the phrases
    taken first: told the calls and the words at once, the planner would take every
    match of the base from the phrases' GIN again."""
    if not held:
        return []
    vector: ColumnElement[Any] = literal_column("transcript_phrases.search_vector")
    theirs = select(TranscriptPhrase.id, vector.label("search_vector")).where(
        TranscriptPhrase.call_id == any_(bindparam("held_calls", held, type_=ARRAY(Integer))),
        true() if before is None else TranscriptPhrase.id < before)
    phrases = theirs.cte("held_phrases").prefix_with("MATERIALIZED")
    query = func.to_tsquery(literal_column("'simple'::regconfig"), _tsquery([terms]))
    return list(await session.scalars(
        select(phrases.c.id).where(phrases.c.search_vector.op("@@")(query))
        .order_by(phrases.c.id.desc()).limit(size)))


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
# More calls than this are not listed: the calls walked are checked by the viewer's clause,
# or the matches narrowed by it (listing and sending 200,000 ids cost ~100 ms a statement).
MAX_VIEWER_CALLS = 50_000
# What a phrase id read from the index on (id, call_id) costs, against a phrase read.
INDEX_ENTRY_COST = 0.05
# What checking a call's lemmas costs (its row of ``transcript_call_words``), against a
# phrase read.
CALL_ROW_COST = 1.0
PHRASES_PER_CALL = 20  # assumed before the tables were first analysed
# What checking a call by the viewer's visibility clause costs (a few index probes),
# against a phrase read; and the least share of the calls assumed of a viewer with more
# than MAX_VIEWER_CALLS of them (5 % of a million).
CLAUSE_COST = 0.5
MIN_SHARE = 0.05


def _next_size(need: int, found: int, seen: int, size: int, floor: int) -> int:
    """The next chunk: what should hold ``need`` more hits at the share of hits among the
    ids seen so far (and half as many again), but at most four times the last one (a share
    read from a handful of hits can be far off; SQLite checks every id of a chunk it is
    given, so an overshoot costs more than a round)."""
    if found <= 0 or seen <= 0:
        return min(size * 4, MAX_CHUNK)
    return max(floor, min(MAX_CHUNK, size * 4, -(-need * seen * 3 // (found * 2))))


async def _viewer_calls(session: AsyncSession, viewer_calls: Select[int]) -> list[int] | None:
    """The viewer's call ids, each once, sorted, in one array (not tens of thousands of
    rows); None when ``viewer_calls`` names more than :data:`MAX_VIEWER_CALLS` (a call
    it names twice counts twice: a list cut short must never pass for all his calls)."""
    found = viewer_calls.limit(MAX_VIEWER_CALLS + 1).subquery()
    ids = await session.scalar(select(func.array_agg(found.c[0])))
    if ids is not None and len(ids) > MAX_VIEWER_CALLS:
        return None
    return sorted(set(ids or ()))


@dataclass(frozen=True)
class _Shares:
    """What PostgreSQL's statistics say of the words (see :func:`_phrase_share`)."""

    density: float  # the estimated share of phrases holding the words
    phrases: float
    per_call: float  # phrases of a transcribed call, on average


async def _phrase_share(session: AsyncSession, terms: Terms) -> _Shares | None:
    """PostgreSQL's statistics of the phrases' lexemes: the estimated share of phrases
    holding the words (a lexeme it does not list as common counted at half the least
    common one's share, as the planner counts it; words assumed independent), how many
    phrases there are, and how many a transcribed call has. None before the table was
    first analysed."""
    row = (await session.execute(sql_text(
        "SELECT most_common_elems::text::text[], most_common_elem_freqs, "
        "(SELECT reltuples FROM pg_class WHERE relname = 'transcript_phrases'), "
        "(SELECT reltuples FROM pg_class WHERE relname = 'transcript_call_words') "
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
    per_call = row[2] / row[3] if row[3] and row[3] > 0 else PHRASES_PER_CALL
    return _Shares(share, float(row[2]), float(per_call))


Way = str  # "walk" | "call_walk" | "matches": how a viewer's hits are looked for


def _cheapest_way(need: int, density: float, calls: list[int], per_call: float,
                  below: int) -> Way:
    """How to find ``need`` hits among the viewer's ``calls`` reading the least, the words
    being in ``density`` of the phrases and a call having ``per_call`` phrases:

    - ``walk``: his phrases newest first, each checked (:func:`_walk`);
    - ``call_walk``: his calls newest first, each call's lemmas checked, the phrases of
      those that hold the words read (:func:`_call_walk`);
    - ``matches``: every match below the cursor (``below``) from the GIN
      (:func:`_matches_of_calls`).
    """
    reads = _reads(need, density, calls, per_call, below)
    return min(reads, key=lambda way: reads[way])


def _reads(need: int, density: float, calls: list[int], per_call: float,
           below: int) -> dict[Way, float]:
    """What each way reads for ``need`` hits (see :func:`_cheapest_way`), in phrases."""
    return {"walk": _walk_reads(need, density, calls),
            "call_walk": _call_walk_reads(need, density, calls, per_call),
            "matches": density * below}


def _share(calls: list[int]) -> float:
    """The viewer's part of the calls: his calls over the newest call id he has (the
    newest calls are everyone's)."""
    return len(calls) / max(max(calls), 1)


def _walk_reads(need: int, density: float, calls: list[int]) -> float:
    """What walking ``calls``' phrases for ``need`` hits reads: ``need / density`` of his
    phrases, and ``need / (density * share)`` entries of the index to find them."""
    return need / max(density, 1e-9) * (1 + INDEX_ENTRY_COST / max(_share(calls), 1e-6))


def _calls_to_walk(need: int, density: float, per_call: float) -> float:
    """How many of his calls hold ``need`` hits: a call has ``density * per_call`` of them."""
    return need / max(density * per_call, 1e-9)


def _clause_walk_reads(need: int, density: float, per_call: float, share: float) -> float:
    """What walking a viewer's calls through his visibility clause reads for ``need`` hits,
    his share of the calls being ``share`` (see :func:`_walked_reads`)."""
    return _walked_reads(need, density, per_call, share, CLAUSE_COST)


def _call_walk_reads(need: int, density: float, calls: list[int], per_call: float) -> float:
    """What walking ``calls`` for ``need`` hits reads (see :func:`_walked_reads`)."""
    return _walked_reads(need, density, per_call, _share(calls), INDEX_ENTRY_COST,
                         most=len(calls))


def _walked_reads(need: int, density: float, per_call: float, share: float,
                  passed_cost: float, most: float = float("inf")) -> float:
    """What a walk of the viewer's calls reads for ``need`` hits: each call passed on the
    way (``passed_cost``: an index entry, or his clause checked), each of his calls'
    lemmas, and every phrase of his calls holding the words (words assumed independent:
    more calls hold them all than that says); at most ``most`` of his calls."""
    walked = min(most, _calls_to_walk(need, density, per_call))
    held = walked * min(1.0, density * per_call)
    return walked / max(share, 1e-6) * passed_cost + walked * CALL_ROW_COST + held * per_call


def _first_size(way: Way, need: int, floor: int, density: float, per_call: float) -> int:
    """The first chunk of a way from the viewer's side: what should hold ``need`` hits,
    and half as many again (for ``call_walk``, the first batch of his calls to walk)."""
    if way == "walk":
        return max(floor, min(MAX_CHUNK, int(need * 1.5 / max(density, 1e-9))))
    if way == "call_walk":
        return max(64, min(MAX_CHUNK, int(_calls_to_walk(need, density, per_call) * 1.5)))
    return max(floor, need * 3 // 2)


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
    and looks from the viewer's side, the way that reads least by the first chunk's share
    of matches among the phrases it spans (:func:`_cheapest_way`):

    - walk his phrases newest first through the index on (id, call_id), which reads no
      phrase, and keep those holding the words (a word in most of his phrases);
    - walk his calls newest first, check each call's lemmas, and read the phrases of those
      holding the words (a word in some of his calls: a manager with 2 % of 1,000,000
      calls walks ~2,000 of them for a word in 0.2 % of the phrases);
    - take every match of his calls below the cursor from the GIN and sort them (a word in
      so few phrases that they are fewer than his calls to walk).

    A viewer with more than :data:`MAX_VIEWER_CALLS` calls (a supervisor of a big team)
    is not listed: after the first chunk, his calls are walked newest first each checked
    by ``visible`` when that reads less than the matches left to read, by his share of
    the first chunk's matches (:func:`_clause_walk_reads`).

    When PostgreSQL's statistics of the lexemes say his side is clearly cheaper than the
    first chunk, it is taken at once (:func:`_phrase_share`). Either way each chunk is
    still narrowed by ``visible`` and ``where``, so the hits, their order and the pages are
    those of the search without ``viewer_calls``.
    """
    pg = session.get_bind().dialect.name == "postgresql"
    # plan each statement for its words and ids: a plan cached for other words (after five
    # runs of the same text) walks every phrase for a rare one
    await plan_for_these_values(session)
    rows: list[Any] = []
    floor = limit + 1
    size, cursor = 4 * (limit + 1), before
    calls: list[int] | None = None  # the viewer's, once he is looked at from his side
    way: Way | None = None  # None: every match, newest first
    first = True
    found = seen = 0  # hits and ids of the current way of looking
    mine: list[int] | None = None  # the viewer's calls, once listed (None: too many)
    listed = False
    density, per_call = 0.0, float(PHRASES_PER_CALL)
    if pg and viewer_calls is not None and (shares := await _phrase_share(session, terms)):
        # Words the statistics call rare enough: straight to his side (the first chunk
        # would read more phrases than that, the newest matches being mostly others').
        # Only when clearly cheaper (by half): the words may go together more often than
        # their shares multiplied say.
        density, per_call = shares.density, shares.per_call
        below = before or int(shares.phrases)
        mine, listed = await _viewer_calls(session, viewer_calls), True
        if mine == []:
            return [], None  # he sees no call
        if mine is not None:  # else: too many to list, see after the first chunk
            chosen = _cheapest_way(floor, density, mine, per_call, below)
            cost = _reads(floor, density, mine, per_call, below)[chosen]
            if 2 * cost < min(size / max(density, 1e-9), density * below):
                first, calls, way = False, mine, chosen
                size = _first_size(way, floor, floor, density, per_call)
    while len(rows) <= limit:
        want = limit + 1 - len(rows)  # a call walk's ids are all matches: no more than these
        if way == "walk":
            assert calls is not None
            ids = await _walk(session, calls, cursor, size)
        elif way == "call_walk":  # his calls listed, or (too many) checked by ``visible``
            ids = await _call_walk(session, terms, calls, cursor, want, size, visible=visible)
        elif way == "matches":
            assert calls is not None
            ids = await _matches_of_calls(session, terms, cursor, size, calls)
        else:
            ids = await _candidates(session, terms, cursor, size)
        if not ids:
            break
        stmt = (select(TranscriptPhrase, Call.started_at, Call.managers, Call.client_id,
                       Client.name)
                .join(Call, Call.id == TranscriptPhrase.call_id)
                .outerjoin(Client, Client.id == Call.client_id)
                .where(_among(session, ids), visible, *where)
                .order_by(TranscriptPhrase.id.desc()).limit(want))
        if way == "walk":
            stmt = stmt.where(matches(session, [terms]))
        if speaker is not None:
            stmt = stmt.where(TranscriptPhrase.speaker == speaker)
        chunk = (await session.execute(stmt)).all()
        rows += chunk
        found, seen = found + len(chunk), seen + len(ids)
        if len(ids) < (want if way == "call_walk" else size) or len(rows) > limit:
            break
        need = limit + 1 - len(rows)
        cursor = ids[-1]
        if first and pg and viewer_calls is not None:
            # The first chunk did not fill the page: look from the viewer's side.
            first = False
            if not listed:
                mine, listed = await _viewer_calls(session, viewer_calls), True
            if mine == []:
                break  # he sees no call (the calls he sees are among these)
            density = len(ids) / (ids[0] - ids[-1] + 1)
            if mine is not None:
                calls = mine
                way = _cheapest_way(need, density, calls, per_call, cursor)
                found = seen = 0
                size = _first_size(way, need, floor, density, per_call)
                continue
            # Too many calls to list (a supervisor of a big team): his share of the
            # matches so far says whether walking the calls through his clause reads less
            # than the matches still to read before the page is full.
            share = max(found / seen, MIN_SHARE)
            if _clause_walk_reads(need, density, per_call, share) < min(
                    need / share / max(density, 1e-9), density * cursor):
                way = "call_walk"
                found = seen = 0
                size = _first_size(way, need, floor, density, per_call)
                continue
        first = False
        size = _next_size(need, found, seen, size, floor)
    more = len(rows) > limit
    rows = rows[:limit]
    extensions = {m[0] for _, _, m, _, _ in rows if m}
    names = await names_by_extension(session, extensions)
    hits = [Hit(phrase_id=p.id, call_id=p.call_id, speaker=p.speaker, start=p.start,
                end=p.end, text=p.text, started_at=started, manager=m[0] if m else None,
                manager_name=names.get(m[0]) if m else None, client_id=client_id,
                client_name=client_name, fragments=fragments(p.text, terms))
            for p, started, m, client_id, client_name in rows]
    return hits, (hits[-1].phrase_id if more and hits else None)
