"""Speech in the app: the QC queue, script versions, transcripts on pages, the worker.

- ``routes``: ``/qc``, ``/qc/scripts`` and their API (``add_routes``)
- ``search_routes``: «Поиск по разговорам» ``/transcripts/search`` and its API
- ``dictionary_routes``: «Словари фраз» ``/dictionaries`` and ``/api/dictionaries``
- ``scenario``: the «Сценарий» panel (the script for a client now) for the card, tasks, dialer
- ``service``: transcription jobs wired into ``serve``
- ``cli``: ``telecrm transcribe|kkp|worker`` helpers
"""
