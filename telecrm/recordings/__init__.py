"""Recordings in the app: the player's audio, live listening and the admin commands.

- ``routes``: recording audio (HTTP Range), listen/whisper/barge, problems (``add_routes``)
- ``cli``: ``telecrm recordings ...``
"""
