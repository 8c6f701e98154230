"""Clients: companies, contact persons, phone numbers and e-mails.

- ``models``: Client, Contact, Phone, Email, ClientSearchTerm, ClientStatus
- ``services``: create clients and find them by any written form of a number
- ``cards``: the company card: requisites (INN/KPP checked), contacts, phones, e-mails
- ``search``: the search index kept on every write, and the client list with its cursor
- ``terms``: the words a client is found by (no database)
- ``merge``: two duplicates become one; every table with a ``client_id`` moves
- ``phones``: phone number normalisation and formatting
- ``importing``: the client CSV import
"""
