"""Backups and restore: a consistent database dump, the recordings, and a manifest of checksums.

``telecrm backup DIR`` and ``telecrm restore DIR`` (:mod:`.cli`) run :func:`.service.make_backup`
and :func:`.service.restore_backup`; :mod:`.database` dumps and loads SQLite and PostgreSQL,
:mod:`.files` copies and checks the recording files, :mod:`.manifest` reads and writes
``manifest.json``. Run from cron by an administrator, never from a web page.
"""
