"""Bounces written as prose: the failed address is read from the report's own text, by
the phrase table, and never from the returned original or from mail that is no report."""

from __future__ import annotations

from mailcase.reading import bounces
from mailcase.reading.bouncetext import PHRASES

REPORT = b"""\
From: MAILER-DAEMON <>
To: support@example.com
Subject: Mail delivery failed
Message-Id: <r1@mta.example.net>

This is the mail agent at mta.example.net.

There was an error delivering your mail to <ann@customer.example>.

mx.customer.example did not like our RCPT:
550 5.1.1 No such mailbox

Message headers follow.

Received: from support.example.com
Subject: Your case 00001234
To: <ann@customer.example>, <bob@other.example>
From: Support <support@example.com>
Message-Id: <abc@support.example.com>
"""


def _failures(raw: bytes) -> dict[str, bool]:
    return {f.recipient: f.permanent for f in bounces.read(raw).failures}


def test_the_address_in_the_report_text_is_found_and_its_5xx_makes_it_permanent() -> None:
    report = bounces.read(REPORT)
    assert _failures(REPORT) == {"ann@customer.example": True}
    assert report.original_message_id is None  # the original came as text, not attached


def test_the_returned_original_is_never_read_for_recipients() -> None:
    """bob@ is in the original's To, below the report: not a failure."""
    vague = REPORT.replace(b"to <ann@customer.example>.", b"to one recipient.")
    assert _failures(vague) == {}


def test_a_temporary_reason_is_no_permanent_failure() -> None:
    deferred = REPORT.replace(b"550 5.1.1 No such mailbox", b"451 4.3.0 Try again later")
    assert _failures(deferred) == {"ann@customer.example": False}


def test_a_report_without_a_reason_counts_as_temporary() -> None:
    silent = REPORT.replace(b"550 5.1.1 No such mailbox", b"It said nothing more.")
    assert _failures(silent) == {"ann@customer.example": False}


def test_each_phrase_of_the_table_finds_its_address() -> None:
    lines = {
        "DSN field, however written": "Final-Recipient: RFC822; <ann@customer.example>",
        "SMTP transcript": ">>> RCPT To:<ann@customer.example>",
        "Sendmail/Postfix: <addr>... or <addr>: after an optional reply code":
            "554 <ann@customer.example>... 550 Host unknown",
        "OpenSMTPD, Lotus Notes: addr: reason": "ann@customer.example: 550 Mailbox full",
        "X1, Yahoo: addr [reason]": "ann@customer.example [User unknown]",
        "the address alone on its line": "   <ann@customer.example>",
        "a phrase that introduces the failed address":
            "Could not be delivered to: <ann@customer.example>",
    }
    assert set(lines) == {name for name, _pattern in PHRASES}
    for name, line in lines.items():
        raw = REPORT.replace(b"There was an error delivering your mail to "
                             b"<ann@customer.example>.", line.encode())
        assert _failures(raw) == {"ann@customer.example": True}, name


def test_the_reports_own_sender_recipient_and_message_ids_are_no_failures() -> None:
    raw = REPORT.replace(b"This is the mail agent at mta.example.net.",
                         b"support@example.com\n<r1@mta.example.net>")
    assert _failures(raw) == {"ann@customer.example": True}


def test_mail_that_does_not_say_it_is_a_report_is_not_read_as_one() -> None:
    """A person's (or a vacation notice's) text naming an address on its own line is
    no bounce: without a daemon's name or a report's subject, nothing is read."""
    vacation = (b"From: Ann <ann@customer.example>\nTo: support@example.com\n"
                b"Subject: Out of office\n\nI am away. Please write to\n"
                b"<deputy@customer.example>\n550 reasons to wait\n")
    assert _failures(vacation) == {}


def test_a_multipart_report_whose_boundary_never_comes_is_read_as_text() -> None:
    raw = (b"From: Mail Delivery System <MAILER-DAEMON@mta.example.net>\n"
           b"To: support@example.com\nSubject: Undelivered Mail Returned to Sender\n"
           b'Content-Type: multipart/report; boundary="AAA.1/mta"\n\n'
           b"--AAA.2/mta\nContent-Type: text/plain\n\n"
           b"<ann@customer.example>: host mx said: 550 5.1.1 unknown user\n\n"
           b"--AAA.2/mta\nContent-Type: message/delivery-status\n\n"
           b"Final-Recipient: rfc822; ann@customer.example\nAction: failed\n"
           b"--AAA.2/mta--\n")
    assert _failures(raw) == {"ann@customer.example": True}
