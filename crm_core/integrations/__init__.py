"""Integrations: API tokens and outbound webhooks, so other systems read and learn.

- ``models``: API tokens (ApiToken, only a SHA-256 of the token kept), webhook endpoints
  (WebhookEndpoint) and the outbox of their deliveries (WebhookDelivery)
- ``scopes``: the features a token may read or write, and what a scope is called
- ``admin``: the checks every change makes (an admin's; the name it is given)
- ``tokens``: creating, resolving and revoking tokens (audited)
- ``webhooks``: registering endpoints (audited), the events they may hear, and the
  address check that keeps the sender off the local network
- ``outbox``: :func:`queue_event` (what any feature calls in its own transaction when
  something happened), the retry schedule, the delivery log
- ``hooks``: ``call.ended`` as a call hook, wired by the composition root
"""
