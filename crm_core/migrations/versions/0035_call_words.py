"""call words: on PostgreSQL, each transcribed call's lemmas and the span of its phrase ids.

Revision ID: 0035_call_words
Revises: 0034_client_status_days

Frozen once released: do not import application code here.

A manager's search for a word in few phrases took every match of his calls from the
phrases' GIN: at 1,000,000 calls a word in 0.1-0.3 % of the phrases has 20,000-33,000
matches, and telling his from the others' read the heap page of each (~30,000 pages,
whatever share of the calls he sees). ``transcript_call_words`` holds one row per call:
its lemmas as a tsvector without positions, and its first and last phrase ids. Search
walks the viewer's calls newest phrase first through the index on ``last_phrase_id``
(which carries the call and its first phrase id, so the walk reads no row), checks each
call's lemmas, and reads only the phrases of the calls that hold the words
(``crm_core.speech.search``). A call holds a word whenever one of its phrases does, so
no match is missed; and no phrase of a call is newer than its ``last_phrase_id``, so the
walk knows when the newest matches are all found.

Statement triggers on ``transcript_phrases`` keep each touched call's row: rebuilt from
its phrases on every insert, update or delete (the phrases of a transcript are rewritten
whole), removed when none is left. Building the rows reads every phrase once, grouped
by call, holding writes to the phrases meanwhile. SQLite's FTS5 needs none of this:
it walks its matches newest first and reads no row to do it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0035_call_words"
down_revision: str | None = "0034_client_status_days"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "transcript_call_words"
# a call's row from its phrases (``p`` a prefix for the phrases' columns), grouped by call
_ROW = ("{p}call_id, min({p}id), max({p}id), "
        "strip(to_tsvector('simple'::regconfig, string_agg({p}lemmas, ' ')))")


def _refresh(touched: str) -> str:
    """The rows of the calls ``touched`` names, from their phrases: rewritten, or removed
    when the call has no phrase left. An array of ids, so the planner takes each call's
    phrases from the index on ``call_id`` whatever it guesses of a transition table."""
    calls = f"ANY(ARRAY({touched}))"
    return f"""
  DELETE FROM {_TABLE} w WHERE w.call_id = {calls}
     AND NOT EXISTS (SELECT 1 FROM transcript_phrases p WHERE p.call_id = w.call_id);
  INSERT INTO {_TABLE} (call_id, first_phrase_id, last_phrase_id, search_vector)
  SELECT {_ROW.format(p="p.")}
    FROM transcript_phrases p WHERE p.call_id = {calls}
   GROUP BY p.call_id
  ON CONFLICT (call_id) DO UPDATE SET first_phrase_id = EXCLUDED.first_phrase_id,
    last_phrase_id = EXCLUDED.last_phrase_id, search_vector = EXCLUDED.search_vector;"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
CREATE TABLE {_TABLE} (
  call_id integer NOT NULL,
  first_phrase_id integer NOT NULL,
  last_phrase_id integer NOT NULL,
  search_vector tsvector NOT NULL,
  CONSTRAINT pk_{_TABLE} PRIMARY KEY (call_id),
  CONSTRAINT fk_{_TABLE}_call_id_calls FOREIGN KEY (call_id)
    REFERENCES calls (id) ON DELETE CASCADE
)""")
    op.execute(f"INSERT INTO {_TABLE} (call_id, first_phrase_id, last_phrase_id, search_vector) "
               f"SELECT {_ROW.format(p='')} FROM transcript_phrases GROUP BY call_id")
    op.execute(f"CREATE INDEX ix_{_TABLE}_walk ON {_TABLE} (last_phrase_id) "
               "INCLUDE (call_id, first_phrase_id)")
    touched = {"insert": "SELECT DISTINCT call_id FROM changed_rows",
               "delete": "SELECT DISTINCT call_id FROM changed_rows",
               "update": "SELECT call_id FROM changed_rows UNION SELECT call_id FROM old_rows"}
    for event, side in (("insert", "NEW"), ("delete", "OLD"), ("update", "NEW")):
        op.execute(f"""
CREATE FUNCTION {_TABLE}_after_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{_refresh(touched[event])}
  RETURN NULL;
END $$""")
        referencing = (f"{side} TABLE AS changed_rows" if event != "update"
                       else "OLD TABLE AS old_rows NEW TABLE AS changed_rows")
        op.execute(f"CREATE TRIGGER {_TABLE}_{event} AFTER {event.upper()} ON "
                   f"transcript_phrases REFERENCING {referencing} FOR EACH STATEMENT "
                   f"EXECUTE FUNCTION {_TABLE}_after_{event}()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for event in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER {_TABLE}_{event} ON transcript_phrases")
        op.execute(f"DROP FUNCTION {_TABLE}_after_{event}()")
    op.drop_table(_TABLE)
