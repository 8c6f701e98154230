"""Clients: companies, contact persons and phone numbers.

- ``models``: Client, Contact, Phone, ClientStatus
- ``services``: create, edit and find clients (by any written form of a number)
- ``phones``: phone number normalisation and formatting
- ``importing``: the client CSV import
"""
