"""What a hostile or merely unusual sender found, each over real SMTP on both engines:
postmaster taken as RFC 5321 requires, dot-stuffing not counted toward SIZE, an encoded
word that smuggles a second address, control characters in a Subject, and escape
sequences meant for the operator's terminal."""

from __future__ import annotations

import base64
import smtplib
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from mailcase.app import App
from mailcase.cli import main
from mailcase.store.models import Case, Contact, InboundMail
from tests.support.mailsink import Sink
from tests.support.servers import running_daemon


def send_raw(app: App, raw: bytes, rcpt: str = "support@example.com",
             mail_from: str = "ann@customer.org") -> None:
    with running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        client.sendmail(mail_from, [rcpt], raw)
    app.processor.drain()
    app.sender.drain()


@pytest.mark.parametrize("address", ["postmaster@example.com", "PostMaster@Example.com",
                                     "postmaster"])
def test_postmaster_is_accepted_and_reaches_the_mailbox(app: App, address: str) -> None:
    """RFC 5321 4.5.1: mail for postmaster, bare or at our domain, is taken and becomes a
    case of the mailbox of that domain."""
    send_raw(app, b"From: ann@customer.org\r\nSubject: your MX\r\nMessage-ID: <pm@c.org>\r\n"
             b"\r\nYour server rejects our mail.\r\n", rcpt=address)
    with app.sessions() as session:
        [case] = session.scalars(select(Case)).all()
    assert (case.subject, case.mailbox) == ("your MX", "support@example.com")


def test_postmaster_of_another_domain_is_refused(app: App) -> None:
    """Only our own domains' postmaster: anything else stays a 550 (no relaying)."""
    with (running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client,
          pytest.raises(smtplib.SMTPRecipientsRefused)):
        client.sendmail("ann@customer.org", ["postmaster@elsewhere.org"], b"Subject: x\r\n\r\n")


def test_dot_stuffing_does_not_count_toward_the_size_limit(
    make_app: Callable[..., App]
) -> None:
    """RFC 1870: a mail of exactly max_message_size octets is taken although the dots the
    client doubled make more octets on the wire; one octet more is refused."""
    app = make_app(smtp={"max_message_size": 4000})
    head = b"From: ann@customer.org\r\nSubject: dots\r\nMessage-ID: <dots@c.org>\r\n\r\n"
    line = b"." * 38 + b"\r\n"  # every line starts with a dot the client doubles
    body = line * ((4000 - len(head)) // len(line))
    raw = head + body + b"x" * (4000 - len(head) - len(body) - 2) + b"\r\n"
    assert len(raw) == 4000
    with running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        client.sendmail("ann@customer.org", ["support@example.com"], raw)
        # Without a SIZE declaration, so that DATA itself must count.
        client.mail("ann@customer.org")
        client.rcpt("support@example.com")
        code, _ = client.data(b"y" + raw)
    assert code == 552
    with app.sessions() as session:
        [row] = session.scalars(select(InboundMail)).all()
    assert row.raw == raw


def test_an_encoded_word_cannot_smuggle_an_address(app: App, sink: Sink) -> None:
    """A display name that decodes to a CRLF and "Bcc: …" stays a name: the contact is the
    real address, and no mail goes to the smuggled one."""
    send_raw(app, b"From: =?utf-8?q?Ann=0D=0ABcc:_v1@evil.test?= <n1@customer.org>\r\n"
             b"To: support@example.com\r\nSubject: hi\r\nMessage-ID: <ew@c.org>\r\n\r\nx\r\n")
    with app.sessions() as session:
        [contact] = session.scalars(select(Contact)).all()
    assert contact.email == "n1@customer.org"
    assert "\r" not in contact.name and "\n" not in contact.name
    assert [list(m.rcpt_tos) for m in sink.messages] == [["n1@customer.org"]]


def test_control_characters_never_reach_our_subject(app: App, sink: Sink) -> None:
    """A NUL or an escape character decoded from the Subject is gone from the case and
    from the acknowledgement's Subject."""
    send_raw(app, b"From: ann@customer.org\r\nSubject: =?utf-8?q?Printer=00on=1B[2Jfire?=\r\n"
             b"Message-ID: <nul@c.org>\r\n\r\nx\r\n")
    with app.sessions() as session:
        [case] = session.scalars(select(Case)).all()
    assert case.subject == "Printeron[2Jfire"
    [ack] = sink.expect(1, to="ann@customer.org")
    assert "\x00" not in (ack["Subject"] or "") and "\x1b" not in ack.raw.decode("latin-1")


def test_the_operators_terminal_obeys_nothing_a_mail_says(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Escape sequences in a body (clear screen, OSC 52 clipboard, OSC 8 link), C1
    controls and bidirectional overrides are printed as visible escapes by `cases list`,
    `cases show` and `--json`."""
    hostile = "Clear\x1b[2J clip\x1b]52;c;ZWNobyBwd25lZA==\x07 link\x1b]8;;http://evil.test\x07" \
              "x\x1b]8;;\x07 csi\x9b31m rtl\u202etxt.exe"
    raw = (b"From: ann@customer.org\r\nSubject: =?utf-8?b?" + _b64("Hi\u202egnp.exe")
           + b"?=\r\nMessage-ID: <esc@c.org>\r\nContent-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\n" + hostile.encode() + b"\r\n")
    send_raw(app, raw)
    config = str(tmp_path / "mailcase.toml")
    capsys.readouterr()
    for args in (["cases", "list"], ["cases", "show", "1000"],
                 ["cases", "show", "1000", "--json"]):
        assert main(["-c", config, *args]) == 0
        out = capsys.readouterr().out
        assert not any(c in out for c in "\x1b\x07\x9b\u202e"), (args, out)
    assert main(["-c", config, "cases", "show", "1000"]) == 0
    out = capsys.readouterr().out
    assert "\\x1b]52;c;" in out and "\\u202e" in out


def _b64(text: str) -> bytes:
    return base64.b64encode(text.encode())


def test_a_mime_bomb_is_read_only_up_to_the_part_limit(app: App, sink: Sink) -> None:
    """2.6 million empty MIME parts (26 MB): the parser stops building at its limit
    instead of after a tree of millions of objects, the mail still becomes a case with
    the reason noted, and an ordinary mail sent next is taken and processed too."""
    head = (b"From: ann@customer.org\r\nSubject: bomb\r\nMessage-ID: <bomb@c.org>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=t\r\n\r\n")
    send_raw(app, head + b"--t\r\n\r\nx\r\n" * 2_600_000 + b"--t--\r\n")
    send_raw(app, b"From: bob@customer.org\r\nSubject: ordinary\r\n"
             b"Message-ID: <ordinary@c.org>\r\n\r\nHello.\r\n")
    with app.sessions() as session:
        rows = session.scalars(select(InboundMail).order_by(InboundMail.id)).all()
        subjects = session.scalars(select(Case.subject).order_by(Case.id)).all()
    assert [row.status for row in rows] == ["processed", "processed"]
    assert rows[0].outcome is not None and "MIME parts; the rest not read" in rows[0].outcome
    assert subjects == ["bomb", "ordinary"]


def test_a_million_header_lines_are_read_only_up_to_the_limit(app: App) -> None:
    """A header block of 700,000 lines (22 MB): the parser reads its first megabyte, the
    body after it is still the case's text, and the reason is noted."""
    raw = (b"From: ann@customer.org\r\nSubject: headers\r\nMessage-ID: <hb@c.org>\r\n"
           + b"X-Filler: aaaaaaaaaaaaaaaaaaa\r\n" * 700_000 + b"\r\nThe text after them.\r\n")
    send_raw(app, raw)
    with app.sessions() as session:
        [row] = session.scalars(select(InboundMail)).all()
        [case] = session.scalars(select(Case)).all()
    assert row.outcome is not None and "header block over" in row.outcome
    assert (case.subject, case.description) == ("headers", "The text after them.")
