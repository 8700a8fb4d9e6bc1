"""Business-time arithmetic: weekends, holidays, both DST changes and targets that span
several days, all on fixed instants (no clock is read)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailcase import config
from mailcase.cases.calendar import Calendar, CalendarError
from mailcase.cases.targets import TargetRules
from mailcase.config.durations import Duration, DurationError, parse

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS_9_TO_5 = {day: "09:00-17:00" for day in ("mon", "tue", "wed", "thu", "fri")}
OFFICE = Calendar.of("Europe/Berlin", WEEKDAYS_9_TO_5, [date(2026, 12, 25)])


def at(year: int, month: int, day: int, hour: int, minute: int = 0,
       zone: ZoneInfo = BERLIN) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone)


@pytest.mark.parametrize(("text", "days", "seconds"), [
    ("90s", 0, 90), ("30m", 0, 1800), ("4h", 0, 14400), ("2d", 2, 0),
    ("1d4h", 1, 14400), ("1h 30m", 0, 5400), ("2D", 2, 0),
])
def test_durations_as_operators_write_them(text: str, days: int, seconds: int) -> None:
    assert parse(text) == Duration(days, seconds)


@pytest.mark.parametrize("text", ["", "4", "h", "4 hours", "-4h", "4h!", "1.5h"])
def test_anything_else_is_refused_with_the_forms(text: str) -> None:
    with pytest.raises(DurationError, match='"4h"'):
        parse(text)


def test_a_duration_prints_as_it_is_written() -> None:
    assert [str(parse(t)) for t in ("1d4h", "90s", "30m", "0s")] == ["1d4h", "1m30s", "30m",
                                                                      "0s"]


def test_friday_evening_waits_for_monday_morning() -> None:
    """The README's example: a case at Friday 17:55 with a 4-hour target starts on
    Monday at 09:00 and is due at 13:00."""
    due = OFFICE.add(at(2026, 12, 4, 17, 55), parse("4h"))
    assert due == at(2026, 12, 7, 13)
    assert OFFICE.between(at(2026, 12, 4, 17, 55), due) == 4 * 3600


def test_a_target_spans_nights_weekends_and_holidays() -> None:
    """20 business hours from Wednesday 14:00 before Christmas: Wed 3 h, Thu 8 h, Fri
    25 Dec a holiday, the weekend, Mon 8 h, Tue 1 h."""
    due = OFFICE.add(at(2026, 12, 23, 14), parse("20h"))
    assert due == at(2026, 12, 29, 10)
    assert OFFICE.between(at(2026, 12, 23, 14), due) == 20 * 3600


def test_days_are_business_days_at_the_same_place() -> None:
    """Friday 15:00 + 1d is Monday 15:00; Thursday 24 Dec 11:00 + 1d skips the holiday
    and the weekend; a case opened while closed counts from the next opening."""
    assert OFFICE.add(at(2026, 12, 4, 15), parse("1d")) == at(2026, 12, 7, 15)
    assert OFFICE.add(at(2026, 12, 24, 11), parse("1d")) == at(2026, 12, 28, 11)
    assert OFFICE.add(at(2026, 12, 5, 12), parse("2d")) == at(2026, 12, 9, 9)
    assert OFFICE.add(at(2026, 12, 4, 15), parse("1d3h")) == at(2026, 12, 8, 10)


def test_spring_forward_and_fall_back() -> None:
    """A 24-hour calendar in Berlin has 23 hours on 29 March 2026 and 25 on 25 October;
    9-to-5 hours keep their local times across both changes."""
    always = Calendar.of("Europe/Berlin", {d: "24h" for d in
                                           ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    assert always.between(at(2026, 3, 29, 0), at(2026, 3, 30, 0)) == 23 * 3600
    assert always.between(at(2026, 10, 25, 0), at(2026, 10, 26, 0)) == 25 * 3600
    assert always.add(at(2026, 3, 28, 12), parse("24h")) == at(2026, 3, 29, 13)
    # Friday 16:00 before each change + 2 business hours: Monday 10:00 local.
    assert OFFICE.add(at(2026, 3, 27, 16), parse("2h")) == at(2026, 3, 30, 10)
    assert OFFICE.add(at(2026, 10, 23, 16), parse("2h")) == at(2026, 10, 26, 10)
    # New York changes on other dates; its 9-to-5 stays 9-to-5 there.
    office_ny = Calendar.of("America/New_York", WEEKDAYS_9_TO_5)
    assert office_ny.add(at(2026, 3, 6, 16, zone=NEW_YORK), parse("2h")) == at(
        2026, 3, 9, 10, zone=NEW_YORK)


def test_an_opening_hour_in_the_spring_gap_starts_when_the_clocks_reach_it() -> None:
    """Opening at 02:30 on the night the clocks jump from 02:00 to 03:00: the day has
    the hours from 03:00 (the clock never shows 02:30)."""
    night = Calendar.of("Europe/Berlin", {"sun": "02:30-04:00"})
    assert night.between(at(2026, 3, 29, 0), at(2026, 3, 29, 5)) == 3600
    assert night.add(at(2026, 3, 28, 12), parse("30m")) == at(2026, 3, 29, 3, 30)


def test_split_hours_and_24x7() -> None:
    lunch = Calendar.of("UTC", {"mon": "09:00-12:00, 13:00-17:00"})
    monday = datetime(2026, 12, 7, 11, tzinfo=UTC)
    assert lunch.add(monday, parse("2h")) == datetime(2026, 12, 7, 14, tzinfo=UTC)
    assert lunch.between(monday, datetime(2026, 12, 7, 14, tzinfo=UTC)) == 2 * 3600
    assert not lunch.is_open(datetime(2026, 12, 7, 12, 30, tzinfo=UTC))
    assert lunch.is_open(datetime(2026, 12, 7, 13, 0, tzinfo=UTC))
    always = Calendar.around_the_clock()
    assert always.add(monday, parse("2d")) == datetime(2026, 12, 9, 11, tzinfo=UTC)
    assert always.between(monday, monday) == 0


@pytest.mark.parametrize(("hours", "says"), [
    ({"mon": "9-17"}, "mon: '9-17' is not opening hours"),
    ({"tue": "17:00-09:00"}, "closes before it opens"),
    ({"wed": "09:00-13:00, 12:00-17:00"}, "overlapping"),
    ({"monday": "09:00-17:00"}, "'monday' is not a weekday"),
    ({"sat": "closed"}, "open on no day"),
])
def test_unreadable_hours_are_refused_with_the_day(hours: dict[str, str], says: str) -> None:
    with pytest.raises(CalendarError, match=says):
        Calendar.of("UTC", hours)


def test_a_countrys_public_holidays_close_the_calendar(tmp_path: Path) -> None:
    """A calendar with country = "DE" (from the config, through the holidays library)
    is closed on Christmas Day: Thursday 24 December 16:00 + 2h is Monday 10:00."""
    path = tmp_path / "mailcase.toml"
    path.write_text('[[business_hours]]\nname = "office"\ntime_zone = "Europe/Berlin"\n'
                    'country = "DE"\nsubdivision = "BE"\n'
                    '[[mailbox]]\naddress = "support@example.com"\n')
    calendar = TargetRules.of(config.load(path)).calendar("office")
    start = datetime(2026, 12, 24, 16, 0, tzinfo=BERLIN)
    assert calendar.add(start, Duration(0, 7200)) == datetime(2026, 12, 28, 10, 0,
                                                              tzinfo=BERLIN)
    assert not calendar.is_open(datetime(2026, 12, 25, 10, 0, tzinfo=BERLIN))


def test_spans_longer_than_the_search_limit_still_count() -> None:
    """Business time across twelve years (a case imported from an old archive) is
    counted, not taken for a calendar that is never open."""
    start, end = at(2014, 3, 3, 9), at(2026, 3, 2, 9)  # Mondays, twelve years apart
    days = (end.date() - start.date()).days
    weekdays = sum(1 for n in range(days) if (start.date() + timedelta(n)).weekday() < 5)
    assert OFFICE.between(start, end) == weekdays * 8 * 3600  # no holiday in between
