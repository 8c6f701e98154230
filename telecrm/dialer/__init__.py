"""«Обзвон» on the web: the manager's dialer page and API, the team board, the retry rules.

``routes.add_routes`` registers it; :mod:`.card` gathers what the page shows of a client.
"""
