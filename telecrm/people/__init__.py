"""People in the app: the admin's users-and-teams pages, password changes, the commands.

- ``admin_pages``: ``/admin/users`` and ``/admin/teams`` (admins only; ``add_routes``)
- ``api``: ``/api/users`` (admins change, supervisors read their team; ``add_routes``)
- ``openapi``: the users API's paths and schemas for ``/api/openapi.json``
- ``password``: ``/password`` and ``POST /api/me/password`` (``add_routes``)
- ``cli``: ``telecrm users list|edit|deactivate|reactivate|password``

Sign-in, sessions and the forced password change live in ``telecrm.web.auth``; the
rules (who may, what is kept, what is audited) in ``crm_core.people.management``.
"""
