"""Missed calls on the application side.

- ``mailer``: e-mail through the SMTP server the admin configured (stdlib smtplib on
  a thread)
- ``alerts``: the background task of ``telecrm serve`` that tells owners of new missed
  calls and supervisors of calls not returned in time (browser and e-mail)
- ``routes``: the report page and API, the team's limit, the admin's mail form
- ``cli``: ``telecrm report missed``, ``telecrm mail ...``
"""
