"""People: users, teams, sign-in sessions and who may see what.

- ``models``: Role, Team, User, UserDeactivation, WebSession
- ``users``: add and look up users, extensions and teams
- ``management``: what admins change (users, teams, switching off, passwords), audited
- ``sessions``: server-side sign-in sessions
- ``access``: which calls, clients and recordings a user may see
"""
