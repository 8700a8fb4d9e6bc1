"""Robot screening: every marker of automatic mail (RFC 3834, RFC 3464, list and Exchange
headers, our own loop header) is caught, and mail a person wrote is let through."""

from __future__ import annotations

import pytest

from mailcase.reading import parsing, screen

OWN = frozenset({"support@example.com", "billing@example.com"})
HUMAN_FROM = "ann@customer.org"


def raw_mail(*extra: str, sender: str = f"Ann Customer <{HUMAN_FROM}>",
             content_type: str = "text/plain; charset=utf-8",
             body: str = "My printer is on fire.\r\n", subject: str = "Printer on fire",
             message_id: str = "<m1@customer.org>") -> bytes:
    """A plain customer mail to support, with ``extra`` header lines added."""
    headers = [
        f"From: {sender}",
        "To: Support <support@example.com>",
        f"Subject: {subject}",
        "Date: Mon, 02 Mar 2026 10:00:00 +0000",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        f"Content-Type: {content_type}",
        *extra,
    ]
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def reason_of(raw: bytes, mail_from: str = HUMAN_FROM) -> str | None:
    return screen.robot_reason(parsing.parse(raw), mail_from, OWN)


DSN_BODY = (
    "--dsn\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    "Your message could not be delivered.\r\n"
    "--dsn\r\n"
    "Content-Type: message/delivery-status\r\n\r\n"
    "Reporting-MTA: dns; mx.customer.org\r\n\r\n"
    "Final-Recipient: rfc822; nobody@customer.org\r\n"
    "Action: failed\r\n"
    "Status: 5.1.1\r\n\r\n"
    "--dsn\r\n"
    "Content-Type: text/rfc822-headers\r\n\r\n"
    "From: support@example.com\r\n"
    "Subject: [Case #00001000] Printer on fire\r\n\r\n"
    "--dsn--\r\n"
)


@pytest.mark.parametrize(
    ("raw", "mail_from"),
    [
        pytest.param(raw_mail(), "", id="null-envelope-sender"),
        pytest.param(raw_mail(), "<>", id="null-envelope-sender-brackets"),
        pytest.param(raw_mail("Auto-Submitted: auto-replied"), HUMAN_FROM,
                     id="auto-submitted-auto-replied"),
        pytest.param(raw_mail("Auto-Submitted: Auto-Generated; owner=x"), HUMAN_FROM,
                     id="auto-submitted-mixed-case-with-parameters"),
        pytest.param(raw_mail("Precedence: bulk"), HUMAN_FROM, id="precedence-bulk"),
        pytest.param(raw_mail("Precedence: junk"), HUMAN_FROM, id="precedence-junk"),
        pytest.param(raw_mail("Precedence: list"), HUMAN_FROM, id="precedence-list"),
        pytest.param(raw_mail("Precedence: Bulk"), HUMAN_FROM, id="precedence-bulk-mixed-case"),
        pytest.param(raw_mail("List-Id: Printers <printers.lists.customer.org>"), HUMAN_FROM,
                     id="list-id"),
        pytest.param(raw_mail("List-Unsubscribe: <mailto:leave@lists.customer.org>"), HUMAN_FROM,
                     id="list-unsubscribe"),
        pytest.param(raw_mail("X-Autoreply: yes"), HUMAN_FROM, id="x-autoreply"),
        pytest.param(raw_mail("X-Autorespond: Out of office"), HUMAN_FROM, id="x-autorespond"),
        pytest.param(raw_mail("X-Auto-Response-Suppress: OOF"), HUMAN_FROM,
                     id="exchange-oof"),
        pytest.param(raw_mail(), "MAILER-DAEMON@mx.customer.org", id="mailer-daemon-envelope"),
        pytest.param(raw_mail(sender="Mail Delivery System <MAILER-DAEMON@mx.customer.org>"),
                     HUMAN_FROM, id="mailer-daemon-from"),
        pytest.param(raw_mail(sender="postmaster@customer.org"), HUMAN_FROM,
                     id="postmaster-from"),
        pytest.param(raw_mail(), "postmaster@customer.org", id="postmaster-envelope"),
        pytest.param(raw_mail(sender="Shop <noreply@shop.example>"), HUMAN_FROM,
                     id="noreply-from"),
        pytest.param(raw_mail(sender="post_master@vtext.example"), HUMAN_FROM,
                     id="post_master-from"),
        pytest.param(raw_mail(sender='"Mail Deliver System" <MAILER-DAEMON>'), HUMAN_FROM,
                     id="mailer-daemon-without-domain"),
        pytest.param(raw_mail(sender="Mailer Daemon <poostmaster@mx.customer.org>"), HUMAN_FROM,
                     id="daemon-display-name"),
        pytest.param(raw_mail(sender="<>"), HUMAN_FROM, id="null-sender-written-as-from"),
        pytest.param(raw_mail("X-ML-Name: neko"), HUMAN_FROM, id="fml-list-header"),
        pytest.param(
            raw_mail(
                sender="Mail Delivery Subsystem <bounce-handler@customer.org>",
                content_type=('multipart/report; report-type=delivery-status; '
                              'boundary="dsn"'),
                body=DSN_BODY,
            ),
            "bounce-handler@customer.org",
            id="delivery-status-notification",
        ),
        pytest.param(
            raw_mail(
                sender="Ann Customer <ann@customer.org>",
                content_type=('multipart/report; report-type=delivery-status; '
                              'boundary="dsn"'),
                body=DSN_BODY,
            ),
            HUMAN_FROM,
            id="delivery-report-from-a-human-looking-sender",
        ),
        pytest.param(raw_mail("X-Mailcase-Loop: support@example.com"), HUMAN_FROM,
                     id="own-loop-header"),
        pytest.param(raw_mail(message_id="<0123456789abcdef0123456789abcdef.00001000"
                              "@example.com>"), HUMAN_FROM, id="own-message-id"),
        pytest.param(raw_mail(subject="Automatic reply: Printer on fire"), HUMAN_FROM,
                     id="outlook-automatic-reply-subject"),
        pytest.param(raw_mail(subject="Abwesenheitsnotiz: Drucker"), HUMAN_FROM,
                     id="german-absence-subject"),
        pytest.param(raw_mail(subject="Réponse automatique : Imprimante"), HUMAN_FROM,
                     id="french-automatic-reply-subject"),
        pytest.param(raw_mail(subject="Respuesta automática: Impresora"), HUMAN_FROM,
                     id="spanish-automatic-reply-subject"),
        pytest.param(raw_mail("X-Mailcase-Loop: Billing@Example.com"), HUMAN_FROM,
                     id="own-loop-header-mixed-case"),
    ],
)
def test_robot_marker_gives_a_reason(raw: bytes, mail_from: str) -> None:
    """Each marker of automatic mail, on an otherwise human mail, yields a reason."""
    reason = reason_of(raw, mail_from)
    if mail_from == HUMAN_FROM and b"multipart/report" in raw and b"ann@" in raw:
        assert reason == "delivery or disposition report"
    assert isinstance(reason, str)
    assert reason.strip()


@pytest.mark.parametrize(
    ("raw", "mail_from"),
    [
        pytest.param(raw_mail(), HUMAN_FROM, id="plain-human-mail"),
        pytest.param(raw_mail(sender="Mail Delivery Team Lead <lead@customer.org>"), HUMAN_FROM,
                     id="display-name-only-starts-like-a-daemon"),
        pytest.param(raw_mail(subject="Out of office hours support?"), HUMAN_FROM,
                     id="subject-mentions-office-hours"),
        pytest.param(raw_mail(subject="Absence of invoice for March"), HUMAN_FROM,
                     id="subject-mentions-absence"),
        pytest.param(raw_mail(subject="Autoreply needed for our form"), HUMAN_FROM,
                     id="subject-mentions-autoreply"),
        pytest.param(raw_mail(message_id="<0123456789abcdef0123456789abcdef.00001000"
                              "@customer.org>"), HUMAN_FROM, id="our-id-shape-their-domain"),
        pytest.param(raw_mail("Auto-Submitted: no"), HUMAN_FROM, id="auto-submitted-no"),
        pytest.param(raw_mail("Auto-Submitted: No"), HUMAN_FROM, id="auto-submitted-No"),
        pytest.param(raw_mail("Precedence: first-class"), HUMAN_FROM, id="precedence-not-bulk"),
        pytest.param(raw_mail("X-Mailcase-Loop: support@elsewhere.example"), HUMAN_FROM,
                     id="loop-header-of-another-system"),
        pytest.param(raw_mail(sender="Noreen Ply <noreen.ply@customer.org>"), HUMAN_FROM,
                     id="name-that-merely-looks-like-noreply"),
        pytest.param(raw_mail(), "<bounces+123-ann=customer.org@mailer.example>",
                     id="person-sending-through-a-bulk-provider"),
    ],
)
def test_human_mail_gives_no_reason(raw: bytes, mail_from: str) -> None:
    """A mail a person wrote, including one marked ``Auto-Submitted: no``, is not a robot."""
    assert reason_of(raw, mail_from) is None
