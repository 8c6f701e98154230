"""The call log in the app: the ``/calls`` page with its filters, its CSV, ``GET /api/calls``.

- ``filters``: the query string shared by the page, the CSV and the API
- ``routes``: the page, ``/calls.csv`` and ``/api/calls`` (``add_routes``)
"""
