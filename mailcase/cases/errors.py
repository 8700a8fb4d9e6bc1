"""The one error of the case rules."""

from __future__ import annotations


class CaseError(Exception):
    """A request that the case rules refuse; the message says why."""


class NotFound(CaseError):
    """What the request names is not there: no such case (the API answers 404)."""


class BadValue(CaseError):
    """A value the case rules cannot take at all: not a case number, an unknown status
    or priority, an empty text. The request was malformed rather than refused, so a
    door that got the value from its caller's arguments says so (the CLI exits 2)."""
