"""Speech in the app: the QC queue, script versions, transcripts on pages, the worker.

- ``routes``: ``/qc``, ``/qc/scripts`` and their API (``add_routes``)
- ``scenario``: the «Сценарий» panel (the script for a client now) for the card, tasks, dialer
- ``service``: transcription jobs wired into ``serve``
- ``cli``: ``telecrm transcribe|kkp|worker`` helpers
"""
