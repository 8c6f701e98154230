"""ORM models of the sales management layer (registered by crm_core.schema so Alembic sees them).

The head of sales sets rules (``SalesSettings``); the CRM derives each client's status
from payments and contacts under those rules and keeps every transition
(``ClientStatusChange``) and every change of owner (``ClientOwnerChange``). Money is
recorded as invoices and payments so statuses and reports never depend on a manager's
say-so. Nothing here is deleted: invoices and payments are archived.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.clients.models import Client
from crm_core.db.base import Base
from crm_core.timestamps import utcnow


class InvoiceStatus(StrEnum):
    UNPAID = "unpaid"
    PARTLY_PAID = "partly_paid"
    PAID = "paid"


class SalesSettings(Base):
    """The rules of the head of sales: the company's row (``team_id`` NULL) or a team's.

    A team row, when present, replaces the company row for that team's clients
    (the client's owner's team).
    """

    __tablename__ = "sales_settings"
    __table_args__ = (
        Index("ix_sales_settings_team_id", "team_id", unique=True),
        CheckConstraint("abc_a_min >= abc_b_min", name="abc_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    # A client is *new* for this many days after his first payment.
    new_period_days: Mapped[int] = mapped_column(default=90)
    # A client who paid once is *lost* after this many days without payment or contact.
    lost_after_days: Mapped[int] = mapped_column(default=180)
    # The longest a client may stay *potential* / *new* with one manager.
    max_potential_days: Mapped[int] = mapped_column(default=90)
    max_new_days: Mapped[int] = mapped_column(default=180)
    # ABC from the annual potential: A from abc_a_min, B from abc_b_min, C below.
    abc_a_min: Mapped[Decimal] = mapped_column(Numeric(16, 2), default=Decimal(1_000_000))
    abc_b_min: Mapped[Decimal] = mapped_column(Numeric(16, 2), default=Decimal(300_000))
    # Planned contact frequency (days between contacts) per ABC group, and unqualified.
    contact_days_a: Mapped[int] = mapped_column(default=7)
    contact_days_b: Mapped[int] = mapped_column(default=14)
    contact_days_c: Mapped[int] = mapped_column(default=30)
    contact_days_none: Mapped[int] = mapped_column(default=30)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class Invoice(Base):
    """An invoice issued to a client; its status follows the payments booked against it."""

    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("status IN ('unpaid', 'partly_paid', 'paid')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(60), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(16, 2))
    paid_amount: Mapped[Decimal] = mapped_column(Numeric(16, 2), default=Decimal(0))
    status: Mapped[str] = mapped_column(String(20), default=InvoiceStatus.UNPAID.value)
    issued_on: Mapped[date] = mapped_column(index=True)
    due_on: Mapped[date | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    archived_at: Mapped[datetime | None] = mapped_column()

    client: Mapped[Client] = relationship()


class Payment(Base):
    """Money received from a client (optionally against an invoice).

    ``ref`` is the payment's id in the bank statement or the accounting system, so
    importing the same statement twice books nothing twice.
    """

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_payments_client_id_paid_on", "client_id", "paid_on"),
        # Each client's first and last payment and the period's money, from the index
        # alone (the summary report; migration 0031)
        Index("ix_payments_live_client_paid_on", "client_id", "paid_on", "amount",
              postgresql_where=text("archived_at IS NULL"),
              sqlite_where=text("archived_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(16, 2))
    paid_on: Mapped[date] = mapped_column(index=True)
    ref: Mapped[str | None] = mapped_column(String(100), unique=True)
    source: Mapped[str] = mapped_column(String(20), default="manual")
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    archived_at: Mapped[datetime | None] = mapped_column()

    client: Mapped[Client] = relationship()
    invoice: Mapped[Invoice | None] = relationship()


class ClientStatusChange(Base):
    """One transition of a client's status by the rules: what, when and what caused it."""

    __tablename__ = "client_status_changes"
    __table_args__ = (Index("ix_client_status_changes_client_id_at", "client_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    old_status: Mapped[str | None] = mapped_column(String(20))
    new_status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # The day the rules were evaluated for (a nightly run judges "today").
    as_of: Mapped[date] = mapped_column()
    actor: Mapped[str] = mapped_column(String(100))  # payment, call, nightly, recompute
    cause: Mapped[str | None] = mapped_column(String(300))  # e.g. "payment 12", "call 1795.0"


class ClientOwnerChange(Base):
    """A client given to another manager (or taken away): by whom, when and why."""

    __tablename__ = "client_owner_changes"
    __table_args__ = (Index("ix_client_owner_changes_client_id_at", "client_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    old_owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    new_owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(String(300))


class ClientStop(Base):
    """A supervisor's approval to stop working with a client (no next task required).

    A manager asks (``requested_by_id``, a task for the supervisor); the approval sets
    ``approved_by_id``/``approved_at``. ``revoked_at`` ends it: any new task for the
    client means work goes on.
    """

    __tablename__ = "client_stops"
    __table_args__ = (Index("ix_client_stops_client_id", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    reason: Mapped[str] = mapped_column(String(500))
    requested_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    request_task_id: Mapped[int | None] = mapped_column(
        ForeignKey("tasks.id", ondelete="SET NULL"))
    approved_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    approved_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


# -- deals ---------------------------------------------------------------------------------


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class Pipeline(Base):
    """A sales direction (e.g. «B2B новые», «B2B постоянные») with ordered stages."""

    __tablename__ = "pipelines"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column()

    stages: Mapped[list[PipelineStage]] = relationship(
        back_populates="pipeline", order_by="PipelineStage.position")


class PipelineStage(Base):
    """A stage of a pipeline; entering it creates its task (kind, days to deadline, who).

    ``outcome`` marks the closing stages (won/lost); ``code`` is a stable name other
    features key on (e.g. the KKP script for calls with clients at this stage).
    """

    __tablename__ = "pipeline_stages"
    __table_args__ = (
        Index("ix_pipeline_stages_pipeline_id_position", "pipeline_id", "position", unique=True),
        CheckConstraint("outcome IN ('open', 'won', 'lost')", name="outcome"),
        CheckConstraint("task_assignee IN ('owner', 'supervisor')", name="task_assignee"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    position: Mapped[int] = mapped_column()
    name: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(10), default=DealStatus.OPEN.value)
    task_kind: Mapped[str | None] = mapped_column(String(20))
    task_title: Mapped[str | None] = mapped_column(String(300))
    task_due_days: Mapped[int] = mapped_column(default=1)
    task_assignee: Mapped[str] = mapped_column(String(20), default="owner")
    # An archived stage takes no new deals and is hidden from the board; its history stays.
    archived_at: Mapped[datetime | None] = mapped_column()

    pipeline: Mapped[Pipeline] = relationship(back_populates="stages")


class LoseReason(Base):
    """A reason a deal may be lost with (the configurable list)."""

    __tablename__ = "lose_reasons"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    active: Mapped[bool] = mapped_column(default=True)


class Deal(Base):
    """A sale in progress with a client, on one stage of one pipeline. Archived, never deleted."""

    __tablename__ = "deals"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'won', 'lost')", name="status"),
        Index("ix_deals_client_id_status", "client_id", "status"),
        Index("ix_deals_owner_id_closed_at", "owner_id", "closed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("pipeline_stages.id"), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default=DealStatus.OPEN.value)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))  # expected
    won_amount: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    lose_reason_id: Mapped[int | None] = mapped_column(ForeignKey("lose_reasons.id"))
    lose_note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    stage_entered_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column()
    archived_at: Mapped[datetime | None] = mapped_column()

    stage: Mapped[PipelineStage] = relationship()
    lose_reason: Mapped[LoseReason | None] = relationship()


class DealStageChange(Base):
    """A deal entering a stage (its first stage too), with the task that entry created."""

    __tablename__ = "deal_stage_changes"
    __table_args__ = (Index("ix_deal_stage_changes_deal_id_at", "deal_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"))
    from_stage_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_stages.id"))
    to_stage_id: Mapped[int] = mapped_column(ForeignKey("pipeline_stages.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                              index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))


class SalesPlan(Base):
    """A manager's plan for a month: an amount of money won, or a number of deals won."""

    __tablename__ = "sales_plans"
    __table_args__ = (
        Index("ix_sales_plans_user_id_month", "user_id", "month", unique=True),
        CheckConstraint("kind IN ('amount', 'count')", name="kind"),
        CheckConstraint("target > 0", name="target_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    month: Mapped[date] = mapped_column()  # the first day of the month
    kind: Mapped[str] = mapped_column(String(10))
    target: Mapped[Decimal] = mapped_column(Numeric(16, 2))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class SalesContactDaily(Base):
    """A finished local day's calls with the clients of one owner, counted once and kept
    (the contact-frequency report's rollup, :mod:`crm_core.sales.rollup`).

    Calls are non-internal calls with a client, counted for the client's owner as he is
    now, of clients not archived. Database triggers (migration 0031) drop an owner's rows
    around any call of his clients that is written, changed or removed later, and every
    row of both owners when a client changes owner, is archived or restored, or is
    removed; the nightly run refills. So a stored row always equals a recount.
    """

    __tablename__ = "sales_contact_daily"

    owner_id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    tz: Mapped[str] = mapped_column(String(64), primary_key=True)
    calls: Mapped[int] = mapped_column()
    talk_seconds: Mapped[float] = mapped_column()
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class SalesClientStatus(Base):
    """A client's status by the rules at the end of a finished local day, judged once and
    kept (the sales summary's rollup, :mod:`crm_core.sales.status_days`).

    ``lost_after_days`` and ``new_period_days`` are the rules it was judged by; a report
    uses the row only while the client's rules are the same. Database triggers (migration
    0034) drop a client's rows from the first day a payment, contact or creation time
    written, changed or removed later could change, and copy his owner, potential and
    archiving into his rows; the nightly run refills. So a stored verdict always equals a
    fresh one.
    """

    __tablename__ = "sales_client_status"
    # derived: a merge moves the duplicate's payments and calls, whose triggers drop both
    # clients' rows, and the night judges them again
    __table_args__ = (Index("ix_sales_client_status_client_id_day", "client_id", "day"),
                      Index("ix_sales_client_status_day_tz_owner_id", "day", "tz", "owner_id"),
                      {"info": {"merge": "rebuild"}})

    day: Mapped[date] = mapped_column(primary_key=True)
    tz: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[int] = mapped_column(primary_key=True)
    lost_after_days: Mapped[int] = mapped_column()
    new_period_days: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(String(16))
    # the client's, kept the same by a trigger: what the summary counts beside the verdict
    owner_id: Mapped[int | None] = mapped_column()
    potential: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    archived: Mapped[bool] = mapped_column()
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
