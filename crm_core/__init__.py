"""The domain: everything Telecrm knows, and nothing about Asterisk or the web.

One package per feature, each with its models and services:

- ``people``: users, teams, sign-in sessions, who may see what
- ``clients``: companies, contacts, phone numbers, the CSV import
- ``calls``: the call log (writer, export) and the tracker's call snapshots
- ``tasks``: callbacks and planned contacts
- ``sales``: statuses by rules, payments, deals, plans, reports
- ``talktime``: the 150-minute metric
- ``calltracking``: numbers, attribution, costs, ROI
- ``speech``: transcripts and sales-script checks
- ``recordings``: recording jobs and retention

Shared by all: ``db`` (engine, sessions, base), ``schema`` (every table),
``audit``, ``clock`` and ``timestamps``.
"""
