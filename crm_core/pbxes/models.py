"""A PBX the CRM listens to: its AMI login and where its recordings are written."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db.base import Base
from crm_core.timestamps import utcnow


class Pbx(Base):
    """One Asterisk of the company; ``main`` is the default one (``TELECRM_AMI_*``)."""

    __tablename__ = "pbxes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column()
    username: Mapped[str] = mapped_column(String(80))
    # Stored as given (the AMI login needs it); never printed, listed or rendered.
    secret: Mapped[str] = mapped_column(String(255))
    # Where this PBX's MixMonitor writes, as the CRM sees it (NULL: TELECRM_RECORDINGS_SOURCE).
    recordings_source: Mapped[str | None] = mapped_column(String(500))
    # Switched off (no listener) since then; a PBX is never deleted, its calls keep its name.
    disabled_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
