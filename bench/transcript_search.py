"""Transcript search at N transcribed calls of ~300 words each, on SQLite and on a real PostgreSQL.

Writes N calls (50 managers in 5 teams, each call with its manager's leg) and their
transcripts' phrases as the product indexes them (:func:`crm_core.speech.search.phrases_of`
cuts and lemmatizes; here the phrases are cut the same way from generated words, and each
word's lemma is the product's ``best_lemma``). Words come from a vocabulary of ~160
conversational lemmas in all their inflected forms, drawn with Zipf frequencies, so some
query words are in most calls and some in few; a competitor's name is put in 2 % of the
calls and «расторгнуть» in 0.3 %.

Then times ``crm_core.speech.search.search`` (one page of 50 hits, as
``GET /api/transcripts/search`` asks) for a mix of queries (a rare word, a word of middling
frequency, a common word, two words, each typed in another inflected form than most of
the calls say it), as the admin (every call) and as a manager (his calls only, through
the product's visibility clause and the ids of his calls, as the search route passes them;
and once more without those ids, through the matches only, for comparison), and as the
supervisor of one of the five teams (a fifth of the calls: too many to list). In the same
run: a plain ``LIKE '%stem%'`` over the phrases' text, newest first (what a first version
without the index would do).

    .venv/bin/python bench/transcript_search.py [--calls 100000] [--backend sqlite postgresql]
        [--queries 200] [--scans 10] [--migration-calls 10000] [--url URL]

``--url`` searches a database loaded before instead (the same measurements, no load).
``--migration-calls M`` times instead migration 0024 indexing M transcripts written
before it (300 words each, turns of 15 words), as an upgrade of an installed base does.

Target (issue 19): search p95 < 100 ms over 1,000,000 calls on PostgreSQL
(``--calls 1000000 --backend postgresql``: about 20 million phrases; loading takes long).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import ColumnElement, Select, insert, select, text, true

from bench._common import Databases
from crm_core.calls.models import Call, CallLeg
from crm_core.db import create_engine, session_factory
from crm_core.people import access
from crm_core.people.models import Team, User
from crm_core.speech.models import TranscriptPhrase
from crm_core.speech.search import MAX_PHRASE_WORDS, query_terms, search
from crm_core.speech.words import analyzer, best_lemma

TARGET_MS = 100.0
MANAGERS = 50
SUPERVISOR = 900  # heads team 1: its ten managers, a fifth of the calls
LEMMAS = """
да нет здравствуйте добрый день вечер утро спасибо пожалуйста хорошо понятно конечно
компания менеджер клиент договор счёт оплата цена стоимость скидка тариф услуга предложение
условие срок поставка доставка заказ товар склад объём партия качество гарантия сервис
поддержка звонок встреча письмо почта документ презентация демонстрация пробный период
месяц неделя год завтра сегодня вчера понедельник пятница время минута час рубль процент
деньги бюджет директор бухгалтер отдел руководитель решение вопрос задача проблема интерес
потребность конкурент рынок партнёр система программа сайт интеграция настройка обучение
подключение отчёт данные номер телефон адрес офис город регион сотрудник команда проект
говорить сказать знать думать подумать позвонить перезвонить отправить прислать получить
посмотреть обсудить согласовать подписать оплатить купить заказать предложить дать
сделать работать помочь понять объяснить уточнить проверить рассказать показать ждать
хотеть мочь нужный важный удобный дорогой дешёвый новый старый большой маленький
хороший плохой быстрый простой сложный первый последний следующий каждый весь наш ваш
""".split()
COMPETITOR = "мегафон"
RARE = "расторгнуть"


def vocabulary(rng: random.Random) -> tuple[list[str], list[float], dict[str, str]]:
    """Inflected forms of the lemmas with Zipf weights, and each form's best lemma."""
    forms: list[str] = []
    weights: list[float] = []
    lemma_of: dict[str, str] = {}
    order = LEMMAS[:]
    rng.shuffle(order)
    for rank, lemma in enumerate(order, start=1):
        lexeme = {p.word.replace("ё", "е") for p in analyzer().parse(lemma)[0].lexeme}
        for form in sorted(lexeme)[:12]:
            forms.append(form)
            weights.append(1.0 / rank / len(lexeme))
    for extra in (COMPETITOR, RARE, "расторгнем", "мегафона"):
        forms.append(extra)
        weights.append(0.0)
    for form in forms:
        lemma_of[form] = best_lemma(form)
    return forms, weights, lemma_of


def phrases_of_call(rng: random.Random, forms: list[str], cum_weights: list[float],
                    lemma_of: dict[str, str], words: int, call: int) -> list[dict[str, Any]]:
    said = rng.choices(forms, cum_weights=cum_weights, k=words)
    if rng.random() < 0.02:
        said[rng.randrange(words)] = rng.choice((COMPETITOR, "мегафона"))
    if rng.random() < 0.003:
        said[rng.randrange(words)] = rng.choice((RARE, "расторгнем"))
    out, at, i, speaker = [], 0.5, 0, "manager"
    while i < words:
        n = min(rng.randint(4, MAX_PHRASE_WORDS), words - i)
        chunk = said[i:i + n]
        out.append({"call_id": call, "speaker": speaker, "start": round(at, 2),
                    "end": round(at + 0.4 * n, 2), "text": " ".join(chunk),
                    "lemmas": " ".join(lemma_of[w] for w in chunk)})
        at += 0.4 * n + 1.5
        i += n
        speaker = "client" if speaker == "manager" else "manager"
    return out


async def load(url: str, calls: int, words: int, seed: int = 20261205) -> dict[str, Any]:
    """Write the calls, their legs and phrases; seconds taken and phrases written.

    The phrases of the next batch are made in a thread while the current one is written
    (the database does most of the work then); on PostgreSQL the phrases' secondary
    indexes are dropped for the load and built once at the end, which is several times
    faster than keeping a GIN up to date through twenty million rows, and so are the calls'
    lemmas (``transcript_call_words``, kept by triggers that would find each call's
    phrases without the index on ``call_id``): filled at the end as migration 0035 fills them.
    """
    rng = random.Random(seed)
    forms, weights, lemma_of = vocabulary(rng)
    cum_weights = list(itertools.accumulate(weights))
    engine = create_engine(url)
    t0 = time.perf_counter()
    start = datetime(2025, 12, 1, tzinfo=UTC)
    phrases = 0
    columns = ["call_id", "speaker", "start", "end", "text", "lemmas"]

    def make(ids: range) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
        call_rows, leg_rows, phrase_rows = [], [], []
        for c in ids:
            manager = 1 + c % MANAGERS
            at = start + timedelta(seconds=c * 31_536_000 // calls)
            call_rows.append({"id": c, "linkedid": f"b.{c}", "direction": "outbound",
                              "status": "answered", "started_at": at,
                              "ended_at": at + timedelta(minutes=3), "talk_seconds": 170.0,
                              "managers": [str(100 + manager)], "created_at": at,
                              "updated_at": at})
            leg_rows.append({"call_id": c, "uniqueid": f"b.{c}-m", "channel": "PJSIP/x",
                             "role": "manager", "extension": str(100 + manager),
                             "user_id": manager, "started_at": at})
            phrase_rows += phrases_of_call(rng, forms, cum_weights, lemma_of, words, c)
        return call_rows, leg_rows, phrase_rows

    pg = engine.dialect.name == "postgresql"
    indexes: list[str] = []
    batch = 2000
    batches = [range(first, min(first + batch, calls + 1)) for first in range(1, calls + 1, batch)]
    try:
        async with session_factory(engine)() as session, session.begin():
            now = datetime.now(UTC)
            await session.execute(insert(Team), [{"id": t, "name": f"Отдел {t}",
                                                  "created_at": now} for t in range(1, 6)])
            await session.execute(insert(User), [
                {"id": m, "username": f"m{m}", "name": f"Менеджер {m}", "role": "manager",
                 "extension": str(100 + m), "team_id": 1 + m % 5, "active": True,
                 "created_at": now} for m in range(1, MANAGERS + 1)] + [
                {"id": SUPERVISOR, "username": "s1", "name": "Руководитель отдела 1",
                 "role": "supervisor", "extension": "900", "team_id": 1, "heads_team": True,
                 "active": True, "created_at": now}])
            if pg:
                indexes = list(await session.scalars(text(
                    "SELECT indexdef FROM pg_indexes WHERE tablename = 'transcript_phrases' "
                    "AND indexname NOT LIKE 'pk_%'")))
                for name in await session.scalars(text(
                        "SELECT indexname FROM pg_indexes WHERE tablename = "
                        "'transcript_phrases' AND indexname NOT LIKE 'pk_%'")):
                    await session.execute(text(f'DROP INDEX "{name}"'))
                await session.execute(text("ALTER TABLE transcript_phrases DISABLE TRIGGER USER"))
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=1) as maker:
            pending = loop.run_in_executor(maker, make, batches[0]) if batches else None
            for n, ids in enumerate(batches):
                assert pending is not None
                call_rows, leg_rows, phrase_rows = await pending
                pending = (loop.run_in_executor(maker, make, batches[n + 1])
                           if n + 1 < len(batches) else None)
                phrases += len(phrase_rows)
                async with session_factory(engine)() as session, session.begin():
                    await session.execute(insert(Call.__table__), call_rows)
                    await session.execute(insert(CallLeg.__table__), leg_rows)
                    if pg:  # COPY: twenty million rows through INSERTs would take hours
                        conn = await session.connection()
                        raw = (await conn.get_raw_connection()).driver_connection
                        await raw.copy_records_to_table(
                            "transcript_phrases", columns=columns,
                            records=[tuple(r[k] for k in columns) for r in phrase_rows])
                    else:
                        await session.execute(insert(TranscriptPhrase), phrase_rows)
                if ids[0] % 20_000 < batch:
                    print(f"  loaded {ids[-1]:,} calls, {phrases:,} phrases, "
                          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
        async with engine.connect() as conn:
            if pg:  # VACUUM moves the GIN's pending list into the index, as autovacuum would
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("SET maintenance_work_mem = '1GB'"))
                for indexdef in indexes:
                    await conn.execute(text(indexdef))
                    print(f"  built {indexdef.split(' ON ')[0]}, "
                          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
                await conn.execute(text(CALL_WORDS))
                await conn.execute(text("ALTER TABLE transcript_phrases ENABLE TRIGGER USER"))
                print(f"  filled transcript_call_words, {time.perf_counter() - t0:.0f} s",
                      file=sys.stderr)
                await conn.execute(text("VACUUM ANALYZE"))
            else:
                await conn.execute(text("ANALYZE"))
                await conn.commit()
    finally:
        await engine.dispose()
    return {"seconds": time.perf_counter() - t0, "phrases": phrases}


# what migration 0035 does once, for the calls loaded with its triggers off
CALL_WORDS = (
    "INSERT INTO transcript_call_words (call_id, first_phrase_id, last_phrase_id, "
    "search_vector) SELECT call_id, min(id), max(id), "
    "strip(to_tsvector('simple'::regconfig, string_agg(lemmas, ' '))) "
    "FROM transcript_phrases GROUP BY call_id")


QUERIES = [  # (kind, what is typed): each in another form than most calls say it
    ("rare word (0.3 % of calls)", "расторгнуть"),
    ("competitor (2 % of calls)", "мегафоном"),
    ("middling word", "интеграцией"),
    ("common word", "скидкой"),
    ("two words", "договор подписали"),
    ("very common word", "хорошего"),
]


def like(stem: str) -> ColumnElement[bool]:
    return TranscriptPhrase.text.like(f"%{stem}%")


async def measure(url: str, queries: int, scans: int) -> dict[str, Any]:
    engine = create_engine(url)
    out: dict[str, Any] = {}
    try:
        async with session_factory(engine)() as session:
            manager = await session.get(User, 7)
            supervisor = await session.get(User, SUPERVISOR)
            assert manager is not None and supervisor is not None
            viewers: dict[str, tuple[ColumnElement[bool], Select[int] | None]] = {
                "admin": (true(), None),  # call_ids_seen_by: None for an admin
                "manager": (await access.calls_filter(session, manager),
                            await access.call_ids_seen_by(session, manager)),
                "supervisor": (await access.calls_filter(session, supervisor),
                               await access.call_ids_seen_by(session, supervisor)),
                # the same manager searched through the matches only (no walk of his
                # calls' phrases), to show what looking from his side buys
                "manager_matches": (await access.calls_filter(session, manager), None)}
            for visible, theirs in viewers.values():  # warm: connection, statement caches
                for _, typed in QUERIES:
                    await search(session, query_terms(typed), visible=visible, limit=50,
                                 viewer_calls=theirs)
            for viewer, (visible, theirs) in viewers.items():
                times: list[float] = []
                by_kind: dict[str, list[float]] = {}
                found: dict[str, int] = {}
                for i in range(queries):
                    kind, typed = QUERIES[i % len(QUERIES)]
                    t0 = time.perf_counter()
                    hits, _ = await search(session, query_terms(typed), visible=visible,
                                           limit=50, viewer_calls=theirs)
                    elapsed = (time.perf_counter() - t0) * 1000
                    times.append(elapsed)
                    by_kind.setdefault(kind, []).append(elapsed)
                    found[kind] = len(hits)
                out[viewer] = {"p50": statistics.median(times), "p95": p95(times),
                               "max": max(times), "found": found,
                               "kinds": {k: p95(v) for k, v in by_kind.items()},
                               "spread": {k: (statistics.median(v), p95(v), max(v))
                                          for k, v in by_kind.items()}}
            # the plain LIKE, newest first, one page of 50: the stems of the same queries
            scan_times: dict[str, list[float]] = {}
            for i in range(scans * len(QUERIES)):
                kind, typed = QUERIES[i % len(QUERIES)]
                stem = typed.split()[0][:5]
                t0 = time.perf_counter()
                await session.execute(
                    select(TranscriptPhrase.id, Call.started_at)
                    .join(Call, Call.id == TranscriptPhrase.call_id)
                    .where(like(stem)).order_by(TranscriptPhrase.id.desc()).limit(51))
                scan_times.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
            every = [t for ts in scan_times.values() for t in ts]
            out["like"] = {"p50": statistics.median(every), "p95": p95(every),
                           "kinds": {k: p95(v) for k, v in scan_times.items()}}
    finally:
        await engine.dispose()
    return out


async def time_migration(url: str, calls: int) -> float:
    """Seconds migration 0024 takes to index ``calls`` transcripts written before it."""
    import json

    from crm_core.db import upgrade

    await upgrade(url, "0023_routing_did_override")
    rng = random.Random(1)
    forms, weights, _ = vocabulary(rng)
    engine = create_engine(url)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        for first in range(0, calls, 1000):
            async with engine.begin() as conn:
                ids = []
                for i in range(first, min(first + 1000, calls)):
                    at = start + timedelta(minutes=i)
                    ids.append((await conn.execute(insert(Call.__table__).values(
                        linkedid=f"m.{i}", direction="outbound", status="answered",
                        started_at=at, managers=["101"], created_at=at, updated_at=at)
                        .returning(Call.__table__.c.id))).scalar_one())
                rows = []
                for call_id in ids:
                    said = rng.choices(forms, weights=weights, k=300)
                    sides: dict[str, list[dict[str, Any]]] = {"manager": [], "client": []}
                    for j, w in enumerate(said):
                        sides["client" if (j // 15) % 2 else "manager"].append(
                            {"word": w, "start": j * 0.4, "end": j * 0.4 + 0.3, "conf": 0.9})
                    rows.append({"c": call_id, "t": start, "d": json.dumps(
                        {"duration": 120, "model": "bench", "speakers": sides})})
                await conn.execute(text(
                    "INSERT INTO transcripts (call_id, model, duration, data, created_at) "
                    "VALUES (:c, 'bench', 120, :d, :t)"), rows)
    finally:
        await engine.dispose()
    t0 = time.perf_counter()
    await upgrade(url)
    return time.perf_counter() - t0


def p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def main(args: argparse.Namespace) -> None:
    if args.url:  # a database this script loaded before: search it again
        print(f"{args.url}: {args.queries} searches per viewer, {args.scans} LIKE scans per "
              "query kind")
        report(await measure(args.url, args.queries, args.scans))
        return
    with Databases(want_pg="postgresql" in args.backend) as dbs:
        if args.migration_calls:
            for backend in args.backend:
                url = str(dbs.dir / "migration.sqlite3") if backend == "sqlite" else ""
                url = (f"sqlite+aiosqlite:///{url}" if backend == "sqlite"
                       else await dbs.fresh_empty())
                seconds = await time_migration(url, args.migration_calls)
                print(f"[{backend}] migration 0024 indexed {args.migration_calls:,} "
                      f"transcripts in {seconds:.1f} s")
            return
        print(f"{args.calls:,} calls of {args.words} words; {args.queries} searches per "
              f"viewer, {args.scans} LIKE scans per query kind")
        for backend in args.backend:
            url = await dbs.fresh(backend)
            loaded = await load(url, args.calls, args.words)
            print(f"\n[{backend}] loaded {loaded['phrases']:,} phrases in "
                  f"{loaded['seconds']:.0f} s")
            report(await measure(url, args.queries, args.scans))


def report(result: dict[str, Any]) -> None:
    viewers = ("admin", "manager", "supervisor", "manager_matches")
    print(f"  {'viewer':<16}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}  target")
    for viewer in viewers:
        r = result[viewer]
        ok = "ok" if r["p95"] < TARGET_MS else "OVER"
        print(f"  {viewer:<16}{r['p50']:>8.1f}{r['p95']:>8.1f}{r['max']:>8.1f}  {ok}")
    scan = result["like"]
    print(f"  {'LIKE':<16}{scan['p50']:>8.1f}{scan['p95']:>8.1f}")
    print(f"  by query, p50/p95/max ms: {'kind':<28}"
          + "".join(f"{v:>22}" for v in viewers) + f"{'LIKE p95':>10}  hits")
    for kind, _ in QUERIES:
        cells = "".join("{:>22}".format("/".join(f"{x:.1f}" for x in result[v]["spread"][kind]))
                        for v in viewers)
        hits = "/".join(str(result[v]["found"][kind]) for v in viewers)
        print(f"  {'':<26}{kind:<28}{cells}{scan['kinds'][kind]:>10.1f}  {hits}")
    print(f"  ratio of p95, LIKE / index (admin): "
          f"{scan['p95'] / result['admin']['p95']:.0f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--words", type=int, default=300)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--scans", type=int, default=10)
    parser.add_argument("--migration-calls", type=int, default=0)
    parser.add_argument("--url", default="",
                        help="search a database loaded before (no load, no new server)")
    parser.add_argument("--backend", nargs="+", choices=["sqlite", "postgresql"],
                        default=["sqlite"])
    asyncio.run(main(parser.parse_args()))
