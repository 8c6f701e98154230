"""What the web layer needs beyond :class:`~telecrm.settings.Settings`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network
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
    login_failures_per_user: int = 5  # per (account, IP)
    login_failures_per_ip: int = 30
    login_failures_per_account: int = 20  # from any addresses together
    login_window_seconds: float = 15 * 60
    daily_target_seconds: int = 150 * 60
    sse_heartbeat_seconds: float = 15.0
    #: reverse proxies whose X-Forwarded-For names the client (addresses or networks)
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> WebConfig:
        """Read the optional ``cookie_secure`` setting (``auto``, ``true`` or ``false``)."""
        raw = str(getattr(settings, "cookie_secure", "auto")).strip().lower()
        secure = {"true": True, "1": True, "yes": True, "false": False, "0": False,
                  "no": False}.get(raw)
        return cls(cookie_secure=secure,
                   trusted_proxies=parse_networks(str(getattr(settings, "trusted_proxies", ""))))


def parse_networks(raw: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """``"10.0.0.5, 192.168.0.0/24"`` as networks; a bad entry is a setting error."""
    from telecrm.settings import SettingsError

    out = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            out.append(ip_network(item, strict=False))
        except ValueError:
            raise SettingsError("settings.bad_value", f"not an IP address or network: {item}",
                                name="TELECRM_TRUSTED_PROXIES", value=item) from None
    return tuple(out)
