"""Render the Asterisk configuration telecrm ships, from one settings object.

The templates live in ``asterisk_conf/templates/pbx/`` and use ``@{name}``
placeholders: Asterisk itself uses ``${...}`` everywhere in its dialplan, so
``string.Template``'s default syntax (or ``str.format``) would force every
Asterisk variable to be escaped and make the templates unreadable for an admin.
"""

from __future__ import annotations

import argparse
import re
import string
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

__all__ = [
    "PbxConfig",
    "render_pbx_config",
    "render_template",
    "template_text",
    "write_config",
]

# Files of templates/pbx that are complete configuration files (fragments start with "_").
PBX_FILES = (
    "manager.conf",
    "pjsip.conf",
    "extensions.conf",
    "queues.conf",
    "features.conf",
    "rtp.conf",
    "modules.conf",
    "logger.conf",
)

_EXTENSION_RE = re.compile(r"^[0-9]{3,4}$")
_NUMBER_RE = re.compile(r"^\+?[0-9]{2,20}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,39}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9.:_-]+$")
_PERMIT_RE = re.compile(r"^[0-9A-Fa-f.:]+/[0-9A-Fa-f.:]+$")
# No ";" (a comment), "," (the next argument), quotes or spaces in a dialplan value.
_URL_RE = re.compile(r"^https?://[A-Za-z0-9.:\[\]_-]+(/[A-Za-z0-9._~/-]*)?$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,200}$")


class _ConfTemplate(string.Template):
    """``@{name}`` placeholders only; ``@carrier`` and ``${VAR}`` pass through untouched."""

    delimiter = "@"
    pattern = r"""
        @(?:
          (?P<escaped>@(?=\{))              |  # "@@{" renders a literal "@{"
          \{(?P<braced>[a-z_][a-z0-9_]*)\}  |
          (?P<named>(?!))                   |  # bare @name is never a placeholder
          (?P<invalid>\{)
        )
    """


def _default_managers() -> list[tuple[str, str]]:
    return [("101", "change-me-101"), ("102", "change-me-102"), ("103", "change-me-103")]


def _default_supervisors() -> list[tuple[str, str]]:
    return [("201", "change-me-201")]


def _default_dids() -> dict[str, str]:
    return {"74951110001": "queue:sales", "74951110002": "101"}


def _default_queues() -> dict[str, list[str]]:
    return {"sales": ["101", "102"]}


def _default_pickup_groups() -> dict[str, list[str]]:
    return {"sales": ["101", "102", "103"]}


@dataclass
class PbxConfig:
    """Everything the shipped Asterisk configuration depends on.

    Defaults describe a single-box install: AMI and SIP on loopback. Secrets default
    to obvious placeholders so a forgotten one is easy to spot in a review.
    """

    ami_bind: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "telecrm"
    ami_secret: str = "change-me-ami"
    # Networks allowed to log in to AMI, as address/netmask.
    ami_permit: list[str] = field(default_factory=lambda: ["127.0.0.1/255.255.255.255"])
    sip_bind: str = "127.0.0.1"
    sip_port: int = 5060
    # (extension, SIP password) of the managers' and supervisors' IP phones.
    managers: list[tuple[str, str]] = field(default_factory=_default_managers)
    supervisors: list[tuple[str, str]] = field(default_factory=_default_supervisors)
    # The carrier's SIP peer: calls from this address are inbound, outbound goes there.
    carrier_host: str = "192.0.2.1"
    carrier_port: int = 5060
    # The number shown to clients on outbound calls (From user); None: the extension.
    carrier_from_user: str | None = None
    # DID (as the carrier sends it) -> "queue:<name>" or an extension such as "101".
    dids: dict[str, str] = field(default_factory=_default_dids)
    # Where calls to a DID missing from `dids` go.
    default_destination: str = "queue:sales"
    # Queue name -> member extensions (all ring at once).
    queues: dict[str, list[str]] = field(default_factory=_default_queues)
    # Pickup group name -> extensions: a phone dialling *8 answers a call ringing
    # on another phone of its group.
    pickup_groups: dict[str, list[str]] = field(default_factory=_default_pickup_groups)
    ring_timeout: int = 25
    # Seconds a ring group or follow-me rings its members (a foreign PBX's GROUPTIMER;
    # None: ring_timeout).
    group_timeout: int | None = None
    outbound_timeout: int = 60
    # Seconds a queue rings its members before trying again (within ring_timeout).
    queue_member_timeout: int = 15
    # When set, phones get a static contact sip:EXT@host:port instead of registering.
    phones_contact_host: str | None = None
    phones_contact_port: int | None = None
    rtp_start: int = 10000
    rtp_end: int = 20000
    # Sticky routing: the CRM's owner lookup (http://crm:8080/pbx/owner) and the token
    # `telecrm routing token` printed. Empty URL: off, calls go by DID as configured.
    crm_owner_url: str = ""
    crm_pbx_token: str = ""
    # Seconds the dialplan waits for the CRM before it sends the call to the queue.
    crm_owner_timeout: float = 0.5

    def validate(self) -> None:
        """Reject values that would silently produce a broken or unsafe Asterisk config."""
        _check(_HOST_RE.match(self.ami_bind), f"ami_bind {self.ami_bind!r} is not an address")
        _check(_HOST_RE.match(self.sip_bind), f"sip_bind {self.sip_bind!r} is not an address")
        _check(_HOST_RE.match(self.carrier_host), f"carrier_host {self.carrier_host!r} is invalid")
        for name in ("ami_port", "sip_port", "carrier_port", "rtp_start", "rtp_end"):
            port = getattr(self, name)
            _check(isinstance(port, int) and 0 < port < 65536, f"{name} {port!r} is not a port")
        _check(self.rtp_start < self.rtp_end, "rtp_start must be below rtp_end")
        _check(self.group_timeout is None
               or (isinstance(self.group_timeout, int) and self.group_timeout > 0),
               "group_timeout must be a positive integer")
        for name in ("ring_timeout", "outbound_timeout", "queue_member_timeout"):
            value = getattr(self, name)
            _check(isinstance(value, int) and value > 0, f"{name} must be a positive integer")
        _check(_NAME_RE.match(self.ami_user), f"ami_user {self.ami_user!r} is invalid")
        _check_secret("ami_secret", self.ami_secret)
        _check(bool(self.ami_permit), "ami_permit must allow at least one network")
        for permit in self.ami_permit:
            _check(_PERMIT_RE.match(permit), f"ami_permit {permit!r} is not address/netmask")
        seen: set[str] = set()
        for ext, secret in [*self.managers, *self.supervisors]:
            _check(_EXTENSION_RE.match(ext), f"extension {ext!r} must have 3 or 4 digits")
            _check(ext not in seen, f"extension {ext} is configured twice")
            seen.add(ext)
            _check_secret(f"secret of extension {ext}", secret)
        for queue, members in self.queues.items():
            _check(_NAME_RE.match(queue), f"queue name {queue!r} is invalid")
            for member in members:
                _check(member in seen, f"queue {queue} member {member} is not an extension")
        for group, members in self.pickup_groups.items():
            _check(_NAME_RE.match(group), f"pickup group name {group!r} is invalid")
            for member in members:
                _check(member in seen, f"pickup group {group} member {member} is not an extension")
        for did, dest in [*self.dids.items(), ("default_destination", self.default_destination)]:
            if did != "default_destination":
                _check(_NUMBER_RE.match(did), f"DID {did!r} must be digits")
            if dest.startswith("queue:"):
                _check(dest[6:] in self.queues, f"{did} goes to unknown queue {dest[6:]!r}")
            else:
                _check(dest in seen, f"{did} goes to {dest!r}, which is not an extension")
        if self.carrier_from_user is not None:
            _check(_NUMBER_RE.match(self.carrier_from_user), "carrier_from_user must be digits")
        _check(not self.crm_owner_url or _URL_RE.match(self.crm_owner_url),
               f"crm_owner_url {self.crm_owner_url!r} must be an http(s) URL")
        _check(not self.crm_pbx_token or _TOKEN_RE.match(self.crm_pbx_token),
               "crm_pbx_token: latin letters, digits, - and _ only")
        _check(0.05 <= self.crm_owner_timeout <= 5, "crm_owner_timeout: 0.05 to 5 seconds")
        if (self.phones_contact_host is None) != (self.phones_contact_port is None):
            raise ValueError("phones_contact_host and phones_contact_port go together")


def _check(ok: object, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _check_secret(what: str, secret: str) -> None:
    # ";" starts a comment in Asterisk config files and would silently cut the secret.
    _check(
        secret and secret == secret.strip() and not set(secret) & set(";\r\n\"'"),
        f"{what} must be non-empty, without spaces around it and without ; quotes or newlines",
    )


def template_text(*parts: str) -> str:
    """Read a template shipped in ``asterisk_conf/templates`` (works from a wheel too)."""
    node = resources.files("asterisk_conf").joinpath("templates", *parts)
    return node.read_text(encoding="utf-8")


def render_template(text: str, values: Mapping[str, object]) -> str:
    """Fill ``@{name}`` placeholders; a missing value is an error, never an empty string."""
    return _ConfTemplate(text).substitute({k: str(v) for k, v in values.items()})


def render_pbx_config(settings: PbxConfig) -> dict[str, str]:
    """Return file name -> text of every configuration file the product installs."""
    settings.validate()
    values = {
        "ami_bind": settings.ami_bind,
        "ami_port": settings.ami_port,
        "ami_user": settings.ami_user,
        "ami_secret": settings.ami_secret,
        "ami_permit_lines": "\n".join(f"permit = {p}" for p in settings.ami_permit),
        "sip_bind": settings.sip_bind,
        "sip_port": settings.sip_port,
        "phone_sections": _phone_sections(settings),
        "carrier_host": settings.carrier_host,
        "carrier_port": settings.carrier_port,
        "carrier_from_user_line": (
            f"from_user = {settings.carrier_from_user}"
            if settings.carrier_from_user
            else "; from_user = 74951110000   ; the number clients see (the extension if unset)"
        ),
        "ring_timeout": settings.ring_timeout,
        "outbound_timeout": settings.outbound_timeout,
        "default_destination": settings.default_destination,
        "did_globals": "\n".join(
            f"DID_{did.lstrip('+')} = {dest}" for did, dest in sorted(settings.dids.items())
        )
        or "; (no DIDs configured: every call goes to DID_DEFAULT)",
        "queue_sections": _queue_sections(settings),
        "queue_member_timeout": settings.queue_member_timeout,
        "rtp_start": settings.rtp_start,
        "rtp_end": settings.rtp_end,
        "crm_owner_url": settings.crm_owner_url,
        "crm_pbx_token": settings.crm_pbx_token,
        "crm_owner_timeout": f"{settings.crm_owner_timeout:g}",
    }
    return {name: render_template(template_text("pbx", name), values) for name in PBX_FILES}


def _phone_sections(settings: PbxConfig) -> str:
    fragment = template_text("pbx", "_phone.conf")
    blocks = []
    phones = [(e, s, "manager-phone") for e, s in settings.managers]
    phones += [(e, s, "supervisor-phone") for e, s in settings.supervisors]
    for ext, secret, template in phones:
        if settings.phones_contact_host:
            contact = (
                f"contact = sip:{ext}@{settings.phones_contact_host}:"
                f"{settings.phones_contact_port}"
            )
        else:
            contact = "; the phone registers itself (no static contact)"
        groups = ",".join(sorted(g for g, members in settings.pickup_groups.items()
                                 if ext in members))
        pickup = (f"; pickup group: rings of this phone can be picked up (*8) in it\n"
                  f"named_call_group = {groups}\nnamed_pickup_group = {groups}"
                  if groups else "; in no pickup group")
        blocks.append(
            render_template(
                fragment,
                {"ext": ext, "secret": secret, "template": template, "contact_line": contact,
                 "pickup_lines": pickup},
            )
        )
    return "\n".join(blocks)


def _queue_sections(settings: PbxConfig) -> str:
    blocks = []
    for name, members in sorted(settings.queues.items()):
        lines = [f"[{name}](crm-queue)"]
        lines += [f"member => PJSIP/{m}" for m in members] or ["; no static members"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def write_config(files: Mapping[str, str], directory: Path) -> list[Path]:
    """Write rendered files into ``directory`` (created if missing); return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _pair(value: str) -> tuple[str, str]:
    key, sep, rest = value.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    return key, rest


def main(argv: list[str] | None = None) -> int:
    """``python -m asterisk_conf.render DIR``: write the config for an admin to install."""
    parser = argparse.ArgumentParser(
        prog="python -m asterisk_conf.render",
        description="Write telecrm's Asterisk configuration files into DIR.",
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument("--ami-secret", required=True)
    parser.add_argument("--ami-permit", action="append", help="address/netmask (repeatable)")
    parser.add_argument("--sip-bind", default=PbxConfig.sip_bind)
    parser.add_argument("--sip-port", type=int, default=PbxConfig.sip_port)
    parser.add_argument("--carrier-host", required=True)
    parser.add_argument("--carrier-port", type=int, default=PbxConfig.carrier_port)
    parser.add_argument("--carrier-from-user")
    parser.add_argument("--manager", type=_pair, action="append", help="EXT=SECRET (repeatable)")
    parser.add_argument("--supervisor", type=_pair, action="append", help="EXT=SECRET")
    parser.add_argument("--did", type=_pair, action="append", help="DID=queue:NAME or DID=EXT")
    parser.add_argument("--queue", type=_pair, action="append", help="NAME=EXT,EXT,...")
    parser.add_argument("--pickup-group", type=_pair, action="append",
                        help="NAME=EXT,EXT,... (phones that may pick up each other's calls)")
    parser.add_argument("--ring-timeout", type=int, default=PbxConfig.ring_timeout)
    parser.add_argument("--crm-owner-url", default="",
                        help="sticky routing: the CRM's http://HOST:PORT/pbx/owner")
    parser.add_argument("--crm-pbx-token", default="",
                        help="sticky routing: the token `telecrm routing token` printed")
    args = parser.parse_args(argv)
    settings = PbxConfig(
        ami_secret=args.ami_secret,
        sip_bind=args.sip_bind,
        sip_port=args.sip_port,
        carrier_host=args.carrier_host,
        carrier_port=args.carrier_port,
        carrier_from_user=args.carrier_from_user,
        ring_timeout=args.ring_timeout,
        crm_owner_url=args.crm_owner_url,
        crm_pbx_token=args.crm_pbx_token,
    )
    if args.ami_permit:
        settings.ami_permit = args.ami_permit
    if args.manager:
        settings.managers = args.manager
    if args.supervisor:
        settings.supervisors = args.supervisor
    if args.queue:
        settings.queues = {name: [m for m in exts.split(",") if m] for name, exts in args.queue}
    if args.did:
        settings.dids = dict(args.did)
    if args.pickup_group:
        settings.pickup_groups = {name: [m for m in exts.split(",") if m]
                                  for name, exts in args.pickup_group}
    placeholders = [ext for ext, secret in [*settings.managers, *settings.supervisors]
                    if secret.startswith("change-me")]
    try:
        if placeholders:  # the library defaults are for the sandbox, never for a real PBX
            raise ValueError(f"give every phone a password with --manager/--supervisor "
                             f"EXT=SECRET (still a placeholder: {', '.join(placeholders)})")
        files = render_pbx_config(settings)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in write_config(files, args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
