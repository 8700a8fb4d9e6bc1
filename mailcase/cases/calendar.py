"""Business hours: when the clock of a service target runs.

A calendar is a time zone, the opening hours of each weekday (local wall-clock
intervals) and holiday dates, or ``24x7``. Its arithmetic works a local day at a time:
each day's intervals are turned into UTC instants through the zone, so a day on which
the clocks change simply has an hour more or less of business time, and an opening hour
that falls in a spring-forward gap starts when the clocks reach it.
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from mailcase.config.durations import Duration
from mailcase.config.hours import WEEKDAYS, HoursError, Span, parse_hours

SEARCH_DAYS = 3660  # a calendar closed ten years in a row is never open


class CalendarError(HoursError):
    """A calendar that cannot be used: opening hours that cannot be read, or never open."""


@dataclass(frozen=True)
class Calendar:
    """When business time runs: ``always_open`` (24x7), or ``week`` (spans per weekday,
    Monday first) in ``zone`` except on ``holidays``."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    week: tuple[tuple[Span, ...], ...] = ((), (), (), (), (), (), ())
    holidays: frozenset[date] = frozenset()
    always_open: bool = False
    # A country's public holidays (the holidays library computes each year on first use).
    public_holidays: Container[date] = field(default=frozenset(), compare=False)

    @classmethod
    def around_the_clock(cls) -> Calendar:
        return cls(always_open=True)

    @classmethod
    def of(cls, zone: str, hours: Mapping[str, str], holidays: Sequence[date] = (),
           public_holidays: Container[date] = frozenset()) -> Calendar:
        """A calendar from the config's shape: a zone name, ``{"mon": "09:00-17:00"…}``
        (a day not named is closed), holiday dates and a country's public holidays."""
        unknown = sorted(set(hours) - set(WEEKDAYS))
        if unknown:
            raise CalendarError(f"{unknown[0]!r} is not a weekday ({', '.join(WEEKDAYS)})")
        try:
            week = tuple(parse_hours(hours.get(day, ""), day) for day in WEEKDAYS)
        except HoursError as exc:
            raise CalendarError(str(exc)) from None
        if not any(week):
            raise CalendarError("open on no day of the week")
        return cls(zone=ZoneInfo(zone), week=week, holidays=frozenset(holidays),
                   public_holidays=public_holidays)

    # -- the open intervals ---------------------------------------------------------

    def _day(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open intervals of local ``day``, as UTC instants."""
        if day in self.holidays or day in self.public_holidays:
            return []
        found = []
        for opens, closes in self.week[day.weekday()]:
            start_utc = self._instant(day, opens)
            end_utc = (self._instant(day + timedelta(days=1), time(0)) if closes is None
                       else self._instant(day, closes))
            if end_utc > start_utc:
                found.append((start_utc, end_utc))
        return found

    def _instant(self, day: date, wall: time) -> datetime:
        """The UTC instant the zone's clocks show ``wall`` on ``day``: the first of the
        two in an hour repeated in autumn, and in a spring gap (a wall time that never
        shows) the instant the clocks jump past it."""
        local = datetime.combine(day, wall, self.zone)
        naive = local.replace(tzinfo=None)
        late = local.astimezone(UTC)
        if late.astimezone(self.zone).replace(tzinfo=None) == naive:
            return late
        low = int(local.replace(fold=1).astimezone(UTC).timestamp())
        high = int(late.timestamp())
        while high - low > 1:  # the first second whose wall clock has reached ``wall``
            middle = (low + high) // 2
            if datetime.fromtimestamp(middle, self.zone).replace(tzinfo=None) >= naive:
                high = middle
            else:
                low = middle
        return datetime.fromtimestamp(high, UTC)

    def _intervals(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals that end after ``start``, in order, clipped to begin no
        earlier than it."""
        day = start.astimezone(self.zone).date() - timedelta(days=1)
        closed_days = 0  # in a row: only a calendar closed for ten years is never open
        while closed_days < SEARCH_DAYS:
            intervals = self._day(day)
            closed_days = 0 if intervals else closed_days + 1
            for opens, closes in intervals:
                if closes > start:
                    yield max(opens, start), closes
            day += timedelta(days=1)
        raise CalendarError("the calendar is never open")

    # -- arithmetic -----------------------------------------------------------------

    def add(self, start: datetime, duration: Duration) -> datetime:
        """The instant ``duration`` of business time after ``start``: first whole
        business days (the same place in the business day, N open days later), then
        business seconds."""
        start = start.astimezone(UTC)
        if self.always_open:
            return start + timedelta(days=duration.days, seconds=duration.seconds)
        moment = self._add_days(start, duration.days) if duration.days else start
        return self._add_seconds(moment, duration.seconds)

    def _add_seconds(self, start: datetime, seconds: float) -> datetime:
        left = timedelta(seconds=seconds)
        for opens, closes in self._intervals(start):
            if closes - opens >= left:
                return opens + left
            left -= closes - opens
        raise AssertionError("unreachable: _intervals never ends without raising")

    def _add_days(self, start: datetime, days: int) -> datetime:
        first = next(self._intervals(start))[0]  # the next open moment
        local = first.astimezone(self.zone).date()
        spent = self.between(datetime.combine(local, time(0), self.zone), first)
        day = local
        for _ in range(days):
            day += timedelta(days=1)
            while not self._day(day):
                day += timedelta(days=1)
        day_start = datetime.combine(day, time(0), self.zone)
        length = sum(((c - o) for o, c in self._day(day)), timedelta())
        return self._add_seconds(day_start, min(spent, length.total_seconds()))

    def between(self, start: datetime, end: datetime) -> float:
        """Business seconds from ``start`` to ``end`` (0 when ``end`` is earlier)."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if end <= start:
            return 0.0
        if self.always_open:
            return (end - start).total_seconds()
        total = timedelta()
        for opens, closes in self._intervals(start):
            if opens >= end:
                break
            total += min(closes, end) - opens
        return total.total_seconds()

    def is_open(self, moment: datetime) -> bool:
        if self.always_open:
            return True
        moment = moment.astimezone(UTC)
        opens, _ = next(self._intervals(moment))
        return opens == moment
