"""What every change to the integrations checks: that an admin makes it (or the command
line, ``actor`` None), and the name a token or a webhook endpoint is given."""

from __future__ import annotations

from crm_core.errors import DomainError, NotAllowedError
from crm_core.people.models import Role, User


def admin_only(actor: User | None) -> None:
    if actor is not None and actor.role != Role.ADMIN:
        raise NotAllowedError("integrations.admin_only", "only an admin manages integrations")


def clean_name(name: str) -> str:
    """The name with its spaces squeezed; required, at most 200 characters."""
    name = " ".join(name.split())
    if not name:
        raise DomainError("integrations.name_missing", "the name is required")
    if len(name) > 200:
        raise DomainError("request.too_long", "name too long", name="name", max=200)
    return name
