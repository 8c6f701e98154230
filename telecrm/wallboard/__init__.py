"""The supervisor's wallboard in the app: the wall-screen page and its JSON.

- ``routes``: ``/wallboard`` and ``/api/wallboard`` (``add_routes``), the board's data
  from the running PBXs' call trackers and the stored calls
"""
