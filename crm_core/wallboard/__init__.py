"""The supervisor's wallboard: queues and managers at a glance, for a wall screen.

- ``live``: who waits in which queue now, and each manager's state (pure functions
  over the call tracker's snapshots)
- ``figures``: a queue's day so far from the stored calls (answered, abandoned,
  service level, average wait)
"""
