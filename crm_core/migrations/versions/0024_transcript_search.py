"""transcript search: the phrase index of transcripts, and phrase dictionaries.

- ``transcript_phrases``: each phrase of each transcript (call, speaker, seconds, text,
  and the dictionary form of each word), with each backend's full-text index over the
  lemmas: an FTS5 table kept by triggers on SQLite, a generated ``tsvector``
  (configuration ``'simple'``, see ``crm_core.speech.search``) with a GIN index on
  PostgreSQL;
- ``phrase_dictionaries``: named lists of phrases counted per manager and week.

Every existing transcript is indexed here, calls in the order they started (search
lists newest phrase ids first): about 12 s per 10,000 transcripts of 300 words, so
two minutes per 100,000 (bench/RESULTS.md, «Transcript search»). The phrase cutting and lemmatizing below are a frozen
copy of ``crm_core.speech.dialogue.turns`` and ``crm_core.speech.search.phrases_of`` as
released with this revision; a later change to them needs a migration that reindexes.

SQLite: a later ``batch_alter_table`` on ``transcript_phrases`` recreates the table and
loses the triggers: such a migration must create them again.

Revision ID: 0024_transcript_search
Revises: 0023_routing_did_override

Frozen once released: do not import application code here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0024_transcript_search"
down_revision: str | None = "0023_routing_did_override"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
_BATCH = 200
_GAP = 1.2
_MAX_WORDS = 30
_PART = re.compile(r"[a-zа-я0-9]+")

_SQLITE = [
    "CREATE VIRTUAL TABLE transcript_phrases_fts USING fts5(lemmas, "
    "content='transcript_phrases', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER transcript_phrases_fts_insert AFTER INSERT ON transcript_phrases BEGIN "
    "INSERT INTO transcript_phrases_fts(rowid, lemmas) VALUES (new.id, new.lemmas); END",
    "CREATE TRIGGER transcript_phrases_fts_delete AFTER DELETE ON transcript_phrases BEGIN "
    "INSERT INTO transcript_phrases_fts(transcript_phrases_fts, rowid, lemmas) "
    "VALUES ('delete', old.id, old.lemmas); END",
    "CREATE TRIGGER transcript_phrases_fts_update AFTER UPDATE ON transcript_phrases BEGIN "
    "INSERT INTO transcript_phrases_fts(transcript_phrases_fts, rowid, lemmas) "
    "VALUES ('delete', old.id, old.lemmas); "
    "INSERT INTO transcript_phrases_fts(rowid, lemmas) VALUES (new.id, new.lemmas); END",
]
_POSTGRESQL = [
    "ALTER TABLE transcript_phrases ADD COLUMN search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, lemmas)) STORED",
    "CREATE INDEX ix_transcript_phrases_search_vector ON transcript_phrases "
    "USING gin (search_vector)",
]


def upgrade() -> None:
    op.create_table(
        "transcript_phrases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(length=10), nullable=False),
        sa.Column("start", sa.Double(), nullable=False),
        sa.Column("end", sa.Double(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("lemmas", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], ondelete="CASCADE",
                                name=op.f("fk_transcript_phrases_call_id_calls")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcript_phrases")),
    )
    op.create_index(op.f("ix_transcript_phrases_call_id"), "transcript_phrases", ["call_id"])
    op.create_table(
        "phrase_dictionaries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("phrases", _JSON, nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_phrase_dictionaries_created_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phrase_dictionaries")),
    )
    bind = op.get_bind()
    for statement in _POSTGRESQL if bind.dialect.name == "postgresql" else _SQLITE:
        op.execute(statement)
    _index_existing(bind)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE transcript_phrases_fts")  # its triggers go with the table below
    op.drop_table("phrase_dictionaries")
    op.drop_index(op.f("ix_transcript_phrases_call_id"), table_name="transcript_phrases")
    op.drop_table("transcript_phrases")


# -- indexing the transcripts made before this revision (a frozen copy, see above) ----------

_TRANSCRIPTS = sa.table("transcripts", sa.column("call_id", sa.Integer()),
                        sa.column("data", _JSON))
_CALLS = sa.table("calls", sa.column("id", sa.Integer()), sa.column("started_at"))
_PHRASES = sa.table("transcript_phrases", sa.column("call_id", sa.Integer()),
                    sa.column("speaker", sa.String()), sa.column("start", sa.Double()),
                    sa.column("end", sa.Double()), sa.column("text", sa.Text()),
                    sa.column("lemmas", sa.Text()))


def _turns(transcript: dict[str, Any]) -> list[dict[str, Any]]:
    words = sorted(((w, speaker) for speaker, ws in (transcript.get("speakers") or {}).items()
                    for w in ws), key=lambda pair: (float(pair[0]["start"]), pair[1]))
    out: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    count = 0
    for word, speaker in words:
        start, end = float(word["start"]), float(word["end"])
        if current is None or current["speaker"] != speaker or start - current["end"] > _GAP \
                or count >= _MAX_WORDS:
            if current is not None:
                out.append(current)
            current = {"speaker": speaker, "start": round(start, 2), "end": round(end, 2),
                       "text": str(word["word"])}
            count = 0
        else:
            current["text"] += f" {word['word']}"
            current["end"] = round(max(current["end"], end), 2)
        count += 1
    if current is not None:
        out.append(current)
    return out


def _index_existing(bind: sa.engine.Connection) -> None:
    import pymorphy3

    analyzer = pymorphy3.MorphAnalyzer(lang="ru")
    cache: dict[str, str] = {}

    def lemma(part: str) -> str:
        if part not in cache:
            cache[part] = analyzer.parse(part)[0].normal_form.lower().replace("ё", "е")
        return cache[part]

    last = None
    while True:
        stmt = (sa.select(_TRANSCRIPTS.c.call_id, _TRANSCRIPTS.c.data, _CALLS.c.started_at)
                .join(_CALLS, _CALLS.c.id == _TRANSCRIPTS.c.call_id)
                .order_by(_CALLS.c.started_at, _CALLS.c.id).limit(_BATCH))
        if last is not None:
            stmt = stmt.where(sa.tuple_(_CALLS.c.started_at, _CALLS.c.id) > sa.tuple_(*last))
        batch = bind.execute(stmt).all()
        if not batch:
            return
        rows = []
        for call_id, data, _ in batch:
            for turn in _turns(data or {}):
                parts = _PART.findall(turn["text"].lower().replace("ё", "е"))
                if parts:
                    rows.append({"call_id": call_id, "speaker": str(turn["speaker"])[:10],
                                 "start": float(turn["start"]), "end": float(turn["end"]),
                                 "text": turn["text"],
                                 "lemmas": " ".join(lemma(p) for p in parts)})
        if rows:
            bind.execute(_PHRASES.insert(), rows)
        last = (batch[-1][2], batch[-1][0])
