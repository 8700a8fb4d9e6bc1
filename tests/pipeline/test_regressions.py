"""Mail that once broke processing on one engine or the other, kept as .eml files named
after the bug: each must become a case on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mailcase.app import App
from mailcase.store.models import Case, InboundMail
from tests.support.mailsink import Sink
from tests.support.paths import DATA

REGRESSIONS = DATA / "regressions"
FIXTURES = sorted(p.name for p in REGRESSIONS.glob("*.eml"))


@pytest.mark.parametrize("name", FIXTURES)
def test_regression_mail_becomes_a_case(app: App, sink: Sink, name: str) -> None:
    """The fixture is accepted, processed into one case and acknowledged."""
    raw = (REGRESSIONS / name).read_bytes()
    accepted = app.intake.accept(raw, mail_from="someone@customer.org",
                                 rcpt_to=["support@example.com"], source="test")
    assert app.processor.drain() == {"processed": 1}
    with app.sessions() as session:
        row = session.get(InboundMail, accepted.id)
        assert row is not None and row.status == "processed", row and row.last_error
        case = session.scalars(select(Case)).one()
        assert case.supplied_email
        assert len(case.subject) <= 255
    assert app.sender.drain() == {"sent": 1}
    [ack] = sink.expect(1)
    assert ack.rcpt_tos == (case.supplied_email,)


def test_utf8_address_is_acknowledged_over_smtputf8(app: App, sink: Sink) -> None:
    """A sender with a non-ASCII address gets the acknowledgement through SMTPUTF8, with
    the address intact."""
    raw = (REGRESSIONS / "utf8-sender-address.eml").read_bytes()
    app.intake.accept(raw, mail_from="jürgen@kunde.de", rcpt_to=["support@example.com"],
                      source="test")
    app.processor.drain()
    app.sender.drain()
    [ack] = sink.expect(1)
    assert ack.rcpt_tos == ("jürgen@kunde.de",)
    assert "jürgen@kunde.de" in (ack["To"] or "")


def test_nul_byte_is_removed_from_the_description(app: App) -> None:
    """The NUL byte PostgreSQL cannot store is dropped from the text; the raw keeps it."""
    raw = (REGRESSIONS / "nul-byte-in-body.eml").read_bytes()
    app.intake.accept(raw, mail_from="ann@customer.org", rcpt_to=["support@example.com"],
                      source="test")
    app.processor.drain()
    with app.sessions() as session:
        case = session.scalars(select(Case)).one()
        assert case.description == "Beforeafter the NUL byte."
        assert b"\x00" in session.scalars(select(InboundMail.raw)).one()
