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
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

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
    __table_args__ = (CheckConstraint(one_of("status", ClientStatus), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300), index=True)
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

    owner: Mapped[User | None] = relationship()
    phones: Mapped[list[Phone]] = relationship(
        back_populates="client", order_by="Phone.id", cascade="all, delete-orphan"
    )
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="client", order_by="Contact.id", cascade="all, delete-orphan"
    )


class Contact(Base):
    """A person at a client."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column()  # never deleted (migration 0011)

    client: Mapped[Client] = relationship(back_populates="contacts")
    phones: Mapped[list[Phone]] = relationship(back_populates="contact", order_by="Phone.id")


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
