"""What the sales floor does with a client besides calls, and the card's one timeline.

- ``models``: ClientActivity (notes, e-mails, meetings), CallOutcome (the list the head of
  sales keeps), CallResult (a call's outcome and note)
- ``notes``: notes and logged contacts (an e-mail sent or received, a meeting held); a
  logged contact counts as a contact for the sales rules and reports, as an answered call
- ``outcomes``: the outcome list, a call's outcome, the calls still without one
- ``timeline``: everything that happened with a client, newest first
"""
