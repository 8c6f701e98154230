"""Presence: whether a manager is at his desk («на месте») or paused, and why.

- ``models``: PresenceReason (the pause reasons the head of sales keeps), PresenceChange
  (the audited history of each manager's state)
- ``services``: set a manager's state, read everyone's current state, the seconds spent
  in each state over a stretch of time, and the reasons as supervisors edit them
"""
