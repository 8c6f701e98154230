"""Sticky routing in the application: the PBX's owner lookup, the switches, the token.

- ``lookup``: :class:`OwnerLookup`, the in-memory snapshot behind ``POST /pbx/owner``
- ``routes``: ``POST /pbx/owner`` (the dialplan's question), ``/routing`` (the form),
  ``/api/routing`` (the same as JSON)
- ``cli``: ``telecrm routing show|team|did|token``
- ``openapi``: the OpenAPI paths of the JSON routes
"""
