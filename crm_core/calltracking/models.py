"""ORM models of call tracking (registered by crm_core.schema so Alembic sees them).

Static numbers carry a channel; sites own pools of numbers that the page snippet
swaps in for a visit. Live leases live in the lease store (Redis or in-process);
the rows here are their history, which is what attribution of a call reads later.
Nothing is deleted: numbers and sites are archived. A number is unique among the
tracked (not archived) ones only, so an archived number can be taken into use again:
the old row keeps the calls of its time, the new row takes the new ones.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from crm_core.calls.models import Call
from crm_core.db.base import Base
from crm_core.timestamps import utcnow


class AttributionKind(StrEnum):
    STATIC = "static"  # the DID is a static channel number
    DYNAMIC = "dynamic"  # a pool number leased to a visit at the call's time
    REPEAT = "repeat"  # the caller's earlier known source
    UNIDENTIFIED = "unidentified"


class CtStaticNumber(Base):
    """A number (DID) advertised in one channel: a billboard, the radio, a directory."""

    __tablename__ = "ct_static_numbers"
    __table_args__ = (
        Index("uq_ct_static_numbers_did_live", "did", unique=True,
              postgresql_where=text("archived_at IS NULL"),
              sqlite_where=text("archived_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    did: Mapped[str] = mapped_column(String(20), index=True)
    channel: Mapped[str] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(200))
    medium: Mapped[str | None] = mapped_column(String(200))
    campaign: Mapped[str | None] = mapped_column(String(200))
    cost_per_month: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    archived_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CtSite(Base):
    """A website that shows pool numbers, with the rules of its leases."""

    __tablename__ = "ct_sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(253), unique=True)
    # The company's numbers written on the site (E.164): the snippet replaces them, and
    # the first one is the fallback shown when the pool is exhausted.
    default_numbers: Mapped[list[str]] = mapped_column(default=list)
    selector: Mapped[str] = mapped_column(String(300), default=".ct-phone")
    allowed_origins: Mapped[list[str]] = mapped_column(default=list)
    hold_seconds: Mapped[int] = mapped_column(default=180)
    cooldown_seconds: Mapped[int] = mapped_column(default=60)
    heartbeat_seconds: Mapped[int] = mapped_column(default=60)
    grace_seconds: Mapped[int] = mapped_column(default=300)
    # Off by default: sharing a live number attributes calls to the wrong visitor.
    reuse_live_leases: Mapped[bool] = mapped_column(default=False, server_default=false())
    channel: Mapped[str] = mapped_column(String(200), default="Сайт")
    # Signs the site's visit tokens: any web process checks a token without a lookup, and a
    # token made up or taken from another site is refused.
    token_key: Mapped[str] = mapped_column(String(64), default=lambda: secrets.token_hex(32))
    archived_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    numbers: Mapped[list[CtPoolNumber]] = relationship(
        back_populates="site", order_by="CtPoolNumber.id")


class CtPoolNumber(Base):
    """A number of a site's pool; a tracked number belongs to one pool."""

    __tablename__ = "ct_pool_numbers"
    __table_args__ = (
        Index("uq_ct_pool_numbers_number_live", "number", unique=True,
              postgresql_where=text("archived_at IS NULL"),
              sqlite_where=text("archived_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("ct_sites.id"), index=True)
    number: Mapped[str] = mapped_column(String(20), index=True)
    archived_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    site: Mapped[CtSite] = relationship(back_populates="numbers")


class CtVisit(Base):
    """One visitor's session on a site, with where he came from and what he read."""

    __tablename__ = "ct_visits"

    id: Mapped[int] = mapped_column(primary_key=True)
    session: Mapped[str] = mapped_column(String(64), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("ct_sites.id"), index=True)
    utm_source: Mapped[str | None] = mapped_column(String(200))
    utm_medium: Mapped[str | None] = mapped_column(String(200))
    utm_campaign: Mapped[str | None] = mapped_column(String(200))
    utm_term: Mapped[str | None] = mapped_column(String(200))
    utm_content: Mapped[str | None] = mapped_column(String(200))
    gclid: Mapped[str | None] = mapped_column(String(200))
    yclid: Mapped[str | None] = mapped_column(String(200))
    referrer: Mapped[str | None] = mapped_column(String(1000))
    landing: Mapped[str] = mapped_column(String(1000))
    pages: Mapped[list[str]] = mapped_column(default=list)
    client_ids: Mapped[dict[str, Any]] = mapped_column(default=dict)
    user_agent: Mapped[str | None] = mapped_column(String(300))
    is_bot: Mapped[bool] = mapped_column(default=False, server_default=false())
    first_seen: Mapped[datetime] = mapped_column(index=True)
    last_seen: Mapped[datetime] = mapped_column()

    site: Mapped[CtSite] = relationship()


class CtLease(Base):
    """A pool number shown to a visit from ``started_at`` until ``ends_at`` (history)."""

    __tablename__ = "ct_leases"
    __table_args__ = (Index("ix_ct_leases_number_started_at", "number", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20))
    site_id: Mapped[int] = mapped_column(ForeignKey("ct_sites.id"), index=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("ct_visits.id"), index=True)
    started_at: Mapped[datetime] = mapped_column()
    # Last activity plus the site's hold: moved forward by every heartbeat.
    ends_at: Mapped[datetime] = mapped_column()
    shared: Mapped[bool] = mapped_column(default=False, server_default=false())

    visit: Mapped[CtVisit] = relationship()


class CtPoolEvent(Base):
    """A visit shown the fallback number because the pool was exhausted (pool health)."""

    __tablename__ = "ct_pool_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("ct_sites.id"), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(20), default="exhausted")
    live_leases: Mapped[int] = mapped_column(default=0)


class CtAttribution(Base):
    """Where an inbound call came from; one per call, written once it is known."""

    __tablename__ = "ct_attributions"
    __table_args__ = (
        CheckConstraint("kind IN ('static', 'dynamic', 'repeat', 'unidentified')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # One per call, so the batch INSERT matches its returned ids by it (insertmanyvalues).
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"),
                                         unique=True, insert_sentinel=True)
    kind: Mapped[str] = mapped_column(String(20))
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("ct_visits.id"), index=True)
    channel: Mapped[str | None] = mapped_column(String(200), index=True)
    source: Mapped[str | None] = mapped_column(String(200))
    medium: Mapped[str | None] = mapped_column(String(200))
    campaign: Mapped[str | None] = mapped_column(String(200))
    landing: Mapped[str | None] = mapped_column(String(1000))
    ambiguous: Mapped[bool] = mapped_column(default=False, server_default=false())
    candidates: Mapped[list[str]] = mapped_column(default=list)  # visit sessions
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    call: Mapped[Call] = relationship(
        backref=backref("ct_attribution", uselist=False, lazy="joined", passive_deletes=True))
    visit: Mapped[CtVisit | None] = relationship()


class CtAdCost(Base):
    """Money spent on a channel in a month (entered or loaded from a monthly CSV)."""

    __tablename__ = "ct_ad_costs"
    __table_args__ = (UniqueConstraint("month", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[date] = mapped_column()  # the first day of the month
    channel: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    # Where the figure came from: typed on the page ("manual") or a monthly CSV ("file");
    # costs imported from the ad systems by day are in ``ct_campaign_costs``.
    source: Mapped[str] = mapped_column(String(20), default="manual",
                                        server_default=text("'manual'"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LeadKind(StrEnum):
    FORM = "form"  # a site form sent to the CRM
    CALLBACK = "callback"  # the callback widget: the visitor left a number to be called


class LeadStatus(StrEnum):
    NEW = "new"  # waiting for a manager: a call task is open
    CALLING = "calling"  # a callback is being placed: a manager's phone rings, then the visitor
    CONNECTED = "connected"  # the callback call is logged and carries the visit's source


class CtLead(Base):
    """A lead from a site that is not a call: a form or a callback request.

    It keeps the visit's attribution as it was when the lead came (the visit's source,
    medium, campaign, keyword, landing page and the ad systems' ids), the client it was
    matched to (by phone) or created for it, the manager it went to and his call task;
    for a callback, the call that followed. Never deleted: archived.
    """

    __tablename__ = "ct_leads"
    __table_args__ = (
        CheckConstraint("kind IN ('form', 'callback')", name="kind"),
        CheckConstraint("status IN ('new', 'calling', 'connected')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=LeadStatus.NEW.value)
    site_id: Mapped[int] = mapped_column(ForeignKey("ct_sites.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("ct_visits.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)  # E.164
    email: Mapped[str | None] = mapped_column(String(254))
    message: Mapped[str | None] = mapped_column(String(2000))
    page: Mapped[str | None] = mapped_column(String(1000))  # where the form was sent from
    channel: Mapped[str | None] = mapped_column(String(200), index=True)
    source: Mapped[str | None] = mapped_column(String(200))
    medium: Mapped[str | None] = mapped_column(String(200))
    campaign: Mapped[str | None] = mapped_column(String(200))
    utm_term: Mapped[str | None] = mapped_column(String(200))
    landing: Mapped[str | None] = mapped_column(String(1000))
    yclid: Mapped[str | None] = mapped_column(String(200))
    gclid: Mapped[str | None] = mapped_column(String(200))
    ym_uid: Mapped[str | None] = mapped_column(String(100))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), index=True)
    created_client: Mapped[bool] = mapped_column(default=False, server_default=false())
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    call_id: Mapped[int | None] = mapped_column(
        ForeignKey("calls.id", ondelete="SET NULL"), unique=True)
    # why a callback became a lead with a task («вне рабочего времени», ...)
    note: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    archived_at: Mapped[datetime | None] = mapped_column()

    visit: Mapped[CtVisit | None] = relationship()
