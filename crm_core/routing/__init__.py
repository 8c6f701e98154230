"""Sticky routing («липкость»): a known client's inbound call rings his owner first.

- ``models``: RoutingRule (on/off and ring time per team, on/off per DID), PbxToken (the
  hashed token the dialplan presents)
- ``services``: the rules as supervisors and admins set them (audited), the PBX token,
  and :func:`load_snapshot`, everything the owner lookup needs in memory
"""
