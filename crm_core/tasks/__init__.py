"""Tasks: callbacks after missed calls and every planned contact with a client.

- ``models``: Task, TaskKind, TaskStatus
- ``services``: create, complete and route tasks; the missed-call rules' entry points
- ``call_rules``: the missed-call rules on a whole written batch of calls
- ``changes``: a task's fields and audit changes when made or closed
- ``leads``: «Заполните карточку» for a lead an unknown caller created
"""
