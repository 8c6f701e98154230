"""A PBX that Telecrm did not configure: the sandbox's "foreign" profile.

Its dialplan (``templates/foreign/``) is written the way FreePBX and hand-made
PBXs are: ``from-trunk``/``from-internal`` contexts, Gosub subroutines, ring
groups and follow-me through Local channels, FreePBX's feature codes and
recording names, no ``CRM_*`` variable and no ``timestampevents``. Phones are
named by account code, by a person's name and by model, so the CRM can only
tell whose they are from its users' devices. The test suite places its calls
for real on it (``tests/support/foreign.py``) to prove the call log is right
on a PBX configured by somebody else.
"""

from __future__ import annotations

from dataclasses import dataclass

from asterisk_conf.render import render_template, template_text

__all__ = [
    "DIDS",
    "FOREIGN_FILES",
    "FOREIGN_PHONES",
    "MOBILE_104",
    "TRUNK",
    "ForeignPhone",
    "render_foreign_config",
]

FOREIGN_FILES = ("manager.conf", "pjsip.conf", "extensions.conf", "features.conf", "rtp.conf")
TRUNK = "beeline"
MOBILE_104 = "89160000004"  # the follow-me target of extension 104, as the PBX dials it


@dataclass(frozen=True)
class ForeignPhone:
    """One phone of the foreign PBX.

    ``device`` is the PJSIP endpoint; ``extension`` what people dial to reach it;
    ``contact_user`` the user part the PBX calls it at (the phones instance keys its
    behaviours by those digits).
    """

    device: str
    extension: str
    label: str
    contact_user: str

    @property
    def channel_prefix(self) -> str:
        return f"PJSIP/{self.device}"


FOREIGN_PHONES = (
    ForeignPhone("ivanov", "101", "Ivanov", "101"),
    ForeignPhone("102-yealink", "102", "Petrov", "102"),
    ForeignPhone("150010003", "103", "Sidorov", "150010003"),
    ForeignPhone("150010004", "104", "Kozlov", "150010004"),
    ForeignPhone("150010005", "105", "Nikolaev", "150010005"),  # the head of sales
)
# DID -> (context, destination) of ext-did's inbound routes.
DIDS = {
    "74951230001": ("ext-local", "101"),
    "74951230002": ("ext-group", "600"),
    "74951230003": ("followme", "104"),
    "74951230004": ("ext-local", "103"),
}


def render_foreign_config(*, ami_port: int, ami_user: str, ami_secret: str, sip_port: int,
                          carrier_port: int, phones_port: int, secrets: dict[str, str],
                          rtp_start: int, rtp_end: int, ring_timeout: int = 6,
                          outbound_timeout: int = 20, group_timeout: int | None = None
                          ) -> dict[str, str]:
    """File name -> text of the foreign PBX's configuration (sandbox ports filled in)."""
    fragment = template_text("foreign", "_phone.conf")
    sections = "\n".join(render_template(fragment, {
        "name": phone.device, "label": phone.label, "cid": phone.extension,
        "secret": secrets[phone.device], "contact_user": phone.contact_user,
        "phones_port": phones_port}) for phone in FOREIGN_PHONES)
    routes = "\n".join(
        f"exten => {did},1,Gosub(app-did-route,s,1({context},{dest}))"
        for did, (context, dest) in DIDS.items())
    values = {
        "ami_port": ami_port, "ami_user": ami_user, "ami_secret": ami_secret,
        "sip_port": sip_port, "carrier_port": carrier_port,
        "phone_sections": sections, "rtp_start": rtp_start, "rtp_end": rtp_end,
        "ring_timeout": ring_timeout, "outbound_timeout": outbound_timeout,
        "group_timeout": group_timeout or ring_timeout,
        "device_globals": "\n".join(f"DEV_{p.extension} = PJSIP/{p.device}"
                                    for p in FOREIGN_PHONES),
        "did_routes": routes, "mobile_104": MOBILE_104,
    }
    return {name: render_template(template_text("foreign", name), values)
            for name in FOREIGN_FILES}
