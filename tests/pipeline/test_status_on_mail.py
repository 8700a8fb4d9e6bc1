"""What a reply does to a case's status: an agent's /hold and a mailbox's hold_on_reply
(by mail and from the command line), replies to a closed case within and after
reopen_days, and a customer's thanks that leaves a closed case closed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from mailcase.app import App
from mailcase.cli import main
from mailcase.store.models import Case, Event
from tests.support.clock import Clock
from tests.support.delivery import deliver_now, token_of
from tests.support.mailsink import Sink
from tests.support.servers import mail

SUPPORT, ANN, OWNER = "support@example.com", "ann@customer.org", "bob@example.com"
QUOTE = "\n\nOn Mon, 2 Mar 2026 at 09:00, Support <support@example.com> wrote:\n> Closed.\n"


def deliver(app: App, sender: str, to: str, body: str, message_id: str, **headers: str) -> str:
    """Accept and process one mail, send what it caused; returns the note on its row."""
    raw = mail(sender=sender, to=to, message_id=message_id, body=body,
               **{"subject": "Re: [Case #00001000] Printer on fire", **headers})
    return deliver_now(app, raw, mail_from=sender, rcpt=to).outcome or ""


def cli(tmp_path: Path, *args: str) -> int:
    return main(["-c", str(tmp_path / "mailcase.toml"), *args])


def cases(app: App) -> list[Case]:
    """Every case, by number, with what the assertions read loaded."""
    with app.sessions() as session:
        found = list(session.scalars(select(Case).order_by(Case.number)))
        for case in found:
            _ = case.comments, case.parent
        return found


def status(app: App, number: int = 1000) -> str:
    return next(c.status for c in cases(app) if c.number == number)


def agents_case(make_app: Callable[..., App], sink: Sink, tmp_path: Path,
                **sections: object) -> tuple[App, str]:
    """Case 00001000 from Ann, given to agent Bob; returns the app and the reply address of
    Bob's alert (his own token)."""
    app = make_app(**sections)
    deliver(app, ANN, SUPPORT, "My printer is on fire.", "<first@customer.org>",
            subject="Printer on fire")
    assert cli(tmp_path, "agents", "add", OWNER) == 0
    assert cli(tmp_path, "cases", "update", "1000", "--owner", OWNER) == 0
    app.sender.drain()
    [alert] = sink.expect(1, to=OWNER)
    return app, token_of(alert)


def test_an_agent_puts_a_case_on_hold_by_mail(make_app: Callable[..., App], sink: Sink,
                                              tmp_path: Path) -> None:
    """/hold in the owner's reply through their token puts the case in On Hold, in the
    agent's name, and the rest of the reply reaches the customer."""
    app, bob = agents_case(make_app, sink, tmp_path)
    deliver(app, OWNER, bob, "Please send the serial number.\n/hold", "<hold@example.com>")
    [case] = cases(app)
    assert case.status == "On Hold"
    assert case.comments[-1].body == "Please send the serial number."
    with app.sessions() as session:
        event = session.scalars(select(Event).where(Event.kind == "status")).one()
        assert event.actor == OWNER
    assert "serial number" in sink.expect(2, to=ANN)[1].text


def test_hold_from_a_forged_from_changes_nothing(make_app: Callable[..., App], sink: Sink,
                                                 tmp_path: Path) -> None:
    """A /hold whose From only claims to be the agent — in the case's thread, or through
    the agent's token from another address — changes no status and mails no one an
    explanation."""
    app, bob = agents_case(make_app, sink, tmp_path)
    sink.messages.clear()
    outcome = deliver(app, OWNER, SUPPORT, "/hold", "<forged@example.com>",
                      In_Reply_To="<first@customer.org>")
    assert "opened a new case" in outcome
    outcome = deliver(app, "mallory@customer.org", bob, "Wait.\n/hold", "<fwd@customer.org>")
    assert "/hold: commands by mail need a reply through your own link" in outcome
    assert status(app) == "New"
    assert not [m for m in sink.messages if (m["Subject"] or "").startswith("Not done:")]


def test_hold_without_a_hold_status_is_refused_and_explained(
        make_app: Callable[..., App], sink: Sink, tmp_path: Path) -> None:
    """With no [cases] hold_status (a status list without On Hold), an agent's /hold is
    refused, noted, and explained to the agent; the reply is still recorded."""
    app, bob = agents_case(make_app, sink, tmp_path,
                           cases={"statuses": ["New", "Working", "Closed"]})
    outcome = deliver(app, OWNER, bob, "Waiting for the part.\n/hold", "<hold@example.com>")
    assert "/hold: cases cannot be put on hold here" in outcome
    [case] = cases(app)
    assert (case.status, case.comments[-1].body) == ("New", "Waiting for the part.")
    [notice] = sink.expect(1, to=OWNER, subject_starts="Not done:")
    assert "hold_status is not set" in notice.text


def test_hold_on_reply_by_mail(make_app: Callable[..., App], sink: Sink,
                               tmp_path: Path) -> None:
    """With the mailbox's hold_on_reply, an agent's public answer by mail puts the case on
    hold; an internal note does not, nor an answer that sets a status itself."""
    app, bob = agents_case(make_app, sink, tmp_path,
                           mailbox={"address": SUPPORT, "hold_on_reply": True})
    deliver(app, OWNER, bob, "/internal\nOld contract.", "<note@example.com>")
    assert status(app) == "New"
    outcome = deliver(app, OWNER, bob, "Which model is it?", "<ask@example.com>")
    assert status(app) == "On Hold"
    assert "put in status On Hold" in outcome
    deliver(app, OWNER, bob, "A technician is on the way.\n/status Working", "<go@example.com>")
    assert status(app) == "Working"


def test_hold_from_the_command_line(make_app: Callable[..., App], sink: Sink,
                                    tmp_path: Path) -> None:
    """`cases reply` follows the case's mailbox's hold_on_reply unless --no-hold says
    otherwise, and --hold holds a case whose mailbox does not."""
    app = make_app(mailbox=[{"address": SUPPORT, "hold_on_reply": True},
                            {"address": "sales@example.com"}])
    deliver(app, ANN, SUPPORT, "Help", "<support@customer.org>", subject="Printer")
    deliver(app, ANN, "sales@example.com", "Price?", "<sales@customer.org>", subject="Price")
    assert cli(tmp_path, "cases", "reply", "1000", "--body", "Looking.", "--no-hold") == 0
    assert status(app, 1000) == "New"
    assert cli(tmp_path, "cases", "reply", "1000", "--body", "Which model?") == 0
    assert status(app, 1000) == "On Hold"
    assert cli(tmp_path, "cases", "reply", "1001", "--body", "It is 10 euros.") == 0
    assert status(app, 1001) == "New"
    assert cli(tmp_path, "cases", "reply", "1001", "--body", "How many?", "--hold") == 0
    assert status(app, 1001) == "On Hold"


def test_hold_from_the_command_line_without_a_hold_status(
        make_app: Callable[..., App], sink: Sink, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`cases reply --hold` with no [cases] hold_status is refused in one line and records
    nothing: no comment, no mail."""
    app = make_app(cases={"statuses": ["New", "Working", "Closed"]})
    deliver(app, ANN, SUPPORT, "Help", "<first@customer.org>", subject="Printer")
    capsys.readouterr()
    assert cli(tmp_path, "cases", "reply", "1000", "--body", "Which model?", "--hold") == 1
    assert capsys.readouterr().err.count("\n") == 1
    [case] = cases(app)
    assert (case.status, case.comments) == ("New", [])
    sink.expect(1, to=ANN)  # the acknowledgement only


def closed_case(make_app: Callable[..., App], sink: Sink, clock: Clock,
                **sections: object) -> App:
    """Case 00001000 from Ann, acknowledged and closed now."""
    app = make_app(clock=clock, **sections)
    deliver(app, ANN, SUPPORT, "My printer is on fire.", "<first@customer.org>",
            subject="Printer on fire")
    desk = app.desk()
    desk.close(1000, "Replaced the fuser.", desk.author(None))
    app.sender.drain()
    sink.messages.clear()
    return app


def test_a_reply_within_reopen_days_reopens_the_case(make_app: Callable[..., App],
                                                     sink: Sink) -> None:
    """A customer's reply 29 days after the close (reopen_days 30) reopens the case."""
    clock = Clock()
    app = closed_case(make_app, sink, clock, cases={"reopen_days": 30})
    clock.advance(days=29)
    deliver(app, ANN, SUPPORT, "It is burning again.", "<again@customer.org>",
            In_Reply_To="<first@customer.org>")
    [case] = cases(app)
    assert (case.status, case.is_closed, case.closed_at) == ("Working", False, None)
    assert case.comments[-1].body == "It is burning again."


def test_the_mailbox_decides_between_reopen_and_follow_up(make_app: Callable[..., App],
                                                          sink: Sink) -> None:
    """The case's mailbox overrides [cases]: its "reopen" beats [cases]' "follow_up", and
    past its own reopen_days (2, not [cases]' 30) a reply opens a follow-up case whose
    parent is the closed one, which later replies join."""
    clock = Clock()
    app = closed_case(make_app, sink, clock,
                      cases={"on_reply_to_closed": "follow_up", "reopen_days": 30},
                      mailbox={"address": SUPPORT, "on_reply_to_closed": "reopen",
                               "reopen_days": 2})
    clock.advance(days=1)
    deliver(app, ANN, SUPPORT, "Burning again.", "<again@customer.org>",
            In_Reply_To="<first@customer.org>")
    assert [(c.number, c.is_closed) for c in cases(app)] == [(1000, False)]
    app.desk().close(1000, "Replaced the board.", app.desk().author(None))
    clock.advance(days=3)
    outcome = deliver(app, ANN, SUPPORT, "Now it smokes.", "<smoke@customer.org>",
                      In_Reply_To="<first@customer.org>")
    assert "follow-up of closed case 00001000" in outcome
    deliver(app, ANN, SUPPORT, "And beeps.", "<beep@customer.org>",
            In_Reply_To="<first@customer.org>")
    first, follow_up = cases(app)
    assert first.is_closed and first.resolution == "Replaced the board."
    assert (follow_up.number, follow_up.parent, follow_up.is_closed) == (1001, first, False)
    assert follow_up.description == "Now it smokes."
    assert [c.body for c in follow_up.comments] == ["And beeps."]


def test_thanks_leaves_a_closed_case_closed(make_app: Callable[..., App],
                                            sink: Sink) -> None:
    """A customer's reply that only says thanks is a public comment on the closed case —
    within reopen_days it reopens nothing, after them it opens no follow-up — noted on
    the inbound mail and answered with no acknowledgement."""
    clock = Clock()
    app = closed_case(make_app, sink, clock, cases={"reopen_days": 30})
    outcome = deliver(app, ANN, SUPPORT, "Thank you, that fixed it!" + QUOTE,
                      "<thanks@customer.org>", In_Reply_To="<first@customer.org>")
    assert "thanks on closed case, not reopened" in outcome
    clock.advance(days=40)
    deliver(app, ANN, SUPPORT, "Thanks!", "<late@customer.org>",
            In_Reply_To="<first@customer.org>")
    [case] = cases(app)
    assert case.is_closed and case.resolution == "Replaced the fuser."
    assert [(c.body, c.public) for c in case.comments] == [
        ("Thank you, that fixed it!", True), ("Thanks!", True)]
    sink.expect(0, to=ANN)


def test_thanks_with_more_to_say_reopens(make_app: Callable[..., App], sink: Sink) -> None:
    """"Thanks, but it still fails" is no thanks-only reply: it reopens the case."""
    clock = Clock()
    app = closed_case(make_app, sink, clock)
    outcome = deliver(app, ANN, SUPPORT, "Thanks, but it still fails." + QUOTE,
                      "<fails@customer.org>", In_Reply_To="<first@customer.org>")
    assert "thanks on closed case" not in outcome
    [case] = cases(app)
    assert (case.status, case.is_closed) == ("Working", False)
    assert case.comments[-1].body == "Thanks, but it still fails."
