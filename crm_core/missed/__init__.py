"""Missed calls: nobody forgets one.

- ``models``: the SMTP server (MailSettings), people's addresses for notices
  (MailAddress), the per-team escalation rule (MissedCallRule) and what was already
  told about each missed call (MissedCallAlert, so a restart repeats nothing)
- ``mail``: storing the SMTP server and the addresses (the password never shown)
- ``services``: which calls are missed, who is told, when a call counts as returned
- ``report``: missed calls per manager and per queue, and how fast they were returned
"""
