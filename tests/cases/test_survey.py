"""Satisfaction surveys: a close in a surveyed mailbox mails the contact two signed
links; a click records the rating once (a second changes it), a bad rating tells the
owner once, a forged or expired link is refused, and the rating shows in the case and
in /metrics. The links' web pages are tested with the Web-to-Case listener."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest
from sqlalchemy import select

from mailcase.app import App
from mailcase.cases.desk import NewCase
from mailcase.cases.survey import SurveyRefused
from mailcase.cli import main
from mailcase.store.models import OutboundMail

BOB, CARL = "bob@example.com", "carl@customer.org"
SURVEYED = {"address": "support@example.com", "satisfaction_survey": True}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def sent(app: App, subject_part: str) -> list[tuple[str, str]]:
    """(recipient, text) of every queued mail whose subject holds ``subject_part``."""
    with app.sessions() as session:
        rows = session.execute(select(OutboundMail.rcpt_to, OutboundMail.raw)
                               .order_by(OutboundMail.id)).all()
    found = []
    for rcpt, raw in rows:
        message = BytesParser(policy=default).parsebytes(raw)
        if subject_part in (message["Subject"] or ""):
            body = message.get_body(("plain",))  # type: ignore[attr-defined]
            found.append((rcpt, body.get_content() if body else ""))
    return found


def closed_case(make_app: Callable[..., App], tmp_path: Path, clock: Clock) -> tuple[App, str]:
    """A case owned by Bob, closed by him in a surveyed mailbox; its survey token."""
    app = make_app(clock=clock, mailbox=SURVEYED, cases={"default_owner": BOB},
                   satisfaction={"link_base": "https://support.example.com/"})
    assert main(["-c", str(tmp_path / "mailcase.toml"), "agents", "add", BOB]) == 0
    desk = app.desk()
    desk.new(NewCase(email=CARL, subject="Printer", assign_using_rules=True),
             desk.author(BOB))
    desk.close(1000, "New fuser.", desk.author(BOB))
    [(rcpt, text)] = sent(app, "How did we do?")
    assert rcpt == CARL
    links = re.findall(r"https://support\.example\.com/satisfaction/(\S+)\?rating=(\w+)",
                       text)
    assert [rating for _, rating in links] == ["good", "bad"]
    assert links[0][0] == links[1][0]
    return app, links[0][0]


def test_a_rating_is_recorded_changed_and_a_bad_one_tells_the_owner_once(
        make_app: Callable[..., App], tmp_path: Path) -> None:
    """good, then bad (the owner is told), bad again (not told twice), a comment; the
    case and /metrics show it."""
    clock = Clock()
    app, token = closed_case(make_app, tmp_path, clock)
    surveys = app.surveys()
    assert surveys.answer(token, "good") == "00001000"
    assert sent(app, "Rated bad") == []
    surveys.answer(token, "bad")
    surveys.answer(token, "bad", "It broke again the next day.")
    [(rcpt, _)] = sent(app, "Rated bad")
    assert rcpt == BOB
    case = app.desk().show(1000)
    assert case["satisfaction"]["rating"] == "bad"
    assert case["satisfaction"]["comment"] == "It broke again the next day."
    assert [e["summary"] for e in case["events"] if e["kind"] == "satisfaction"] == [
        "the contact rated it good", "the contact rated it bad (was good)"]
    assert 'mailcase_satisfaction{rating="bad"} 1.0' in app.metrics.exposition().decode()


def test_forged_expired_and_unknown_answers_are_refused(make_app: Callable[..., App],
                                                        tmp_path: Path) -> None:
    """A link for another case, an altered one, one past satisfaction.valid_days and a
    rating that is neither good nor bad change nothing."""
    clock = Clock()
    app, token = closed_case(make_app, tmp_path, clock)
    surveys = app.surveys()
    altered = token[:-1] + ("b" if token.endswith("a") else "a")
    for forged in (token.replace("survey-1000-", "survey-1001-"), altered,
                   "survey-1000-99999999999-aaaa"):
        with pytest.raises(SurveyRefused) as refused:
            surveys.answer(forged, "good")
        assert not refused.value.expired
    with pytest.raises(Exception, match="unknown rating"):
        surveys.answer(token, "meh")
    clock.now += timedelta(days=31)
    with pytest.raises(SurveyRefused) as late:
        surveys.answer(token, "good")
    assert late.value.expired
    assert app.desk().show(1000)["satisfaction"] is None
