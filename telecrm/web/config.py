"""What the web layer needs beyond :class:`~telecrm.settings.Settings`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

SESSION_COOKIE = "telecrm_session"
PRELOGIN_COOKIE = "telecrm_prelogin"  # double-submit CSRF token of the sign-in form
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class WebConfig:
    """Sign-in and request limits.

    ``cookie_secure``: ``None`` marks the cookie Secure exactly when the request came
    over HTTPS (right for a direct TLS listener); ``True`` forces it (behind a TLS
    proxy that speaks plain HTTP to us), ``False`` never sets it (plain-HTTP demos).
    """

    session_lifetime: timedelta = timedelta(hours=12)
    cookie_secure: bool | None = None
    max_body_bytes: int = 64 * 1024
    login_failures_per_user: int = 5
    login_failures_per_ip: int = 30
    login_window_seconds: float = 15 * 60
    daily_target_seconds: int = 150 * 60
    sse_heartbeat_seconds: float = 15.0

    @classmethod
    def from_settings(cls, settings: Any) -> WebConfig:
        """Read the optional ``cookie_secure`` setting (``auto``, ``true`` or ``false``)."""
        raw = str(getattr(settings, "cookie_secure", "auto")).strip().lower()
        secure = {"true": True, "1": True, "yes": True, "false": False, "0": False,
                  "no": False}.get(raw)
        return cls(cookie_secure=secure)
