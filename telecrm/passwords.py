"""Password hashing with Argon2id at a chosen strength; temporary passwords.

``strong`` (the default) is argon2-cffi's choice, RFC 9106's second recommendation:
64 MiB, 3 passes, 4 lanes. ``light`` is OWASP's minimum for Argon2id: 19 MiB, 2 passes,
1 lane, about a sixth of the processor time per sign-in, for small servers with many
sign-ins (``TELECRM_PASSWORD_HASHING``). A hash carries its own parameters, so every
stored password verifies whatever the setting is now.
"""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from crm_core.errors import DomainError

MIN_LENGTH = 8
# Letters and digits nobody confuses when reading them out or copying them by hand.
_TEMPORARY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"

STRENGTHS: dict[str, PasswordHasher] = {
    "strong": PasswordHasher(time_cost=3, memory_cost=65_536, parallelism=4),
    "light": PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1),
}


def hash_password(password: str, strength: str = "strong") -> str:
    """The Argon2id hash of ``password``; ``strength`` is a key of :data:`STRENGTHS`."""
    if len(password) < MIN_LENGTH:
        raise DomainError("people.password_short",
                          f"the password must have at least {MIN_LENGTH} characters",
                          min=MIN_LENGTH)
    return STRENGTHS[strength].hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return STRENGTHS["strong"].verify(password_hash, password)  # parameters: the hash's
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def dummy_hash(strength: str) -> str:
    """A hash to verify against when the name is unknown, so the answer takes as long."""
    return hash_password("not-a-real-password-0", strength)


def temporary_password() -> str:
    """A one-time password an admin hands over: ``k7mq-x3tp-9wbr`` (about 59 bits)."""
    groups = ("".join(secrets.choice(_TEMPORARY_ALPHABET) for _ in range(4)) for _ in range(3))
    return "-".join(groups)
