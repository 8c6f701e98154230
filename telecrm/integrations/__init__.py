"""Integrations on the application side: API tokens and outbound webhooks.

- ``auth``: ``Authorization: Bearer <token>`` on ``/api/`` (the middleware), and which
  feature each API route belongs to (the scope a token needs for it)
- ``pages``: ``/admin/tokens``, ``/admin/webhooks`` and the delivery log
  ``/admin/webhooks/deliveries`` (admins), with their forms
- ``api``: the same for programs, ``/api/tokens`` and ``/api/webhooks`` (signed-in
  admins, never a token), and ``openapi`` their part of the API document
- ``cli``: ``telecrm tokens create|list|revoke``
- ``sender``: the round of ``telecrm serve`` that signs and posts due deliveries,
  with retries and the address check (SSRF)
"""
