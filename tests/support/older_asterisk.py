"""Rewrite a capture of Asterisk 22 as an older Asterisk would have sent it.

Only Asterisk 22 installs here, so the captures of ``tests/captures/`` are edited
line by line into what Asterisk 20, 18, 16 and 13 send for the same call, by the
differences ``pbx_bridge/VERSIONS.md`` lists with their sources:

* chan_sip (16, 18, and 13; removed in 21): phones and trunks are ``SIP/peer-seq``
  instead of ``PJSIP/endpoint-seq``, and Dial strings name the peer first
  (``carrier/89031234567`` where PJSIP has ``PJSIP/89031234567@carrier``);
* ``TechCause`` on ``Hangup`` exists from Asterisk 22 only;
* Asterisk 13 (the branch-13 event pages) has no ``Linkedid`` and no ``Language``
  in any channel snapshot (nor their prefixed forms, ``DestLinkedid``,
  ``TransfereeLinkedid``...), and no ``BridgeVideoSourceMode`` on bridges.

Everything else (order, timing, bridges, variables) stays as the sandbox PBX sent it.
Make the committed ones again with::

    .venv/bin/python -m tests.support.older_asterisk          # tests/captures/versions/*.ami
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
VERSIONS_DIR = CAPTURES / "versions"


@dataclass(frozen=True)
class Profile:
    version: str
    chan_sip: bool  # phones and trunks on chan_sip
    drop_keys: tuple[str, ...]  # header names (suffixes of prefixed ones too) it never sends


PROFILES = {
    "20": Profile("20", chan_sip=False, drop_keys=("TechCause",)),
    "18": Profile("18", chan_sip=True, drop_keys=("TechCause",)),
    "16": Profile("16", chan_sip=True, drop_keys=("TechCause",)),
    "13": Profile("13", chan_sip=True,
                  drop_keys=("TechCause", "Linkedid", "Language", "BridgeVideoSourceMode")),
}

# Which real capture becomes which committed older one (the rest are checked in memory).
COMMITTED = {
    "asterisk20_inbound_queue": ("20", "inbound_queue"),
    "asterisk18_hold": ("18", "hold"),
    "asterisk18_blind_transfer": ("18", "blind_transfer"),
    "asterisk16_inbound_answered": ("16", "inbound_answered"),
    "asterisk16_outbound_busy": ("16", "outbound_busy"),
    "asterisk16_attended_transfer": ("16", "attended_transfer"),
    "asterisk13_inbound_answered": ("13", "inbound_answered"),
    "asterisk13_outbound_answered": ("13", "outbound_answered"),
    "asterisk13_inbound_queue": ("13", "inbound_queue"),
    "asterisk13_in_progress": ("13", "in_progress"),
}

_PJSIP_DIAL = re.compile(r"^PJSIP/([^@/]+)@([^@/]+)$")  # PJSIP/89031234567@carrier
_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9-]*): ?(.*)$")


def _line(line: str, profile: Profile) -> str | None:
    """One header line as the older version sends it; None when it sends none."""
    match = _KEY.match(line)
    if match is None:
        return line
    key, value = match.groups()
    if any(key.endswith(drop) for drop in profile.drop_keys):
        return None
    if not profile.chan_sip:
        return line
    if key == "DialString":
        dialled = _PJSIP_DIAL.match(value)
        if dialled:  # PJSIP/number@trunk -> trunk/number (Dial(SIP/trunk/number))
            return f"{key}: {dialled.group(2)}/{dialled.group(1)}"
        return f"{key}: {value.removeprefix('PJSIP/')}"
    return f"{key}: {value.replace('PJSIP/', 'SIP/')}"


def convert(data: bytes, profile: Profile) -> bytes:
    """The capture's bytes as ``profile``'s Asterisk sends them (CR LF kept)."""
    out: list[str] = []
    for raw in data.decode("utf-8", "surrogateescape").split("\n"):
        cr = raw.endswith("\r")
        line = _line(raw.removesuffix("\r"), profile)
        if line is not None:
            out.append(line + ("\r" if cr else ""))
    return "\n".join(out).encode("utf-8", "surrogateescape")


def older(name: str, version: str) -> bytes:
    """``tests/captures/<name>.ami`` as Asterisk ``version`` would have sent it."""
    return convert((CAPTURES / f"{name}.ami").read_bytes(), PROFILES[version])


def main() -> None:
    VERSIONS_DIR.mkdir(exist_ok=True)
    for target, (version, source) in COMMITTED.items():
        (VERSIONS_DIR / f"{target}.ami").write_bytes(older(source, version))
        print(f"{target}.ami  <- {source}.ami as Asterisk {version}", file=sys.stderr)


if __name__ == "__main__":
    main()
