"""Who may use quality control pages and API at all: everyone but marketers."""

from __future__ import annotations

from crm_core.errors import NotAllowedError
from crm_core.people.models import Role, User


def qc_user(user: User) -> User:
    """The user, unless a marketer (403): QC reads recordings and transcripts."""
    if user.role == Role.MARKETER:
        raise NotAllowedError("speech.qc_role", "QC is not for marketers")
    return user
