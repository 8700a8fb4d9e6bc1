"""The one error of the case rules."""

from __future__ import annotations


class CaseError(Exception):
    """A request that the case rules refuse; the message says why."""
