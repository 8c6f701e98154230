"""PBXs: the Asterisks of a company with branches, one AMI listener each.

- ``models``: Pbx (AMI connection, recordings source; switched off, never deleted)
- ``services``: add, edit, switch off and on, list (audited; the secret never shown)
"""
