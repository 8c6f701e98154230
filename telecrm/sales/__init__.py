"""Sales management in the app: tasks, deals, plans, rules, reports and the nightly
status run.

- ``routes``: the JSON API (``add_routes``)
- ``pages, deals_pages``: ``/tasks``, ``/deals``, ``/plan``, ``/sales/settings``
- ``pipeline_routes, report_routes, archive_routes``: pipelines, ``/reports/...``, archiving
- ``openapi``: the feature's OpenAPI paths
- ``nightly``: the nightly status recompute
- ``cli``: ``telecrm sales|clients|invoices|payments|deals|report ...``
"""
