"""The README's "Postfix in front" recipe, run: a real Postfix configured from the README's
own blocks (read from the file, so the recipe and the test cannot drift) takes mail for
support@ and its plus-forms and hands it to mailcase over LMTP, refuses unknown users at
RCPT, carries mailcase's mail out as its smarthost, and brings a bounce back to the VERP
return path. A second aiosmtpd sink stands for the customers' servers (customer.test)."""

from __future__ import annotations

import re
import shutil
import smtplib
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from sqlalchemy import func, select

from mailcase import config
from mailcase.app import App
from mailcase.cli import main
from mailcase.store.models import Case, Comment, InboundMail, RecipientStatus
from tests.support.mailsink import Received, Sink, free_port
from tests.support.paths import ROOT
from tests.support.polling import wait_for
from tests.support.postfix import Postfix
from tests.support.postfix import missing as postfix_missing
from tests.support.servers import mail, require, running_daemon, write_config

README_LMTP = "127.0.0.1:2525"  # where the README's transport table points
CUSTOMERS = "customer.test"
AGENT = "agent@example.com"  # a person's mailbox in a Dovecot whose LMTP lacks SMTPUTF8


def recipe() -> dict[str, str]:
    """The README's code blocks whose first line names a file: path -> the text after it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```[a-z]*\n# (/etc/\S+?):[^\n]*\n(.*?)^```", readme, re.S | re.M)
    return dict(blocks)


class _Keep:
    def __init__(self) -> None:
        self.mails: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 OK"


class OldDovecot(Controller):
    """An LMTP server that announces no SMTPUTF8, as a Dovecot without it answers LHLO."""

    def __init__(self) -> None:
        self.kept = _Keep()
        super().__init__(self.kept, hostname="127.0.0.1", port=free_port())

    def factory(self) -> LMTP:
        return LMTP(self.handler, enable_SMTPUTF8=False)


@dataclass(frozen=True)
class Front:
    postfix: Postfix
    customers: Sink
    dovecot: OldDovecot
    lmtp_port: int
    mailcase_toml: dict[str, dict[str, object]]


@pytest.fixture(scope="module")
def front() -> Iterator[Front]:
    """Postfix with the README's main.cf and tables; mailcase's LMTP port and the
    customers' server put where the README has its example addresses."""
    reason = postfix_missing()
    require(reason is None, reason or "")
    blocks = recipe()
    lmtp_port = free_port()
    assert README_LMTP in blocks["/etc/postfix/transport"]
    root = Path(tempfile.mkdtemp(prefix="mailcase-postfix-"))
    etc = root / "etc"

    def private(text: str) -> str:
        return text.replace("/etc/postfix/", f"{etc}/")

    dovecot = OldDovecot()
    dovecot.start()
    with Sink() as customers:
        tables = {
            "relay_recipients": blocks["/etc/postfix/relay_recipients"] + f"{AGENT} OK\n",
            "transport": blocks["/etc/postfix/transport"].replace(
                README_LMTP, f"127.0.0.1:{lmtp_port}")
            + f"{AGENT}    lmtp:inet:127.0.0.1:{dovecot.port}\n"
            + f"{CUSTOMERS}    smtp:[127.0.0.1]:{customers.port}\n",
        }
        postfix = Postfix(root, private(blocks["/etc/postfix/main.cf"]), tables)
        try:
            yield Front(postfix, customers, dovecot, lmtp_port,
                        tomllib.loads(blocks["/etc/mailcase/mailcase.toml"]))
        finally:
            postfix.stop()
            dovecot.stop()
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def gateway(front: Front, tmp_path: Path) -> Iterator[App]:
    """mailcase with the README's [smtp] and [outbound], on the ports of this run,
    serving with its processor and outbox sender."""
    smtp, outbound = front.mailcase_toml["smtp"], front.mailcase_toml["outbound"]
    assert (smtp["protocol"], smtp["port"], outbound["port"]) == ("lmtp", 2525, 25)
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'mailcase.db'}", None,
                        smtp={**smtp, "port": front.lmtp_port},
                        outbound={**outbound, "port": front.postfix.port, "timeout": 10})
    app = App.build(config.load(path), jitter=False, create_secret=True)
    app.ensure_schema()
    front.customers.messages.clear()
    try:
        with running_daemon(app, workers=True):
            yield app
    finally:
        app.close()


def to_postfix(front: Front, sender: str, rcpt: str, *, subject: str = "Printer on fire",
               **headers: str) -> None:
    """A customer's server handing one mail to Postfix on its public port."""
    message = mail(sender=sender, to=rcpt, subject=subject, **headers)
    with smtplib.SMTP("127.0.0.1", front.postfix.port, timeout=10) as client:
        client.send_message(message, from_addr=sender, to_addrs=[rcpt])


def delivered(front: Front, to: str, count: int = 1) -> list[Received]:
    """Wait until the customers' server holds ``count`` mails to ``to``; Postfix's log
    on failure."""
    try:
        wait_for(lambda: len([m for m in front.customers.messages if to in m.rcpt_tos]) >= count,
                 timeout=30, what=f"{count} mail(s) to {to} through Postfix")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{front.postfix.log()}") from None
    return front.customers.expect(count, to=to)


def count(app: App, model: type) -> int:
    with app.readers() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_mail_and_its_reply_by_token_pass_through_postfix(front: Front, gateway: App) -> None:
    """support@ reaches mailcase over LMTP and opens a case; the acknowledgement leaves
    through Postfix with its VERP return path; the customer's answer to the reply token
    (support+<token>@, found by recipient_delimiter) becomes a comment."""
    to_postfix(front, f"ann@{CUSTOMERS}", "support@example.com")
    [ack] = delivered(front, f"ann@{CUSTOMERS}")
    assert ack.mail_from.startswith("support+bounce-") and ack.mail_from.endswith(
        "@example.com")
    reply_to = ack["Reply-To"] or ""
    assert re.fullmatch(r"(.*<)?support\+\d+-c\d+-[a-z2-7]+@example\.com>?", reply_to), reply_to
    token_address = reply_to.strip().rpartition("<")[2].rstrip(">")
    to_postfix(front, f"ann@{CUSTOMERS}", token_address, subject=f"Re: {ack['Subject']}",
               In_Reply_To="<unrelated@elsewhere>")
    wait_for(lambda: count(gateway, Comment) == 1, timeout=30, what="the reply as a comment")
    assert count(gateway, Case) == 1
    with gateway.readers() as session:
        sources = session.scalars(select(InboundMail.source)).all()
    assert sources == ["lmtp", "lmtp"]


def test_an_address_that_is_not_ascii_reaches_mailcase_and_is_answered(
    front: Front, gateway: App
) -> None:
    """smtputf8_enable = yes: jürgen@ writes with SMTPUTF8, mailcase's LMTP takes it, and
    the acknowledgement goes back through Postfix with SMTPUTF8."""
    sender = f"jürgen@{CUSTOMERS}"
    message = mail(sender=sender, subject="Drucker brennt")
    with smtplib.SMTP("127.0.0.1", front.postfix.port, timeout=10) as client:
        client.send_message(message, from_addr=sender, to_addrs=["support@example.com"],
                            mail_options=["SMTPUTF8"])
    [ack] = delivered(front, sender)
    assert ack.rcpt_tos == (sender,)


def test_unknown_users_are_refused_at_rcpt_and_plus_forms_are_not(front: Front,
                                                                   gateway: App) -> None:
    """relay_recipient_maps: nobody@ gets 550 5.1.1 before any mail is taken; support+
    anything@ (a forged token too) is accepted for mailcase to judge."""
    with smtplib.SMTP("127.0.0.1", front.postfix.port, timeout=10) as client:
        client.mail(f"ann@{CUSTOMERS}")
        code, text = client.rcpt("nobody@example.com")
        assert (code, text[:5]) == (550, b"5.1.1"), text
        assert client.rcpt("support+not-a-token@example.com")[0] == 250
        client.rset()
    assert count(gateway, InboundMail) == 0


def test_a_bounce_comes_back_to_the_verp_address(front: Front, gateway: App) -> None:
    """The customers' server refuses the acknowledgement at RCPT; Postfix returns it to
    the VERP address, which its recipient_delimiter lets in, and mailcase marks the
    address undeliverable."""
    front.customers.fail_next("550 5.1.1 <ghost@customer.test>: no such user", "RCPT")
    to_postfix(front, f"ghost@{CUSTOMERS}", "support@example.com")

    def marked() -> bool:
        with gateway.readers() as session:
            status = session.get(RecipientStatus, f"ghost@{CUSTOMERS}")
            return status is not None and status.undeliverable

    try:
        wait_for(marked, timeout=30, what="the bounce marking ghost@ undeliverable")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{front.postfix.log()}") from None


def test_without_the_delimiter_replies_and_bounces_are_refused(front: Front) -> None:
    """Why the recipe needs recipient_delimiter: without it Postfix refuses every
    plus-form, the reply tokens and the VERP return path alike."""
    def answer(rcpt: str) -> int:
        with smtplib.SMTP("127.0.0.1", front.postfix.port, timeout=10) as client:
            client.mail("")
            return client.rcpt(rcpt)[0]

    front.postfix.postconf("recipient_delimiter =")
    try:
        wait_for(lambda: answer("support+bounce-1-abc@example.com") == 550, timeout=20,
                 what="Postfix refusing the VERP address")
        assert answer("support@example.com") == 250
    finally:
        front.postfix.postconf("recipient_delimiter = +")
    wait_for(lambda: answer("support+bounce-1-abc@example.com") == 250, timeout=20,
             what="Postfix taking the VERP address again")


def test_check_config_finds_postfix_answering_as_the_smarthost(
    front: Front, gateway: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the README's [outbound], check-config greets this Postfix and quits: OK."""
    capsys.readouterr()
    assert main(["-c", str(tmp_path / "mailcase.toml"), "check-config", "--no-ports"]) == 0
    assert f"smarthost 127.0.0.1:{front.postfix.port}: OK, " in capsys.readouterr().out


def test_smtputf8_mail_for_a_dovecot_without_it_bounces(front: Front) -> None:
    """The README's warning, shown: with SMTPUTF8 and UTF-8 in a header, mail for a
    mailbox behind an LMTP without SMTPUTF8 comes back to its sender (5.6.7); the same
    mail sent without SMTPUTF8 is delivered as 8-bit mail."""
    front.customers.messages.clear()
    raw = (f"From: ann@{CUSTOMERS}\r\nTo: {AGENT}\r\nSubject: Grüße\r\n\r\nhallo\r\n"
           ).encode()
    with smtplib.SMTP("127.0.0.1", front.postfix.port, timeout=10) as client:
        client.sendmail(f"ann@{CUSTOMERS}", [AGENT], raw, mail_options=["SMTPUTF8"])
        client.sendmail(f"bob@{CUSTOMERS}", [AGENT], raw, mail_options=["BODY=8BITMIME"])
    [bounce] = delivered(front, f"ann@{CUSTOMERS}")
    assert bounce.mail_from == "<>" and "SMTPUTF8 is required" in bounce.raw.decode(
        errors="replace")
    wait_for(lambda: front.dovecot.kept.mails, timeout=30, what="the 8-bit mail delivered")
    assert front.dovecot.kept.mails == [(f"bob@{CUSTOMERS}", [AGENT])]
