"""One family of domain errors, each with a stable code.

The domain says *what* was refused (``code``, plus ``params`` for the sentence) and
how (``kind``: invalid, forbidden, not found, conflict). It never says it in Russian
or as an HTTP status: the application maps codes to both in one table
(``telecrm.messages``), so the web page, the JSON answer and the command line give
the same sentence. ``str()`` stays an English sentence for logs and developers.
"""

from __future__ import annotations

from typing import ClassVar, Literal

Kind = Literal["invalid", "forbidden", "not_found", "conflict"]


class DomainError(ValueError):
    """A change or a question the domain refuses; nothing was written."""

    kind: ClassVar[Kind] = "invalid"

    def __init__(self, code: str, message: str = "", /, **params: object) -> None:
        super().__init__(message or code)
        self.code = code
        self.params = params


class NotAllowedError(DomainError):
    """The actor's role or team does not let him do this."""

    kind: ClassVar[Kind] = "forbidden"


class NotFoundError(DomainError):
    """The thing named does not exist (or the actor may not know it does)."""

    kind: ClassVar[Kind] = "not_found"


class ConflictError(DomainError):
    """The change contradicts what is already stored (a duplicate, a stale state)."""

    kind: ClassVar[Kind] = "conflict"
