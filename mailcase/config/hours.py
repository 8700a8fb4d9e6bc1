"""Opening hours as operators write them: ``"09:00-12:30, 13:30-17:00"``, ``"24h"``,
``"closed"``, read into spans the business calendar (lifecycle.calendar) counts in."""

from __future__ import annotations

from datetime import time
from itertools import pairwise

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class HoursError(ValueError):
    """Opening hours that cannot be read; the message names the day and the text."""


Span = tuple[time, time | None]  # None: to the end of the day


def parse_hours(text: str, day: str) -> tuple[Span, ...]:
    """``"09:00-12:30, 13:30-17:00"`` as spans; ``""`` or ``"closed"`` is none and
    ``"24h"`` the whole day."""
    text = text.strip().lower()
    if text in ("", "closed"):
        return ()
    if text == "24h":
        return ((time(0), None),)
    spans: list[Span] = []
    for part in text.split(","):
        try:
            opens_text, closes_text = (p.strip() for p in part.split("-"))
            opens = time.fromisoformat(opens_text)
            closes = None if closes_text == "24:00" else time.fromisoformat(closes_text)
        except ValueError:
            raise HoursError(f"{day}: {part.strip()!r} is not opening hours like "
                                "\"09:00-17:00\"") from None
        if closes is not None and closes <= opens:
            raise HoursError(f"{day}: {part.strip()!r} closes before it opens")
        spans.append((opens, closes))
    spans.sort(key=lambda s: s[0])
    for (_, end), (start, _) in pairwise(spans):
        if end is None or end > start:
            raise HoursError(f"{day}: {text!r} has overlapping hours")
    return tuple(spans)
