"""Talk time: the 150-minute daily metric, its rules, holidays, absences and violations.

- ``models``: rules, holidays, absences, violations, the daily rollup
- ``metric``: talk time per manager and day, the live board, violations
- ``rules``: rules, holidays and absences as supervisors edit them
- ``rollup``: finished days stored for fast month tables
- ``workhours``: the next working time by the calendar (deadlines set by rules)
"""
