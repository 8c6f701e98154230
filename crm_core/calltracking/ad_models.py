"""Tables of the ad systems' loop: imported campaign costs by day, the marketer's accounts
in Yandex Metrica and Google Ads, the conversions sent to them and the log of uploads.

- ``ct_campaign_costs``: one figure per ad system, campaign and day, with the file it
  came from; a re-import of the day replaces it (never adds);
- ``ad_conversion_accounts``: one row per ad system (counter, goals, the token: kept
  because the CRM uploads unattended, never shown back, logged or audited);
- ``ad_conversions``: one row per system, goal and call or deal: what makes each
  conversion go out once;
- ``ad_conversion_uploads``: every attempt to upload, with the answer.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db.base import Base, one_of
from crm_core.timestamps import utcnow


class AdSystem(StrEnum):
    """Where an imported cost comes from."""

    YANDEX_DIRECT = "yandex_direct"
    VK_ADS = "vk_ads"
    GOOGLE_ADS = "google_ads"


class ConversionSystem(StrEnum):
    """Where conversions go."""

    METRICA = "metrica"
    GOOGLE_ADS = "google_ads"


class ConversionGoal(StrEnum):
    CALL = "call"  # a tracked call (Metrica: the calls upload; Google Ads: a click conversion)
    DEAL = "deal"  # a won deal with its revenue


class ConversionStatus(StrEnum):
    SENDING = "sending"  # claimed by a round before the upload (never sent twice)
    SENT = "sent"
    FAILED = "failed"  # the upload failed: tried again at next_attempt_at
    REJECTED = "rejected"  # the ad system refused this conversion itself (not tried again)


class CampaignCost(Base):
    """Money an ad system spent on one campaign on one day (imported from its export)."""

    __tablename__ = "ct_campaign_costs"
    __table_args__ = (
        UniqueConstraint("system", "campaign_key", "day"),
        CheckConstraint(one_of("system", AdSystem), name="system"),
        Index("ix_ct_campaign_costs_day", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(20))
    # The campaign's id in the ad system where the file has one, else its name.
    campaign_key: Mapped[str] = mapped_column(String(300))
    campaign_id: Mapped[str | None] = mapped_column(String(50))
    campaign: Mapped[str] = mapped_column(String(300))
    day: Mapped[date] = mapped_column()
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    clicks: Mapped[int] = mapped_column(default=0)
    impressions: Mapped[int] = mapped_column(default=0)
    # Where the figure goes in the call-tracking report (by channel and by source).
    channel: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200))
    file_name: Mapped[str] = mapped_column(String(300))
    imported_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConversionAccount(Base):
    """The marketer's account in Yandex Metrica or Google Ads; none until entered."""

    __tablename__ = "ad_conversion_accounts"
    __table_args__ = (CheckConstraint(one_of("system", ConversionSystem), name="system"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(20), unique=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    # Metrica: the counter; Google Ads: the customer (account) id.
    account_id: Mapped[str] = mapped_column(String(30))
    # Metrica: the calls goal's name; Google Ads: the calls' conversion action id.
    call_goal: Mapped[str | None] = mapped_column(String(200))
    # Metrica: the deals goal's identifier (Target); Google Ads: the deals' action id.
    deal_goal: Mapped[str | None] = mapped_column(String(200))
    # Google Ads: the conversion names of the manual upload file (calls, deals).
    call_name: Mapped[str | None] = mapped_column(String(200))
    deal_name: Mapped[str | None] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    min_talk_seconds: Mapped[int] = mapped_column(default=0)
    token: Mapped[str | None] = mapped_column(String(1000))
    developer_token: Mapped[str | None] = mapped_column(String(200))  # Google Ads only
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AdConversion(Base):
    """One conversion of one call or deal for one system and goal: sent once."""

    __tablename__ = "ad_conversions"
    __table_args__ = (
        UniqueConstraint("system", "goal", "object_id"),
        CheckConstraint(one_of("system", ConversionSystem), name="system"),
        CheckConstraint(one_of("goal", ConversionGoal), name="goal"),
        CheckConstraint(one_of("status", ConversionStatus), name="status"),
        Index("ix_ad_conversions_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(20))
    goal: Mapped[str] = mapped_column(String(10))
    object_id: Mapped[int] = mapped_column()  # the call's or the deal's id
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    occurred_at: Mapped[datetime] = mapped_column()
    value: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    upload_id: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()


class ConversionUpload(Base):
    """One attempt to upload a batch of conversions, and what the ad system answered."""

    __tablename__ = "ad_conversion_uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    system: Mapped[str] = mapped_column(String(20))
    goal: Mapped[str] = mapped_column(String(10))
    conversions: Mapped[int] = mapped_column(default=0)
    attempt: Mapped[int] = mapped_column(default=1)
    ok: Mapped[bool] = mapped_column(default=False)
    http_status: Mapped[int | None] = mapped_column()
    upload_id: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(String(500))
