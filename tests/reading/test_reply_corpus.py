"""Real-shaped replies from every mail client we support thread into their case and keep only
the text the writer added.

Each case is a pair in ``tests/data/replies/``: ``NAME.eml``, the raw mail as the client sends
it, and ``NAME.expected.txt``, the exact comment text (UTF-8, no trailing newline). Adding a
pair adds a case. Every reply answers the same original mail, accepted first.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mailcase.app import App
from mailcase.store.models import Case, InboundMail
from tests.support.paths import DATA
from tests.support.servers import mail

REPLIES = DATA / "replies"
CASES = sorted(path.name.removesuffix(".eml") for path in REPLIES.glob("*.eml"))
ORIGINAL_BODY = "My printer is on fire.\nIt started this morning.\n"
CUSTOMER = "ann@customer.example"


def accept(app: App, raw: bytes) -> int:
    """Accept ``raw`` the way the SMTP listener does and return the inbound row's id."""
    row = app.intake.accept(raw, mail_from=CUSTOMER, rcpt_to=["support@example.com"],
                            source="test")
    return row.id


def test_corpus_is_complete() -> None:
    """The corpus holds at least 25 cases, each with its expected text and no trailing newline."""
    assert len(CASES) >= 25, CASES
    for name in CASES:
        expected = REPLIES / f"{name}.expected.txt"
        assert expected.is_file(), f"{name}.eml has no {expected.name}"
        text = expected.read_text(encoding="utf-8")
        assert text and text == text.strip(), f"{expected.name} must not end in whitespace"


@pytest.mark.parametrize("name", CASES)
def test_reply_threads_and_keeps_only_new_text(app: App, name: str) -> None:
    """A client's reply to the original joins its case as one comment holding only new text."""
    original = mail(message_id="<original@customer.example>",
                    sender="Ann Customer <ann@customer.example>", body=ORIGINAL_BODY)
    accept(app, original.as_bytes())
    app.processor.drain()

    reply_id = accept(app, (REPLIES / f"{name}.eml").read_bytes())
    app.processor.drain()

    expected = (REPLIES / f"{name}.expected.txt").read_text(encoding="utf-8")
    with app.sessions() as session:
        reply = session.get(InboundMail, reply_id)
        assert reply is not None
        assert reply.status == "processed", (reply.outcome, reply.last_error)
        cases = session.scalars(select(Case)).all()
        assert [c.number for c in cases] == [1000], "the reply must thread into the case"
        assert [comment.body for comment in cases[0].comments] == [expected]
