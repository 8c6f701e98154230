"""Speech in the app: the QC queue, script versions, transcripts on pages, the worker.

- ``routes``: ``/qc``, ``/qc/scripts`` and their API (``add_routes``)
- ``appeal_routes``: a manager's appeal of a fine and the decision on it
- ``sample_routes``: the weekly random sample (N per team, the draw)
- ``openapi_paths``: the feature's paths in the OpenAPI document
- ``roles``: who may use QC at all (not marketers)
- ``scorecard_routes``: ``/qc/scorecards``, the call page's QC panel, weekly averages,
  ``/qc/calibration``
- ``search_routes``: «Поиск по разговорам» ``/transcripts/search`` and its API
- ``dictionary_routes``: «Словари фраз» ``/dictionaries`` and ``/api/dictionaries``
- ``alert_routes``: «Оповещения» ``/alerts``, their rules ``/alerts/rules``, and the API
- ``alerts``: delivering speech alerts (live event, e-mail) right after the transcript
- ``scenario``: the «Сценарий» panel (the script for a client now) for the card, tasks, dialer
- ``service``: transcription jobs wired into ``serve``
- ``cli``: ``telecrm transcribe|kkp|worker`` helpers, ``telecrm qc sample``
"""
