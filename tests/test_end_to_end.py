"""The whole path over real sockets: smtplib → our listener → case → acknowledgement to a
real SMTP sink → the customer's reply → a comment on the same case → an agent's answer."""

from __future__ import annotations

import json
import re
from email.utils import parseaddr
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailcase.app import App
from mailcase.cli import main
from mailcase.store.models import Case, Comment, InboundMail
from tests.support.mailsink import Sink
from tests.support.servers import mail, running_daemon, send, wait_for

TOKEN_ADDRESS = re.compile(r"^support\+1000-c\d+-[a-z2-7]{20}@example\.com$")


def case_count(app: App) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Case)) or 0)


def show(config: Path, number: str, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main(["-c", str(config), "cases", "show", number, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_mail_opens_case_and_tokened_reply_threads_into_it(
    app: App, sink: Sink, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new mail opens case 00001000 and is acknowledged; the reply to the token address,
    quoting the acknowledgement, becomes a comment on that case and opens no other."""
    with running_daemon(app) as daemon:
        send(daemon.port, mail(message_id="<first@customer.org>"))
        assert app.processor.drain() == {"processed": 1}
        assert app.sender.drain() == {"sent": 1}
        [ack] = sink.expect(1, to="ann@customer.org")
        assert ack["Subject"] == "[Case #00001000] Printer on fire"
        assert ack["Auto-Submitted"] == "auto-replied"
        assert ack["X-Auto-Response-Suppress"] == "All"
        assert ack["In-Reply-To"] == "<first@customer.org>"
        assert ack["Message-ID"] and ack["Message-ID"].endswith("@example.com>")
        reply_address = parseaddr(ack["Reply-To"] or "")[1]
        assert TOKEN_ADDRESS.match(reply_address), reply_address
        assert "00001000" in ack.text

        quoted = "\n".join("> " + line for line in ack.text.splitlines())
        reply = mail(
            to=reply_address, subject=f"Re: {ack['Subject']}", message_id="<second@customer.org>",
            body=f"It is still burning.\n\nOn Mon, 23 Nov 2026, Support wrote:\n{quoted}\n",
        )
        send(daemon.port, reply)
        assert app.processor.drain() == {"processed": 1}

    assert case_count(app) == 1
    case = show(tmp_path / "mailcase.toml", "00001000", capsys)
    assert case["status"] == "New"
    assert case["supplied_email"] == "ann@customer.org"
    assert case["description"].startswith("My printer is on fire.")
    assert [c["body"] for c in case["comments"]] == ["It is still burning."]
    assert case["comments"][0]["author"] == "ann@customer.org"
    assert case["comments"][0]["public"] is True


def test_reply_without_token_threads_by_in_reply_to(app: App, sink: Sink) -> None:
    """A reply sent to the plain support address finds its case through In-Reply-To."""
    with running_daemon(app) as daemon:
        send(daemon.port, mail(message_id="<first@customer.org>"))
        app.processor.drain()
        app.sender.drain()
        [ack] = sink.expect(1)
        send(daemon.port, mail(subject="Re: printer", message_id="<again@customer.org>",
                               In_Reply_To=ack["Message-ID"] or ""))
        app.processor.drain()
    assert case_count(app) == 1
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Comment)) == 1


def test_agent_reply_note_close_and_reopen(
    app: App, sink: Sink, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An agent's reply reaches the customer with a token Reply-To; an internal note is
    never mailed; a closed case refuses status changes until it is reopened."""
    config = str(tmp_path / "mailcase.toml")
    with running_daemon(app) as daemon:
        send(daemon.port, mail(message_id="<first@customer.org>"))
    app.processor.drain()
    app.sender.drain()
    sink.expect(1)

    assert main(["-c", config, "cases", "reply", "1000", "--body", "Unplug it.",
                 "--as", "bob@example.com"]) == 0
    assert main(["-c", config, "cases", "note", "00001000", "--body", "Customer sounds calm."]) == 0
    app.sender.drain()
    [_, answer] = sink.expect(2, to="ann@customer.org")
    assert answer["Subject"] == "Re: [Case #00001000] Printer on fire"
    assert answer["Auto-Submitted"] is None  # a person wrote it
    assert "Unplug it." in answer.text
    assert "Customer sounds calm" not in answer.text
    assert TOKEN_ADDRESS.match(parseaddr(answer["Reply-To"] or "")[1])
    assert answer["In-Reply-To"] == "<first@customer.org>"

    capsys.readouterr()
    assert main(["-c", config, "cases", "close", "1000", "--resolution", "Unplugged"]) == 0
    assert main(["-c", config, "cases", "update", "1000", "--status", "Working"]) == 1
    assert "closed; reopen it first" in capsys.readouterr().err
    assert main(["-c", config, "cases", "reopen", "1000"]) == 0
    assert main(["-c", config, "cases", "update", "1000", "--status", "On Hold"]) == 0

    case = show(tmp_path / "mailcase.toml", "1000", capsys)
    assert case["status"] == "On Hold"
    assert case["is_closed"] is False and case["closed_at"] is None
    # Reopening drops the resolution of the close; the reopening event keeps it.
    assert case["resolution"] is None
    assert case["events"][-2]["kind"] == "reopened"
    assert case["events"][-2]["detail"]["resolution"] == "Unplugged"
    assert [(c["body"], c["public"]) for c in case["comments"]] == [
        ("Unplug it.", True), ("Customer sounds calm.", False)]
    sink.expect(2)  # nothing more was mailed


def test_daemon_workers_process_within_a_second(app: App, sink: Sink) -> None:
    """With its workers running, the daemon turns a mail into a case and sends the
    acknowledgement without being asked."""
    with running_daemon(app, workers=True) as daemon:
        send(daemon.port, mail(message_id="<auto@customer.org>"))
        wait_for(lambda: case_count(app) == 1, timeout=1.0, what="a case for the mail")
        wait_for(lambda: len(sink.messages) == 1, timeout=2.0, what="the acknowledgement")
    with app.sessions() as session:
        statuses = session.scalars(select(InboundMail.status)).all()
    assert statuses == ["processed"]
