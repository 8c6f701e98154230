"""Presence in the application: the header switch, the supervisors' live view and report.

- ``routes``: ``/api/presence`` (read, change), ``/api/presence/report``,
  ``/api/presence/reasons``, the ``/presence`` page
- ``queue``: pausing a manager's queue membership in Asterisk (AMI ``QueuePause``
  through the running listener's session) and the live event of a change
- ``openapi``: the OpenAPI paths of the routes
"""
