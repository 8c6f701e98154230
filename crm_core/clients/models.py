"""Clients: companies, their contact persons and phone numbers.

Nothing here is ever deleted by the product: clients are archived.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from crm_core.clients.terms import MAX_TERM, fold
from crm_core.db.base import Base, one_of
from crm_core.timestamps import utcnow

if TYPE_CHECKING:
    from crm_core.people.models import User


class ClientStatus(StrEnum):
    POTENTIAL = "potential"
    NEW = "new"
    REGULAR = "regular"
    LOST = "lost"


class Client(Base):
    """A company. Its status is set by rules (services), never typed by hand."""

    __tablename__ = "clients"
    __table_args__ = (
        CheckConstraint(one_of("status", ClientStatus), name="status"),
        # The client list pages through names and "longest without a contact" (migration 0014).
        Index("ix_clients_name_key_id", "name_key", "id"),
        Index("ix_clients_last_contact_at_id", "last_contact_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300), index=True)
    # The name folded for sorting (SQLite's lower() knows no Cyrillic); kept by ``_fold_name``.
    name_key: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(20), default=ClientStatus.POTENTIAL.value)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[str] = mapped_column(String(30), default="manual")
    annual_potential: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    # -- sales rules (crm_core.sales.client_status): derived, never typed by a manager --------
    annual_potential_items: Mapped[int | None] = mapped_column()
    abc_group: Mapped[str | None] = mapped_column(String(1))  # A/B/C from the potential
    qualified_at: Mapped[datetime | None] = mapped_column()  # when ABC was first set
    contact_every_days: Mapped[int | None] = mapped_column()  # overrides the ABC frequency
    status_since: Mapped[datetime | None] = mapped_column(default=utcnow)
    owner_since: Mapped[datetime | None] = mapped_column(default=utcnow)
    # The last contact: an answered customer call's start, or a logged e-mail or meeting
    # (kept by the sales rules, crm_core.sales.client_status).
    last_contact_at: Mapped[datetime | None] = mapped_column()
    archived_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # -- the company card (crm_core.clients.cards): typed by the people who work with him -----
    inn: Mapped[str | None] = mapped_column(String(12))
    kpp: Mapped[str | None] = mapped_column(String(9))
    legal_address: Mapped[str | None] = mapped_column(String(500))
    actual_address: Mapped[str | None] = mapped_column(String(500))
    site: Mapped[str | None] = mapped_column(String(300))
    industry: Mapped[str | None] = mapped_column(String(200))
    region: Mapped[str | None] = mapped_column(String(200))
    # How the client found us (a recommendation, an exhibition); ``source`` says how the
    # row came to the CRM (manual, import, call).
    found_via: Mapped[str | None] = mapped_column(String(200))
    comment: Mapped[str | None] = mapped_column(String(2000))
    # A duplicate merged into another client is archived and points at the one kept.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))

    owner: Mapped[User | None] = relationship()
    phones: Mapped[list[Phone]] = relationship(
        back_populates="client", order_by="Phone.id", cascade="all, delete-orphan"
    )
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="client", order_by="Contact.id", cascade="all, delete-orphan"
    )
    emails: Mapped[list[Email]] = relationship(
        back_populates="client", order_by="Email.id", cascade="all, delete-orphan"
    )

    @validates("name")
    def _fold_name(self, _key: str, value: str) -> str:
        self.name_key = fold(value or "")[:300]
        return value


class Contact(Base):
    """A person at a client."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column()  # never deleted (migration 0011)

    client: Mapped[Client] = relationship(back_populates="contacts")
    phones: Mapped[list[Phone]] = relationship(back_populates="contact", order_by="Phone.id")
    emails: Mapped[list[Email]] = relationship(back_populates="contact", order_by="Email.id")


class Phone(Base):
    """A client's number; lookups go through ``e164``, ``raw`` keeps what was typed.

    The same number may belong to two clients (a shared switchboard), never twice
    to one client.
    """

    __tablename__ = "phones"
    __table_args__ = (UniqueConstraint("client_id", "e164"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    e164: Mapped[str] = mapped_column(String(20), index=True)
    raw: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20), default="other")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    client: Mapped[Client] = relationship(back_populates="phones")
    contact: Mapped[Contact | None] = relationship(back_populates="phones")


class Email(Base):
    """An e-mail address of a client: the company's (no contact) or a contact person's."""

    __tablename__ = "emails"
    __table_args__ = (UniqueConstraint("client_id", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    address: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    client: Mapped[Client] = relationship(back_populates="emails")
    contact: Mapped[Contact | None] = relationship(back_populates="emails")


# Binary order on both backends (PostgreSQL's "C" collation), so a prefix is a key range.
TERM_TYPE = String(MAX_TERM).with_variant(String(MAX_TERM, collation="C"), "postgresql")


class ClientSearchTerm(Base):
    """One word a client is found by (crm_core.clients.terms); the primary key is the index.

    Derived from the client, his contacts, e-mails and phones by ``crm_core.clients.search``
    whenever one of them is written; a merge rebuilds it rather than moving it.
    """

    __tablename__ = "client_search_terms"
    __table_args__ = (
        Index("ix_client_search_terms_client_id", "client_id"),
        {"info": {"merge": "rebuild"}},
    )

    term: Mapped[str] = mapped_column(TERM_TYPE, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), primary_key=True)
