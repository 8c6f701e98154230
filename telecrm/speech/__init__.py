"""Speech in the app: the QC queue, script versions, transcripts on pages, the worker.

- ``routes``: ``/qc``, ``/qc/scripts`` and their API (``add_routes``)
- ``service``: transcription jobs wired into ``serve``
- ``cli``: ``telecrm transcribe|kkp|worker`` helpers
"""
