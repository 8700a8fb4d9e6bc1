"""The SMTP listener's promises: 250 only after the commit, 451 when the commit fails,
one case for a mail sent twice, 550 for foreign recipients, 552 for oversize mail."""

from __future__ import annotations

import smtplib
from email import policy

import pytest
from sqlalchemy import event, func, select

from mailcase.app import App
from mailcase.models import Case, InboundMail
from tests.support.servers import mail, running_daemon, send


def inbound_rows(app: App) -> list[InboundMail]:
    with app.sessions() as session:
        return list(session.scalars(select(InboundMail).order_by(InboundMail.id)))


def test_250_means_the_raw_message_is_committed(app: App) -> None:
    """By the time the client hears 250, the exact bytes and envelope are in the store."""
    raw = mail(message_id="<stored@customer.org>").as_bytes(policy=policy.SMTP)
    with running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        client.sendmail("ann@customer.org", ["support@example.com"], raw)
        [row] = inbound_rows(app)  # read while the connection is still open
    assert row.status == "pending"
    assert row.mail_from == "ann@customer.org"
    assert row.rcpt_to == ["support@example.com"]
    assert row.raw == raw
    assert row.message_id == "<stored@customer.org>"


def test_failing_commit_answers_451_and_leaves_no_row(app: App) -> None:
    """When the commit fails the sender gets 451 (retry later), never 250 or 500, and
    nothing half-stored remains."""

    def refuse(_connection: object) -> None:
        raise RuntimeError("disk full")

    event.listen(app.engine, "commit", refuse)
    try:
        with running_daemon(app) as daemon, pytest.raises(smtplib.SMTPDataError) as refused:
            send(daemon.port, mail(message_id="<lost@customer.org>"))
    finally:
        event.remove(app.engine, "commit", refuse)
    assert refused.value.smtp_code == 451
    assert refused.value.smtp_error.startswith(b"4.3.0")
    assert inbound_rows(app) == []


def test_same_message_twice_gives_one_case(app: App) -> None:
    """A mail re-sent with the same Message-ID is acknowledged again but stored once."""
    message = mail(message_id="<twice@customer.org>")
    with running_daemon(app) as daemon:
        send(daemon.port, message)
        send(daemon.port, message)
        send(daemon.port, message, rcpt=["support@example.com"], mail_from="other@customer.org")
    assert len(inbound_rows(app)) == 1
    app.processor.drain()
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 1


def test_same_bytes_without_message_id_stored_once(app: App) -> None:
    """Without a Message-ID, identical bytes are the duplicate key."""
    raw = b"From: ann@customer.org\r\nTo: support@example.com\r\nSubject: hi\r\n\r\nbody\r\n"
    with running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        client.sendmail("ann@customer.org", ["support@example.com"], raw)
        client.sendmail("ann@customer.org", ["support@example.com"], raw)
        client.sendmail("ann@customer.org", ["support@example.com"], raw + b"more\r\n")
    assert len(inbound_rows(app)) == 2


@pytest.mark.parametrize("recipient", ["someone@elsewhere.com", "sales@example.com",
                                       "support@example.com.evil.org"])
def test_foreign_recipient_refused_at_rcpt(app: App, recipient: str) -> None:
    """A recipient that is no mailbox of ours gets 550 at RCPT: mailcase is no open relay."""
    with running_daemon(app) as daemon, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(daemon.port, mail(to=recipient), rcpt=[recipient])
    code, text = refused.value.recipients[recipient]
    assert code == 550 and text.startswith(b"5.1.1")
    assert inbound_rows(app) == []


def test_plus_address_of_a_mailbox_is_accepted(app: App) -> None:
    """Plus-addresses of a mailbox (where reply tokens live) are ours, whatever the case."""
    with running_daemon(app) as daemon:
        refused = send(daemon.port, mail(), rcpt=["Support+anything@Example.com"])
    assert refused == {}
    assert len(inbound_rows(app)) == 1


def test_oversize_message_gets_552(make_app: object) -> None:
    """A message over smtp.max_message_size is refused with 552 and not stored."""
    app = make_app(smtp={"max_message_size": 2000})  # type: ignore[operator]
    with running_daemon(app) as daemon, pytest.raises(smtplib.SMTPException) as refused:
        send(daemon.port, mail(body="x" * 5000))
    code = getattr(refused.value, "smtp_code", None)
    if isinstance(refused.value, smtplib.SMTPSenderRefused):  # SIZE= declared up front
        code = refused.value.smtp_code
    assert code == 552
    assert inbound_rows(app) == []
