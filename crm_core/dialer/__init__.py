"""«Обзвон»: a progressive dialer through a manager's own call tasks.

Exposes the order of the day's call tasks and the retry rules (:mod:`.queue`, pure),
the tables (:mod:`.models`) and the session services (:mod:`.services`).
"""
