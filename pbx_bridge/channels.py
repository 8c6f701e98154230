"""What a channel name says about who is on it.

Asterisk names channels ``TECH/resource-sequence`` (``PJSIP/101-0000002a``,
``Local/101@from-crm-00000003;1``). The CRM cares about three kinds of party:
an internal phone (a manager's or a supervisor's extension), the outside world
(a trunk: the client), and Local channels, which are plumbing between two
bridges and never a party themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_EXTENSION = re.compile(r"^\d{3,4}$")


class Role(StrEnum):
    MANAGER = "manager"
    SUPERVISOR = "supervisor"  # an internal phone, but one that listens in (ChanSpy)
    CLIENT = "client"
    LOCAL = "local"
    OTHER = "other"

    @property
    def internal(self) -> bool:
        """A phone of the company (manager or supervisor)."""
        return self in (Role.MANAGER, Role.SUPERVISOR)


@dataclass(frozen=True, slots=True)
class ChannelName:
    tech: str
    resource: str  # endpoint or Local target, without the sequence suffix
    local_half: str | None  # "1" or "2" for Local channels

    @property
    def local_pair(self) -> str | None:
        """The name both halves of a Local pair share."""
        if self.local_half is None:
            return None
        return f"{self.tech}/{self.resource}"


def parse_channel(name: str) -> ChannelName:
    """Split a channel name; tolerant of anything (never raises)."""
    tech, _, rest = (name or "").partition("/")
    half: str | None = None
    if tech.lower() == "local":
        rest, sep, half_part = rest.rpartition(";")
        if not sep:
            rest, half_part = half_part, ""
        half = half_part or None
        return ChannelName(tech, rest, half)
    # PJSIP/101-0000002a -> 101 ; SIP/carrier-00000001 -> carrier
    resource, sep, seq = rest.rpartition("-")
    if not sep or not seq:
        resource = rest
    return ChannelName(tech, resource, None)


@dataclass(frozen=True, slots=True)
class PartyRules:
    """How to tell internal phones from trunks.

    By default an endpoint named with 3 or 4 digits is an internal extension and
    any other endpoint is a trunk; ``extensions``/``trunks`` pin names explicitly
    for PBXes whose naming differs. ``supervisors`` are the extensions of the
    supervisors' phones (from the PBX config): their legs get the role
    ``supervisor``, so listening in never makes them a party of a call.
    """

    extensions: frozenset[str] = frozenset()
    trunks: frozenset[str] = frozenset()
    supervisors: frozenset[str] = frozenset()

    def role(self, name: ChannelName) -> Role:
        tech = name.tech.lower()
        if tech == "local":
            return Role.LOCAL
        if tech in ("", "message", "multicastrtp", "announcer", "cbanncr", "cbrec", "recorder"):
            return Role.OTHER
        if name.resource in self.trunks:
            return Role.CLIENT
        if name.resource in self.supervisors:
            return Role.SUPERVISOR
        if name.resource in self.extensions or _EXTENSION.match(name.resource):
            return Role.MANAGER
        return Role.CLIENT

    def extension(self, name: ChannelName) -> str | None:
        """The extension of an internal phone's channel; None for anything else."""
        return name.resource if self.role(name).internal else None
