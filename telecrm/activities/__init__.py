"""The client card a manager lives in: its timeline, deals, next contact, notes, logged
e-mails and meetings, and call outcomes.

- ``card``: what the card page shows beyond the client's own facts (``card_context``)
- ``routes``: the JSON API, the ``/outcomes`` page (calls without an outcome, per
  manager) and the outcome list's forms on ``/sales/settings`` (``add_routes``)
- ``openapi``: the feature's OpenAPI paths
"""
