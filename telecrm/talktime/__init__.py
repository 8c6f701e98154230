"""Talk time in the app: the live board, the tables and the supervisors' rules pages.

- ``routes``: ``/talktime`` and ``/api/talktime...`` (``add_routes``)
- ``board``: today's talk time per manager and the end-of-day job
- ``settings_routes``: rules, holidays and absences pages and API
- ``cli``: ``telecrm talktime ...``
"""
