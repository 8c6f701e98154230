"""What every page and JSON route shares: sign-in, CSRF, errors, parameters, templates.

Feature pages and routes live with their feature (``telecrm/<feature>/``); ``site``
assembles them into the app (``setup_web``), ``routes`` lists every URL, ``keys``
names what the app factory wires in. Importing this package imports nothing else,
so a feature can use ``keys`` without pulling in every route.
"""
