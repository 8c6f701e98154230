"""People: users, teams, sign-in sessions and who may see what.

- ``models``: Role, Team, User, UserPhone (his devices and mobiles), UserDeactivation,
  WebSession
- ``users``: add and look up users, extensions and teams; ``party_directory``, whose
  phone each device and mobile is (for the call tracker)
- ``management``: what admins change (users, their phones, teams, switching off,
  passwords), audited
- ``sessions``: server-side sign-in sessions
- ``access``: which calls, clients and recordings a user may see
"""
