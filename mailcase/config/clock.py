"""The case's clock as operators configure it: business hours and service targets.

``[[business_hours]]`` names calendars; ``[[sla]]`` rules pick, first match in file order,
the targets a new case is held to and what happens when they run out. The arithmetic
lives in mailcase.lifecycle; here the text is only read and checked, so a mistake stops
the start with the key that holds it.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as public_holidays
from pydantic import Field, field_validator, model_validator

from mailcase.config.base import Priority, Section, check_address, check_owner
from mailcase.config.durations import Duration, DurationText
from mailcase.config.hours import WEEKDAYS, parse_hours

ALWAYS_OPEN = "24x7"  # the calendar every configuration has: always open


class BusinessHoursSettings(Section):
    """One business calendar: when the clock of a service target runs."""

    name: str
    time_zone: str = "UTC"  # an IANA zone name, such as "Europe/Berlin"
    # Opening hours per weekday ("09:00-17:00", "08:00-12:00, 13:00-17:00", "24h");
    # a day not named is closed.
    hours: dict[str, str] = Field(default_factory=lambda: {
        day: "09:00-17:00" for day in WEEKDAYS[:5]})
    holidays: tuple[dt.date, ...] = ()  # closed on these dates
    # A country's public holidays as well (ISO 3166 code, e.g. "DE"), and its
    # subdivision (e.g. "BY"), from the holidays library.
    country: str | None = None
    subdivision: str | None = None

    @field_validator("name")
    @classmethod
    def _not_built_in(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a calendar needs a name")
        if value == ALWAYS_OPEN:
            raise ValueError(f"{ALWAYS_OPEN!r} is built in (always open); choose another name")
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone like "
                             "\"Europe/Berlin\"") from None
        return value

    @field_validator("hours")
    @classmethod
    def _readable_hours(cls, value: dict[str, str]) -> dict[str, str]:
        days = {day.strip().lower(): text for day, text in value.items()}
        for day, text in days.items():
            if day not in WEEKDAYS:
                raise ValueError(f"{day!r} is not a weekday ({', '.join(WEEKDAYS)})")
            parse_hours(text, day)
        if not any(parse_hours(text, day) for day, text in days.items()):
            raise ValueError("open on no day of the week")
        return days

    @model_validator(mode="after")
    def _known_country(self) -> BusinessHoursSettings:
        if self.subdivision is not None and self.country is None:
            raise ValueError("subdivision: name the country it belongs to (country)")
        if self.country is not None:
            try:
                public_holidays.country_holidays(self.country, subdiv=self.subdivision)
            except NotImplementedError:
                raise ValueError(f"country: no public holidays known for "
                                 f"{self.country!r} (an ISO 3166 code like \"DE\")") from None
        return self


class SlaSettings(Section):
    """One service-level rule: the first (in file order) whose conditions all hold gives
    a new case its targets. A condition left empty always holds."""

    name: str
    priority: tuple[Priority, ...] = ()
    mailbox: tuple[str, ...] = ()  # the support addresses the case came to
    queue: tuple[str, ...] = ()  # the queue owning the case when it opens
    type: tuple[str, ...] = ()
    # A [[business_hours]] name or "24x7"; unset: the case's mailbox's, else "24x7".
    business_hours: str | None = None
    # The targets, in business time of that calendar; a target not set is not kept.
    first_response: DurationText | None = None  # to the first public reply by an agent
    next_response: DurationText | None = None  # from each customer reply to the answer
    resolution: DurationText | None = None  # to the close
    # At this share of a target the owner is warned (0: no warning).
    warning: Annotated[float, Field(ge=0, lt=1)] = 0.8
    # At a breach: is_escalated is set, the case may move to this status and to this
    # owner (an agent or queue:NAME), and these addresses are alerted with the owner.
    escalate_status: str | None = None
    reassign: str | None = None
    alert: tuple[str, ...] = ()

    @field_validator("mailbox", "alert")
    @classmethod
    def _addresses(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_address(value) for value in values)

    @field_validator("reassign")
    @classmethod
    def _owner(cls, value: str | None) -> str | None:
        return None if value is None else check_owner(value)

    @model_validator(mode="after")
    def _some_target(self) -> SlaSettings:
        targets = (self.first_response, self.next_response, self.resolution)
        if all(target is None or target.zero for target in targets):
            raise ValueError("first_response: give at least one target (first_response, "
                             "next_response or resolution)")
        return self

    def targets(self) -> dict[str, Duration]:
        """The targets this rule keeps, by name."""
        named = {"first_response": self.first_response,
                 "next_response": self.next_response, "resolution": self.resolution}
        return {name: value for name, value in named.items()
                if value is not None and not value.zero}
