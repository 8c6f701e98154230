"""clients: the company card, e-mails, merged duplicates and the search index.

- ``clients``: requisites (INN, KPP), addresses, site, industry, region, how the client
  found us, a comment, ``merged_into_id`` for an archived duplicate, and ``name_key``
  (the name folded for sorting) with indexes for the client list's two orders;
- ``emails``: a client's addresses, the company's or a contact person's; the one
  address ``contacts.email`` held moves there and the column goes;
- ``client_search_terms``: the words each client is found by, filled here for the
  clients that exist (the product keeps it on every write afterwards).

Downgrading puts each contact's first address back into ``contacts.email``.

Revision ID: 0016_clients
Revises: 0015_people

Frozen once released: do not import application code here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import phonenumbers
import sqlalchemy as sa
from alembic import op

revision: str = "0016_clients"
down_revision: str | None = "0015_people"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_TERM = sa.String(320).with_variant(sa.String(320, collation="C"), "postgresql")
_COLUMNS = [
    sa.Column("name_key", sa.String(300), nullable=False, server_default=""),
    sa.Column("inn", sa.String(12), nullable=True),
    sa.Column("kpp", sa.String(9), nullable=True),
    sa.Column("legal_address", sa.String(500), nullable=True),
    sa.Column("actual_address", sa.String(500), nullable=True),
    sa.Column("site", sa.String(300), nullable=True),
    sa.Column("industry", sa.String(200), nullable=True),
    sa.Column("region", sa.String(200), nullable=True),
    sa.Column("found_via", sa.String(200), nullable=True),
    sa.Column("comment", sa.String(2000), nullable=True),
    sa.Column("merged_into_id", sa.Integer(), nullable=True),
]
_WORD = re.compile(r"\w+")


def _fold(text: str) -> str:
    return " ".join((text or "").casefold().replace("ё", "е").split())


def _words(text: str | None) -> set[str]:
    return {w[:320] for w in _WORD.findall(_fold(text or ""))}


def _phone(e164: str) -> set[str]:
    terms = {e164.lstrip("+")}
    try:
        terms.add(str(phonenumbers.parse(e164, None).national_number))
    except phonenumbers.NumberParseException:
        pass
    return terms


def _email(address: str) -> set[str]:
    folded = _fold(address)[:320]
    return {folded, *_words(folded)} if folded else set()


def _backfill(bind: sa.engine.Connection) -> None:
    """name_key and the search words of every client there is (the same rules as the code)."""
    clients = {cid: (name, set()) for cid, name in bind.execute(
        sa.text("SELECT id, name FROM clients"))}
    for cid, (name, terms) in clients.items():
        bind.execute(sa.text("UPDATE clients SET name_key = :key WHERE id = :id"),
                     {"key": _fold(name)[:300], "id": cid})
        terms |= _words(name)
    for cid, name in bind.execute(sa.text(
            "SELECT client_id, name FROM contacts WHERE archived_at IS NULL")):
        clients[cid][1].update(_words(name))
    for cid, address in bind.execute(sa.text("SELECT client_id, address FROM emails")):
        clients[cid][1].update(_email(address))
    for cid, e164 in bind.execute(sa.text("SELECT client_id, e164 FROM phones")):
        clients[cid][1].update(_phone(e164))
    rows = [{"term": t, "client_id": cid} for cid, (_, terms) in clients.items()
            for t in sorted(terms) if t]
    if rows:
        bind.execute(sa.text("INSERT INTO client_search_terms (term, client_id) "
                             "VALUES (:term, :client_id)"), rows)


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        for column in _COLUMNS:
            batch.add_column(column)
        batch.create_foreign_key(op.f("fk_clients_merged_into_id_clients"), "clients",
                                 ["merged_into_id"], ["id"])
    op.create_index("ix_clients_name_key_id", "clients", ["name_key", "id"])
    op.create_index("ix_clients_last_contact_at_id", "clients", ["last_contact_at", "id"])

    op.create_table(
        "emails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"],
                                name=op.f("fk_emails_client_id_clients")),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="SET NULL",
                                name=op.f("fk_emails_contact_id_contacts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emails")),
        sa.UniqueConstraint("client_id", "address", name=op.f("uq_emails_client_id_address")),
    )
    op.create_index(op.f("ix_emails_client_id"), "emails", ["client_id"])
    op.create_index(op.f("ix_emails_contact_id"), "emails", ["contact_id"])
    op.execute("INSERT INTO emails (client_id, contact_id, address, created_at) "
               "SELECT client_id, id, email, created_at FROM contacts "
               "WHERE email IS NOT NULL AND email <> ''")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("email")

    op.create_table(
        "client_search_terms",
        sa.Column("term", _TERM, nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"],
                                name=op.f("fk_client_search_terms_client_id_clients")),
        sa.PrimaryKeyConstraint("term", "client_id", name=op.f("pk_client_search_terms")),
    )
    op.create_index("ix_client_search_terms_client_id", "client_search_terms", ["client_id"])
    _backfill(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_client_search_terms_client_id", table_name="client_search_terms")
    op.drop_table("client_search_terms")
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("email", sa.String(320), nullable=True))
    op.execute("UPDATE contacts SET email = (SELECT min(address) FROM emails "
               "WHERE emails.contact_id = contacts.id)")
    op.drop_index(op.f("ix_emails_contact_id"), table_name="emails")
    op.drop_index(op.f("ix_emails_client_id"), table_name="emails")
    op.drop_table("emails")
    op.drop_index("ix_clients_last_contact_at_id", table_name="clients")
    op.drop_index("ix_clients_name_key_id", table_name="clients")
    with op.batch_alter_table("clients") as batch:
        batch.drop_constraint(op.f("fk_clients_merged_into_id_clients"), type_="foreignkey")
        for column in reversed(_COLUMNS):
            batch.drop_column(column.name)
