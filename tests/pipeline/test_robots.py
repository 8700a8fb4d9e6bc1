"""Never answer a robot, over real SMTP: out-of-office robots wired to mailcase through
the sink, a storm of bounces and auto-replies, and bounces marking addresses."""

from __future__ import annotations

import json
import shutil
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailcase.app import App
from mailcase.cases.views import summary_of
from mailcase.cli import main
from mailcase.store.models import Bounce, Case, Event, InboundMail, OutboundMail, RecipientStatus
from tests.support.mailsink import Received, Sink
from tests.support.paths import DATA, ROOT
from tests.support.servers import mail, running_daemon, send


def count(app: App, model: type, *where: object) -> int:
    with app.sessions() as session:
        query = select(func.count()).select_from(model)
        for condition in where:
            query = query.where(condition)  # type: ignore[arg-type]
        return int(session.scalar(query) or 0)


def exchange_oof(received: Received) -> EmailMessage:
    """What Exchange's out-of-office answers: to the envelope sender, marked automatic."""
    reply = EmailMessage()
    reply["From"] = received.rcpt_tos[0]
    reply["To"] = received.mail_from
    reply["Subject"] = f"Automatic reply: {received['Subject']}"
    reply["Auto-Submitted"] = "auto-replied"
    reply["X-Auto-Response-Suppress"] = "All"
    reply["In-Reply-To"] = received["Message-ID"] or ""
    reply.set_content("I am out of the office until Monday.")
    return reply


def naive_robot(received: Received) -> EmailMessage:
    """A badly made responder: no markers but its subject, answers From, threads nothing."""
    reply = EmailMessage()
    reply["From"] = received.rcpt_tos[0]
    reply["To"] = parseaddr(received["From"] or "")[1]
    reply["Subject"] = "Out of Office: away this week"
    reply.set_content("I am away this week and will read your mail when I am back.")
    return reply


def vacation_robot(received: Received) -> EmailMessage:
    """A responder with no markers at all, not even in its subject, answering the envelope
    sender (our VERP address)."""
    reply = EmailMessage()
    reply["From"] = received.rcpt_tos[0]
    reply["To"] = received.mail_from
    reply["Subject"] = "Vacation"
    reply.set_content("Back on the 3rd.")
    return reply


@pytest.mark.parametrize("robot", [exchange_oof, naive_robot, vacation_robot])
def test_out_of_office_robot_exchange_ends(
    app: App, sink: Sink, robot: Callable[[Received], EmailMessage]
) -> None:
    """A robot answering everything it receives gets one acknowledgement at most, and
    opens no second case; its answer is noted on the case."""
    with running_daemon(app) as daemon:
        send(daemon.port, mail(sender="Olga <olga@customer.org>", message_id="<o@customer.org>"))
        for _ in range(5):  # the robot answers whatever reached it in the last round
            app.processor.drain()
            before = len(sink.messages)
            app.sender.drain()
            for received in sink.messages[before:]:
                answer = robot(received)
                send(daemon.port, answer, rcpt=[received.mail_from],
                     mail_from=received.rcpt_tos[0])
        app.processor.drain()
    assert len(sink.expect(1, to="olga@customer.org")) == 1
    assert count(app, Case) == 1
    assert count(app, OutboundMail) == 1
    with app.sessions() as session:
        statuses = session.scalars(select(InboundMail.status).order_by(InboundMail.id)).all()
        events = session.scalars(select(Event.kind).where(Event.kind == "automatic reply")).all()
    assert statuses == ["processed", "dropped"]
    assert events == ["automatic reply"]


def dsn(to: str, recipient: str, status: str, original_id: str, action: str = "failed") -> bytes:
    """An RFC 3464 delivery status notification as Postfix writes it."""
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.customer.org>\r\nTo: {to}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        f"Message-ID: <dsn-{recipient}-{status}-{original_id.strip('<>')}@mx.customer.org>\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.\r\n"
        f"<{recipient}>: host mx said: 550 {status} User unknown\r\n\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.org\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} User unknown\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {original_id}\r\nFrom: Support <support@example.com>\r\n"
        f"To: {recipient}\r\nSubject: [Case #00001000] Printer on fire\r\n\r\n--B--\r\n"
    ).encode()


def first_ack(app: App, sink: Sink) -> Received:
    app.intake.accept(mail(message_id="<first@customer.org>").as_bytes(),
                      mail_from="ann@customer.org", rcpt_to=["support@example.com"],
                      source="test")
    app.processor.drain()
    app.sender.drain()
    [ack] = sink.expect(1)
    return ack


def test_acknowledgement_carries_a_verp_return_path(app: App, sink: Sink) -> None:
    """Each outbound mail's envelope sender names it: support+bounce-<id>-<mac>@…"""
    ack = first_ack(app, sink)
    assert ack.mail_from.startswith("support+bounce-1-")
    assert ack.mail_from.endswith("@example.com")


def test_hard_bounce_to_verp_marks_the_address(
    app: App, sink: Sink, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 5.x.x bounce to the VERP address is recorded against the mail, marks the
    address undeliverable (no more mail to it) until an operator clears it."""
    ack = first_ack(app, sink)
    inbound = app.intake.accept(dsn(ack.mail_from, "ann@customer.org", "5.1.1",
                                    ack["Message-ID"] or ""),
                                mail_from="", rcpt_to=[ack.mail_from], source="test").id
    app.processor.drain()
    with app.sessions() as session:
        row = session.get(InboundMail, inbound)
        assert row is not None and row.status == "dropped"
        assert row.outcome == "bounce of outbound 1: hard bounce for ann@customer.org (5.1.1)"
        bounce = session.scalars(select(Bounce)).one()
        assert (bounce.outbound_id, bounce.permanent, bounce.status) == (1, True, "5.1.1")
        status = session.get(RecipientStatus, "ann@customer.org")
        assert status is not None and status.undeliverable
    config = str(tmp_path / "mailcase.toml")
    assert main(["-c", config, "cases", "reply", "1000", "--body", "Hello?"]) == 0
    app.sender.drain()
    sink.expect(1)  # nothing more went to the dead address
    capsys.readouterr()
    assert main(["-c", config, "outbox", "undeliverable"]) == 0
    assert "ann@customer.org" in capsys.readouterr().out
    # The acknowledgement the relay took is not shown as plainly sent.
    assert main(["-c", config, "outbox", "list", "--json"]) == 0
    [listed_ack] = [r for r in json.loads(capsys.readouterr().out) if r["id"] == 1]
    assert listed_ack["status"] == "sent"
    assert listed_ack["bounce"]["permanent"] is True
    assert listed_ack["bounce"]["status"] == "5.1.1"
    assert main(["-c", config, "outbox", "list"]) == 0
    [line] = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("1 ")]
    assert "sent, bounced" in line and "User unknown" in line
    # The case's history says what happened to its mail.
    assert main(["-c", config, "cases", "show", "1000"]) == 0
    history = capsys.readouterr().out.split("History:", 1)[1]
    assert "hard bounce for ann@customer.org (outbound 1, 5.1.1)" in history
    assert "ann@customer.org marked undeliverable: 5.1.1" in history
    assert "ann@customer.org skipped: undeliverable" in history
    # Cleared, the address gets new mail; what was skipped meanwhile stays skipped.
    assert main(["-c", config, "outbox", "clear", "ann@customer.org"]) == 0
    assert "mail skipped while it was marked is not sent" in capsys.readouterr().out
    assert app.sender.drain() == {}
    assert main(["-c", config, "cases", "reply", "1000", "--body", "Hello again"]) == 0
    app.sender.drain()
    assert "Hello again" in sink.expect(2)[1].text


def test_rfc6533_global_bounce_over_smtp_marks_the_address(app: App, sink: Sink) -> None:
    """Postfix's report for SMTPUTF8 mail (message/global-delivery-status, UTF-8 fields),
    sent over SMTP from <> to the VERP address, is a bounce: recorded against the mail,
    the address marked, no case opened and nothing sent (it was once taken for an
    automatic reply and marked nothing)."""
    ack = first_ack(app, sink)
    template = (DATA / "bounces" / "postfix-rfc6533-global-delivery-status.eml").read_bytes()
    raw = (template.replace(b"{verp}", ack.mail_from.encode())
           .replace(b"{message_id}", (ack["Message-ID"] or "").encode()))
    with running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        client.ehlo()
        client.sendmail("<>", [ack.mail_from], raw, mail_options=["SMTPUTF8"])
    app.processor.drain()
    app.sender.drain()
    with app.sessions() as session:
        row = session.scalars(select(InboundMail).order_by(InboundMail.id.desc())).first()
        assert row is not None and row.status == "dropped"
        assert row.outcome == "bounce of outbound 1: hard bounce for ann@customer.org (5.1.1)"
        status = session.get(RecipientStatus, "ann@customer.org")
        assert status is not None and status.undeliverable
    assert count(app, Case) == 1
    sink.expect(1)  # the acknowledgement only


def test_unreadable_report_on_a_verp_address_counts_as_a_soft_bounce(
    app: App, sink: Sink
) -> None:
    """A real DragonFly bounce (Sisimai corpus) whose text is cut to name no address, sent
    to the VERP address of our acknowledgement: the address names the mail and its
    recipient, so it is recorded as a soft bounce of that mail (counted, never a stop
    by itself) instead of a mere automatic reply."""
    ack = first_ack(app, sink)
    raw = (DATA / "sisimai" / "lhost-dragonfly-01.eml").read_bytes().replace(
        b" to <pseudo-local-part@google.example.com>.", b".")
    inbound = app.intake.accept(raw, mail_from="", rcpt_to=[ack.mail_from], source="test").id
    app.processor.drain()
    with app.sessions() as session:
        row = session.get(InboundMail, inbound)
        assert row is not None and row.status == "dropped"
        assert row.outcome == "bounce of outbound 1: soft bounce for ann@customer.org"
        bounce = session.scalars(select(Bounce)).one()
        assert (bounce.outbound_id, bounce.recipient, bounce.permanent) == (
            1, "ann@customer.org", False)
        status = session.get(RecipientStatus, "ann@customer.org")
        assert status is not None and status.soft_bounces == 1 and not status.undeliverable


def test_a_prose_report_stops_mail_only_to_the_address_we_sent_to(
    app: App, sink: Sink
) -> None:
    """A real DragonFly bounce (a text report, no DSN) on the VERP address of our
    acknowledgement to ann: read for its failed address, which is not ann's, it is a
    soft bounce of that mail; the same report naming ann marks her undeliverable."""
    ack = first_ack(app, sink)
    raw = (DATA / "sisimai" / "lhost-dragonfly-01.eml").read_bytes()
    first = app.intake.accept(raw, mail_from="", rcpt_to=[ack.mail_from], source="test").id
    about_ann = raw.replace(b"pseudo-local-part@google.example.com", b"ann@customer.org")
    second = app.intake.accept(about_ann, mail_from="", rcpt_to=[ack.mail_from],
                               source="test").id
    app.processor.drain()
    with app.sessions() as session:
        rows = [session.get(InboundMail, first), session.get(InboundMail, second)]
        assert [row.outcome for row in rows if row is not None] == [
            "bounce of outbound 1: soft bounce for pseudo-local-part@google.example.com",
            "bounce of outbound 1: hard bounce for ann@customer.org"]
        status = session.get(RecipientStatus, "ann@customer.org")
        assert status is not None and status.soft_bounces == 1 and status.undeliverable


def test_clear_sends_what_the_mark_held_back(app: App, sink: Sink, tmp_path: Path) -> None:
    """Mail queued before a hard bounce is held (failed as undeliverable); clearing the
    address sends it."""
    ack = first_ack(app, sink)
    config = str(tmp_path / "mailcase.toml")
    assert main(["-c", config, "cases", "reply", "1000", "--body", "Queued first"]) == 0
    app.intake.accept(dsn(ack.mail_from, "ann@customer.org", "5.1.1", ack["Message-ID"] or ""),
                      mail_from="", rcpt_to=[ack.mail_from], source="test")
    app.processor.drain()
    app.sender.drain()
    sink.expect(1)
    with app.sessions() as session:
        held = session.scalars(select(Event).where(Event.kind == "mail held")).one()
        assert held.detail["email"] == "ann@customer.org"
    assert main(["-c", config, "outbox", "clear", "ann@customer.org"]) == 0
    assert app.sender.drain() == {"sent": 1}
    assert "Queued first" in sink.expect(2)[1].text


@pytest.mark.parametrize(("status", "action"), [("4.2.2", "delayed"), ("5.1.1", "failed")])
def test_bounce_matched_by_the_quoted_message_id(app: App, sink: Sink, status: str,
                                                 action: str) -> None:
    """A bounce sent to the plain address still finds its mail by the original's
    Message-ID and is counted, but cannot stop mail to the address: anyone who saw that
    Message-ID in a References header could have written it."""
    ack = first_ack(app, sink)
    app.intake.accept(dsn("support@example.com", "ann@customer.org", status,
                          ack["Message-ID"] or "", action=action),
                      mail_from="", rcpt_to=["support@example.com"], source="test")
    app.processor.drain()
    with app.sessions() as session:
        bounce = session.scalars(select(Bounce)).one()
        assert (bounce.outbound_id, bounce.permanent) == (1, action == "failed")
        state = session.get(RecipientStatus, "ann@customer.org")
        assert state is not None and (state.undeliverable, state.soft_bounces) == (False, 1)
        [event] = session.scalars(select(Event).where(Event.kind == "bounce")).all()
        assert event.detail["verified"] is False  # the history says it proves nothing
        assert summary_of(event).startswith("unverified report of a ")


def test_bounce_after_alias_expansion_marks_the_address_we_sent_to(app: App,
                                                                   sink: Sink) -> None:
    """The receiving system expanded ann@ to ann.smith@: the VERP bounce still marks the
    address we mailed."""
    ack = first_ack(app, sink)
    report = dsn(ack.mail_from, "ann.smith@mail.customer.org", "5.1.1",
                 ack["Message-ID"] or "").replace(
        b"Action: failed", b"Original-Recipient: rfc822; ann@customer.org\r\nAction: failed")
    app.intake.accept(report, mail_from="", rcpt_to=[ack.mail_from], source="test")
    app.processor.drain()
    with app.sessions() as session:
        state = session.get(RecipientStatus, "ann@customer.org")
        assert state is not None and state.undeliverable


def test_forged_bounce_marks_nothing(app: App, sink: Sink) -> None:
    """A report sent to the plain address naming someone we never sent that mail to is
    recorded but blocks no one."""
    ack = first_ack(app, sink)
    app.intake.accept(dsn("support@example.com", "victim@customer.org", "5.1.1",
                          ack["Message-ID"] or ""),
                      mail_from="", rcpt_to=["support@example.com"], source="test")
    app.processor.drain()
    assert count(app, RecipientStatus) == 0
    assert count(app, Bounce) == 1


def test_storm_of_bounces_and_auto_replies_opens_nothing(app: App, sink: Sink) -> None:
    """100 bounces and 100 auto-replies open no case and send no mail."""
    with running_daemon(app) as daemon, smtplib.SMTP("127.0.0.1", daemon.port) as client:
        for number in range(100):
            client.sendmail("", ["support@example.com"],
                            dsn("support@example.com", f"gone{number}@nowhere.example",
                                "5.1.1", f"<lost{number}@example.com>"))
            reply = mail(sender=f"Away {number} <away{number}@customer.org>",
                         subject=f"Automatic reply: question {number}",
                         message_id=f"<oof{number}@customer.org>", Auto_Submitted="auto-replied")
            client.sendmail(f"away{number}@customer.org", ["support@example.com"],
                            reply.as_bytes())
    app.processor.drain()
    app.sender.drain()
    assert count(app, InboundMail) == 200
    assert count(app, InboundMail, InboundMail.status == "dropped") == 200
    assert count(app, Case) == 0
    assert count(app, OutboundMail) == 0
    sink.expect(0)


def test_human_with_auto_submitted_no_gets_the_acknowledgement(app: App, sink: Sink) -> None:
    """`Auto-Submitted: no` is a person: the case opens and is acknowledged."""
    with running_daemon(app) as daemon:
        send(daemon.port, mail(message_id="<human@customer.org>", Auto_Submitted="no"))
    app.processor.drain()
    app.sender.drain()
    sink.expect(1, to="ann@customer.org")


def test_flood_breaker_stops_automatic_answers(make_app: Callable[..., App], sink: Sink) -> None:
    """A sender of more than flood_mails mails in flood_seconds gets no more answers."""
    app = make_app(mailbox={"address": "support@example.com", "auto_response_interval": 0,
                            "flood_mails": 3})
    for number in range(6):
        app.intake.accept(mail(message_id=f"<f{number}@customer.org>", subject=f"S {number}")
                          .as_bytes(), mail_from="ann@customer.org",
                          rcpt_to=["support@example.com"], source="test")
    app.processor.drain()
    app.sender.drain()
    sink.expect(3)
    assert count(app, Case) == 6


def test_auto_response_rules_pick_the_template(make_app: Callable[..., App], sink: Sink,
                                               tmp_path: Path) -> None:
    """The first rule whose conditions hold picks the template; an empty one answers
    nothing; without a match the shipped acknowledgement goes out."""
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    (templates / "urgent.subject.j2").write_text("We are on it: {{ case.subject }}\n")
    (templates / "urgent.txt.j2").write_text("Someone is on your urgent case now.\n")
    app = make_app(templates={"dir": str(templates)}, mailbox={
        "address": "support@example.com", "auto_response_interval": 0,
        "auto_response_rule": [
            {"senders": ["@partner.example"], "template": ""},
            {"subject_words": ["URGENT", "down"], "template": "urgent"},
            {"priority": "Low", "template": ""},
        ]})
    for number, (sender, subject) in enumerate([("p@partner.example", "urgent: all down"),
                                                ("ann@customer.org", "Site is DOWN"),
                                                ("bob@customer.org", "A question")]):
        app.intake.accept(mail(sender=sender, subject=subject, message_id=f"<r{number}@x.org>")
                          .as_bytes(), mail_from=sender, rcpt_to=["support@example.com"],
                          source="test")
    app.processor.drain()
    app.sender.drain()
    sink.expect(0, to="p@partner.example")
    [urgent] = sink.expect(1, to="ann@customer.org")
    assert urgent["Subject"] == "[Case #00001001] We are on it: Site is DOWN"
    [plain] = sink.expect(1, to="bob@customer.org")
    assert "We have logged your request" in plain.text
    app.intake.accept(mail(sender="carl@customer.org", subject="whenever", message_id="<low@x>",
                           X_Priority="5 (Lowest)").as_bytes(), mail_from="carl@customer.org",
                      rcpt_to=["support@example.com"], source="test")
    app.processor.drain()
    app.sender.drain()
    sink.expect(0, to="carl@customer.org")  # the Low-priority rule answers nothing
