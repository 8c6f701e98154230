"""Several PBXs on the application side: which listeners ``serve`` runs, and ``telecrm pbx``.

- ``targets``: the PBXs to listen to (the ``main`` one of ``TELECRM_AMI_*`` and the
  ``pbxes`` rows), and which PBX a manager's phone is on
- ``cli``: ``telecrm pbx add|edit|list|disable|enable``
"""
