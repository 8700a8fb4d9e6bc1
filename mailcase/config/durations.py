"""Durations as operators write them in the config: ``"90s"``, ``"4h"``, ``"2d"``, ``"1d4h"``.

A duration has two parts kept apart: whole days, and seconds. Where a business
calendar applies, a day is a business day (Friday 15:00 plus ``"1d"`` is Monday 15:00)
and seconds are open seconds; on a ``24x7`` calendar a day is 24 hours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

_PART = re.compile(r"(\d+)\s*([dhms])", re.IGNORECASE)
_WHOLE = re.compile(r"^\s*(?:\d+\s*[dhms]\s*)+$", re.IGNORECASE)
_SECONDS = {"h": 3600, "m": 60, "s": 1}


class DurationError(ValueError):
    """Not a duration; the message shows the accepted forms."""


@dataclass(frozen=True)
class Duration:
    """``days`` whole (business) days, then ``seconds`` (business) seconds."""

    days: int = 0
    seconds: int = 0

    @property
    def zero(self) -> bool:
        return self.days == 0 and self.seconds == 0

    @property
    def wall_seconds(self) -> int:
        """The length on a calendar that is always open (a day is 24 hours)."""
        return self.days * 86400 + self.seconds

    def __str__(self) -> str:
        parts = [f"{self.days}d"] if self.days else []
        rest = self.seconds
        for unit, size in _SECONDS.items():
            if rest >= size and (rest // size):
                parts.append(f"{rest // size}{unit}")
                rest %= size
        return "".join(parts) or "0s"


def parse(text: str) -> Duration:
    """``text`` as a Duration; DurationError names the forms it accepts."""
    if not _WHOLE.match(text or ""):
        raise DurationError(f"{text!r} is not a duration like \"90s\", \"30m\", \"4h\", "
                            "\"2d\" or \"1d4h\"")
    days = seconds = 0
    for amount, unit in _PART.findall(text):
        if unit.lower() == "d":
            days += int(amount)
        else:
            seconds += int(amount) * _SECONDS[unit.lower()]
    return Duration(days, seconds)


def _from_text(value: Any) -> Any:
    """A config value: a duration string becomes a Duration; anything else is left for
    pydantic to refuse."""
    return parse(value) if isinstance(value, str) else value


# A config key whose value is a duration string ("4h"), read into a Duration.
DurationText = Annotated[Duration, BeforeValidator(_from_text)]


def _some_time(value: Duration) -> Duration:
    if value.zero:
        raise ValueError("must be longer than 0s")
    return value


# A duration key that cannot be 0 (a window, a session's length).
SomeTimeText = Annotated[Duration, BeforeValidator(_from_text), AfterValidator(_some_time)]
