"""Sales management: statuses by rules, payments, deals, plans and the head of sales'
reports.

- ``models``: invoices, payments, deals, pipelines, plans, status and owner history
- ``settings``: the rules (status periods, ABC, contact frequency)
- ``client_status``: status, ABC group and frequency judged by the rules
- ``payments, deals, pipelines, clients, archive, tasks``: the services
- ``reports``: contact frequency, overdue clients, summary, qualification, activity, deals
"""
