"""What a channel name says about who is on it.

Asterisk names channels ``TECH/resource-sequence`` (``PJSIP/101-0000002a``,
``PJSIP/101-yealink-00000012``, ``Local/101@from-crm-00000003;1``). The CRM cares
about three kinds of party: an internal phone (a manager's or a supervisor's
extension), the outside world (a trunk: the client), and Local channels, which are
plumbing between two bridges and never a party themselves.

A user's phone may be any endpoint (``SIP/150010001``, ``PJSIP/ivanov``): the users
table maps such devices to his extension, and his mobile numbers too, so a call the
PBX forwards to his mobile through a trunk is his leg, not a second client.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

_EXTENSION = re.compile(r"^\d{2,8}$")


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


def device_key(tech: str, resource: str) -> str:
    """How a device is looked up: ``PJSIP/ivanov`` whatever the case of the technology."""
    return f"{tech.upper()}/{resource}"


def dialled_number(dial_string: str) -> str:
    """The number a ``DialString`` dials, digits only (``+7916...@carrier`` -> ``7916...``).

    Handles ``+79160000001@carrier``, ``trunk/+79160000001``,
    ``carrier/sip:89160000001@host`` and ``PJSIP/89160000001@carrier``.
    """
    target = (dial_string or "").split("@", 1)[0].rpartition("/")[2]
    target = target.removeprefix("sip:").removeprefix("tel:")
    return "".join(ch for ch in target if ch.isdigit()) if target.lstrip("+").isdigit() else ""


@dataclass(frozen=True, slots=True)
class PartyRules:
    """How to tell internal phones from trunks.

    By default an endpoint named with 2 to 8 digits is an internal extension and
    any other endpoint is a trunk; ``extensions``/``trunks`` pin names explicitly
    for PBXes whose naming differs (a carrier trunk named by digits).
    ``devices`` maps a user's phones (``device_key``: ``SIP/150010001``,
    ``PJSIP/ivanov``) to his extension, and ``mobiles`` the dialled forms of his
    mobile numbers (digits: ``79160000001``, ``89160000001``, ``9160000001``) to his
    extension. ``supervisors`` are the extensions of the supervisors' phones: their
    legs get the role ``supervisor``, so listening in never makes them a party.
    """

    extensions: frozenset[str] = frozenset()
    trunks: frozenset[str] = frozenset()
    supervisors: frozenset[str] = frozenset()
    devices: Mapping[str, str] = field(default_factory=dict)
    mobiles: Mapping[str, str] = field(default_factory=dict)

    def role(self, name: ChannelName) -> Role:
        tech = name.tech.lower()
        if tech == "local":
            return Role.LOCAL
        if tech in ("", "message", "multicastrtp", "announcer", "cbanncr", "cbrec", "recorder"):
            return Role.OTHER
        owner = self.devices.get(device_key(name.tech, name.resource))
        if owner is not None:
            return Role.SUPERVISOR if owner in self.supervisors else Role.MANAGER
        if name.resource in self.trunks or device_key(name.tech, name.resource) in self.trunks:
            return Role.CLIENT
        if name.resource in self.supervisors:
            return Role.SUPERVISOR
        if name.resource in self.extensions or _EXTENSION.match(name.resource):
            return Role.MANAGER
        return Role.CLIENT

    def extension(self, name: ChannelName) -> str | None:
        """The extension of an internal phone's channel; None for anything else."""
        if not self.role(name).internal:
            return None
        return self.devices.get(device_key(name.tech, name.resource), name.resource)

    def mobile_owner(self, dial_string: str) -> str | None:
        """The extension of the user whose mobile this trunk channel dials, if any."""
        number = dialled_number(dial_string)
        return self.mobiles.get(number) if number else None
