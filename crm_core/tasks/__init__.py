"""Tasks: callbacks after missed calls and every planned contact with a client.

- ``models``: Task, TaskKind, TaskStatus
- ``services``: create, complete and route tasks; the missed-call rules
- ``leads``: «Заполните карточку» for a lead an unknown caller created
"""
