"""The SMTP listener's promises: 250 only after the commit, 451 when the commit fails,
one case for a mail sent twice, 550 for foreign recipients, 552 for oversize mail."""

from __future__ import annotations

import smtplib
from email import policy

import pytest
from sqlalchemy import event, func, select

from mailcase.app import App
from mailcase.store.models import Case, InboundMail
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


def test_mails_without_a_blank_line_after_the_headers_are_each_kept(app: App) -> None:
    """Three cron mails with one Subject, no Date, no Message-ID and no blank line before
    their text each get their 250 and each is stored with its own text (once all three
    were keyed as one and two vanished); an empty mail and a mail of one header are two
    more mails, not duplicates of anything."""
    texts = [b"Disk full on /var", b"Disk full on /home", b"Backup failed: tape"]
    raws = [b"From: cron@host.test\r\nTo: support@example.com\r\nSubject: cron report\r\n"
            + text + b"\r\n" for text in texts]
    raws += [b"", b"To: support@example.com\r\n"]
    with running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        for raw in raws:
            client.sendmail("cron@host.test", ["support@example.com"], raw)
    rows = inbound_rows(app)
    # smtplib ends the empty mail with the CRLF that DATA needs.
    assert [row.raw for row in rows] == [raw if raw else b"\r\n" for raw in raws]
    assert len({row.idempotency_key for row in rows}) == len(raws)
    app.processor.drain()
    with app.sessions() as session:
        descriptions = set(session.scalars(select(Case.description)))
    assert {text.decode() for text in texts} <= {d.strip() for d in descriptions}


def test_same_mail_without_message_id_relayed_twice_is_one_row(app: App) -> None:
    """Without a Message-ID only the transport headers on top may differ between two
    copies of one mail; any other byte makes it another mail."""
    body = b"From: ann@customer.org\r\nSubject: hi\r\n\r\nbody\r\n"
    first = b"Received: from a by b; Mon, 23 Nov 2026 10:00:00 +0000\r\n" + body
    second = (b"Delivered-To: support@example.com\r\n"
              b"Received: from c\r\n\tby d; Mon, 23 Nov 2026 10:00:05 +0000\r\n" + body)
    other = body.replace(b"Subject: hi\r\n", b"Subject: hi\r\nCc: bob@customer.org\r\n")
    accept = app.intake.accept
    assert not accept(first, mail_from="a@b.c", rcpt_to=["support@example.com"],
                      source="smtp").duplicate
    assert accept(second, mail_from="a@b.c", rcpt_to=["support@example.com"],
                  source="imap").duplicate
    assert not accept(other, mail_from="a@b.c", rcpt_to=["support@example.com"],
                      source="smtp").duplicate


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


def test_other_mail_reusing_a_message_id_is_kept(app: App) -> None:
    """A different mail that reuses a Message-ID is stored and processed, never discarded
    after its 250 (broken clients and forgers reuse ids)."""
    with running_daemon(app) as daemon:
        send(daemon.port, mail(message_id="<same@customer.org>"))
        send(daemon.port, mail(message_id="<same@customer.org>", sender="dave@other.org",
                               body="Something else entirely.\n"))
    rows = inbound_rows(app)
    assert len(rows) == 2
    app.processor.drain()
    statuses = sorted(r.status for r in inbound_rows(app))
    assert statuses == ["dropped", "processed"]
    [dropped] = [r for r in inbound_rows(app) if r.status == "dropped"]
    assert dropped.outcome == "duplicate: a copy of a mail already on case 00001000"


def test_list_copy_first_does_not_swallow_the_direct_copy(app: App) -> None:
    """When the mailing-list copy of a mail arrives first, the customer's own copy still
    opens the case (the list copy is dropped as automatic, not taken as the original)."""
    direct = mail(message_id="<both@customer.org>")
    listed = mail(message_id="<both@customer.org>", List_Id="<users.lists.customer.org>",
                  body="My printer is on fire.\n--\nusers mailing list\n")
    with running_daemon(app) as daemon:
        send(daemon.port, listed)
        send(daemon.port, direct)
    app.processor.drain()
    assert [r.status for r in inbound_rows(app)] == ["dropped", "processed"]
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 1


def test_same_mail_with_other_transport_headers_is_one_row(app: App) -> None:
    """The same mail relayed by another path (new Received and Delivered-To lines) is a
    duplicate of the first."""
    body = mail(message_id="<relayed@customer.org>").as_bytes(policy=policy.SMTP)
    first = b"Received: from a by b; Mon, 23 Nov 2026 10:00:00 +0000\r\n" + body
    second = (b"Delivered-To: support@example.com\r\n"
              b"Received: from c by d; Mon, 23 Nov 2026 10:00:05 +0000\r\n" + body)
    assert not app.intake.accept(first, mail_from="a@b.c", rcpt_to=["support@example.com"],
                                 source="smtp").duplicate
    again = app.intake.accept(second, mail_from="a@b.c", rcpt_to=["support@example.com"],
                              source="imap")
    assert again.duplicate
    assert len(inbound_rows(app)) == 1


def test_long_lines_are_accepted(app: App) -> None:
    """A data line far over RFC 5321's 1,000 octets (real HTML mail has them) gets 250, not
    aiosmtpd's permanent 500."""
    raw = (b"From: ann@customer.org\r\nTo: support@example.com\r\nSubject: long\r\n"
           b"Content-Type: text/html\r\n\r\n<p>" + b"x" * 20000 + b"</p>\r\n")
    with running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        assert client.sendmail("ann@customer.org", ["support@example.com"], raw) == {}
    [row] = inbound_rows(app)
    assert row.raw == raw


def test_non_utf8_envelope_sender_is_stored(app: App) -> None:
    """A MAIL FROM with bytes that are not UTF-8 is stored (cleaned), not answered 451
    forever."""
    with running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        client.ehlo()
        assert client.sock is not None
        client.sock.sendall(b"MAIL FROM:<j\xfcrgen@kunde.de>\r\n")  # Latin-1, not UTF-8
        assert client.getreply()[0] == 250
        assert client.rcpt("support@example.com")[0] == 250
        code, _ = client.data(mail(message_id="<latin1@kunde.de>").as_bytes(policy=policy.SMTP))
    assert code == 250
    [row] = inbound_rows(app)
    assert row.mail_from == "j\ufffdrgen@kunde.de"


# --- the DATA reader (GatewaySMTP._read_data) ---------------------------------------------


def transmit(client: smtplib.SMTP, data: bytes) -> tuple[int, bytes]:
    """One transaction whose DATA is ``data`` exactly as given: stuffing and the final dot
    are the caller's (smtplib's own ``data`` would stuff and end it)."""
    client.ehlo_or_helo_if_needed()
    assert client.mail("ann@customer.org")[0] == 250
    assert client.rcpt("support@example.com")[0] == 250
    client.putcmd("data")
    assert client.getreply()[0] == 354
    client.send(data)
    return client.getreply()


def test_dot_stuffing_is_undone_once_per_line(app: App) -> None:
    """A line the sender stuffed loses exactly one leading dot (RFC 5321 4.5.2), also the
    first line of DATA and a line of two dots, and a dot inside a line stays."""
    data = (b"..first line starts with a dot\r\nSubject: dots\r\n\r\n..one\r\n...two\r\n"
            b"..\r\na . inside\r\n.\r\n")
    with running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        assert transmit(client, data)[0] == 250
    [row] = inbound_rows(app)
    assert row.raw == (b".first line starts with a dot\r\nSubject: dots\r\n\r\n.one\r\n..two\r\n"
                       b".\r\na . inside\r\n")


def test_smtplib_round_trip_keeps_dot_lines(app: App) -> None:
    """Lines starting with dots, stuffed by smtplib, are stored as the sender wrote them."""
    raw = (b"From: ann@customer.org\r\nTo: support@example.com\r\nSubject: dots\r\n\r\n"
           b".\r\n..\r\n.hidden\r\n...\r\nlast\r\n")
    with running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        assert client.sendmail("ann@customer.org", ["support@example.com"], raw) == {}
    [row] = inbound_rows(app)
    assert row.raw == raw


def test_bare_lf_neither_ends_nor_unstuffs(app: App) -> None:
    """Only CRLF ends a line (RFC 5321 2.3.8): a dot line after a bare LF neither ends the
    mail nor loses its dot, as in aiosmtpd's own reader."""
    data = b"Subject: lf\n\nline one\n.\n..kept\nline two\r\n.\r\n"
    with running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        assert transmit(client, data)[0] == 250
    [row] = inbound_rows(app)
    assert row.raw == b"Subject: lf\n\nline one\n.\n..kept\nline two\r\n"


def test_line_longer_than_the_read_limit_is_kept_whole(app: App) -> None:
    """A data line far longer than the stream reader's limit arrives in pieces and is
    stored whole, its stuffed leading dot undone once."""
    long_line = b"." + bytes(range(33, 127)) * 3000  # 282,000 octets, no CRLF inside
    data = b"Subject: long\r\n\r\n." + long_line + b"\r\nend\r\n.\r\n"
    with running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        assert transmit(client, data)[0] == 250
    [row] = inbound_rows(app)
    assert row.raw == b"Subject: long\r\n\r\n" + long_line + b"\r\nend\r\n"


def test_eight_bit_mail_is_stored_byte_for_byte(app: App) -> None:
    """A mail of many lines with 8-bit and NUL-free binary octets is stored exactly."""
    body = b"".join(bytes((n % 223) + 32 for n in range(i, i + 70)) + b"\r\n"
                    for i in range(5000))
    raw = b"From: ann@customer.org\r\nSubject: 8bit\r\n\r\n" + body
    stuffed = raw.replace(b"\r\n.", b"\r\n..")
    with running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        assert transmit(client, stuffed + b".\r\n")[0] == 250
    [row] = inbound_rows(app)
    assert row.raw == raw


@pytest.mark.parametrize("body", [b"x" * 70 + b"\r\n", b"y" * 200_000],
                         ids=["short lines", "one line over the read limit"])
def test_oversize_data_gets_552_and_the_session_goes_on(make_app: object, body: bytes) -> None:
    """Mail over the limit sent without SIZE is read to its end, refused with 552 and not
    stored; the next mail on the same connection is taken."""
    app = make_app(smtp={"max_message_size": 20_000})  # type: ignore[operator]
    big = b"Subject: big\r\n\r\n" + body * (30_000 // len(body) + 1) + b"\r\n.\r\n"
    small = b"Subject: small\r\n\r\nhello\r\n.\r\n"
    with running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        code, text = transmit(client, big)
        assert (code, text[:5]) == (552, b"5.3.4")
        assert transmit(client, small)[0] == 250
    [row] = inbound_rows(app)
    assert row.raw == b"Subject: small\r\n\r\nhello\r\n"
