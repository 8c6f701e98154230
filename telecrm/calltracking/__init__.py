"""Call tracking in the app: the marketers' page and API, the public snippet and lease
endpoint, number management, visit history, Redis leases and the source on the
ringing channel.

- ``routes``: pages and JSON routes (``add_routes``)
- ``public``: ``/ct.js`` and ``/api/ct/session`` (public, hostile ground)
- ``leads_public``: ``/api/ct/lead`` and ``/api/ct/callback``: site forms, the callback widget
- ``leads_pages``: «Заявки» (``/leads``) and «Маркетинговые отчёты» (``/calltracking/marketing``)
- ``manage_api``: costs, numbers, sites and pools as the marketer edits them
- ``openapi``: the feature's OpenAPI paths
- ``cli``: ``telecrm ct ...`` and ``telecrm report calltracking``
- ``ads``: ``/calltracking/ads``: cost exports, conversion accounts, files, send now
- ``conversion_upload``: the Metrica and Google Ads upload client, the round of ``serve``
- ``conversions_cli``: ``telecrm conversions export|send``, ``ct costs import --system``
- ``history, lease_store, live``: visit history writer, Redis leases, CRM_SOURCE on the channel
"""
