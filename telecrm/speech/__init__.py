"""Speech in the app: the QC queue, script versions, transcripts on pages, the worker.

- ``routes``: ``/qc``, ``/qc/scripts`` and their API (``add_routes``)
- ``scorecard_routes``: ``/qc/scorecards``, the call page's QC panel, weekly averages
- ``service``: transcription jobs wired into ``serve``
- ``cli``: ``telecrm transcribe|kkp|worker`` helpers
"""
