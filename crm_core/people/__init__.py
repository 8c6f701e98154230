"""People: users, teams, sign-in sessions and who may see what.

- ``models``: Role, Team, User, WebSession
- ``users``: add, edit and look up users
- ``sessions``: server-side sign-in sessions
- ``access``: which calls, clients and recordings a user may see
"""
