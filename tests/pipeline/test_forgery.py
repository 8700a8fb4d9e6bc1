"""A forged From acts on no case, over real SMTP on both engines: mail "from" our own
address, a forged agent, a forged contact with commands, a stranger holding a known
Message-ID, a token forwarded to a stranger under each policy; and the same writers
when their mail proves who they are (DKIM verified here, a trusted MTA's results).
Each test checks that the case did not change and what everyone, the real sender
included, was told."""

from __future__ import annotations

import contextlib
import io
import json
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailcase.app import App
from mailcase.cli import main
from mailcase.identity.tokens import Participant
from mailcase.outbound.compose import Recipient
from mailcase.store.models import Case, InboundMail, OutboundMail
from tests.support.dkimkeys import Dns, sign
from tests.support.mailsink import Sink
from tests.support.servers import mail, running_daemon

SUPPORT = "support@example.com"
ANN = "ann@customer.org"
BOB = "bob@example.com"  # the agent who owns the case
ATTACKER = "attacker@evil.test"
LURE = "Please confirm your password at http://evil.test/login"


@dataclass(frozen=True)
class CaseState:
    """What an attack must not change on a case."""

    status: str
    owner: str | None
    comments: tuple[tuple[str | None, str, bool], ...]
    collaborators: tuple[str, ...]


def state(app: App, number: int = 1000) -> CaseState:
    with app.sessions() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        return CaseState(
            case.status, case.owner_name,
            tuple((c.author_email, c.body, c.public) for c in case.comments),
            tuple(c.email for c in case.collaborators))


def cli(tmp_path: Path, *args: str) -> int:
    return main(["-c", str(tmp_path / "mailcase.toml"), *args])


def count(app: App, model: type) -> int:
    with app.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def deliver(app: App, raw: bytes, *, mail_from: str, rcpt: str = SUPPORT) -> InboundMail:
    """Send ``raw`` to the real listener as ``mail_from``, then process and send it all."""
    with (running_daemon(app) as daemon,
          smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as client):
        client.sendmail(mail_from, [rcpt], raw)
    app.processor.drain()
    app.sender.drain()
    with app.sessions() as session:
        return session.scalars(select(InboundMail).order_by(InboundMail.id.desc())).first()


def tagged(sender: str, body: str, *, message_id: str, how: str = "subject tag",
           subject: str = "Re: [Case #00001000] update") -> bytes:
    """A reply that names case 1000 by its subject tag, or by its thread (``how``)."""
    if how == "thread":
        message = mail(sender=sender, subject="Re: Printer on fire", body=body,
                       message_id=message_id, In_Reply_To="<first@customer.org>",
                       References="<first@customer.org>")
    else:
        message = mail(sender=sender, subject=subject, body=body, message_id=message_id)
    return message.as_bytes()


def open_case(app: App, sink: Sink, tmp_path: Path) -> str:
    """Case 00001000 from Ann, owned by agent Bob, with a note written as the mailbox
    (which makes the mailbox address an agent: the attack's starting point). Returns the
    reply token address Ann's acknowledgement carries."""
    first = mail(sender=f"Ann <{ANN}>", message_id="<first@customer.org>",
                 body="My printer is on fire. Serial 12345.")
    deliver(app, first.as_bytes(), mail_from=ANN)
    assert cli(tmp_path, "agents", "add", BOB) == 0
    assert cli(tmp_path, "cases", "update", "1000", "--owner", BOB) == 0
    assert cli(tmp_path, "cases", "note", "1000", "--body", "Checked the contract.") == 0
    app.sender.drain()
    [ack] = sink.expect(1, to=ANN)
    sink.messages.clear()
    return parseaddr(ack["Reply-To"] or "")[1]


# --- mailcase never answers itself -----------------------------------------------------


@pytest.mark.parametrize("spoofed", [
    "Support <support@example.com>", "SUPPORT@EXAMPLE.COM", "support@example.com.",
    '"support"@example.com', "support+bounce-1-abcdefghijklmnopqrst@example.com",
    "Billing <billing@example.com>", "ann-token",
])
def test_mail_from_our_own_address_posts_nothing_and_mails_no_one(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path, spoofed: str
) -> None:
    """From our mailbox in any spelling, a plus-form, or another configured mailbox: the
    mail is dropped, the case is untouched, no case is opened and nothing is mailed."""
    app = make_app(mailbox=[{"address": SUPPORT, "name": "Support"},
                            {"address": "billing@example.com", "name": "Billing"}])
    token = open_case(app, sink, tmp_path)
    before, outbound = state(app), count(app, OutboundMail)
    sender = token if spoofed == "ann-token" else spoofed
    row = deliver(app, tagged(sender, LURE, message_id="<spoof@evil.test>"), mail_from=ATTACKER)
    assert row.status == "dropped" and row.outcome is not None
    assert row.outcome.startswith("from our own address")
    assert state(app) == before
    assert count(app, Case) == 1
    assert count(app, OutboundMail) == outbound
    assert sink.messages == []


# --- a forged agent -----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["subject tag", "thread"])
def test_a_forged_agent_neither_posts_nor_commands(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path, how: str
) -> None:
    """An agent's From without their token or an authenticated sender is a stranger's:
    the case keeps its status, comments and collaborators; the mail opens a case of its
    own, and nobody is mailed (no acknowledgement to the agent it names, nothing to the
    customer, nothing to the real sender)."""
    app = make_app()
    open_case(app, sink, tmp_path)
    before = state(app)
    body = f"/close fixed\n/cc {ATTACKER}\n{LURE}"
    row = deliver(app, tagged(f"Bob <{BOB}>", body, message_id="<bob@evil.test>", how=how),
                  mail_from=ATTACKER)
    assert state(app) == before
    assert row.status == "processed" and row.opened_case
    assert row.outcome is not None and "not authenticated" in row.outcome
    assert "no acknowledgement: bob@example.com is an agent" in row.outcome
    assert sink.messages == []


# --- a forged contact ---------------------------------------------------------------------


def test_a_forged_contact_may_comment_but_not_command(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path
) -> None:
    """The contact's From by thread proves nothing: the words join the case as the table
    allows, but /cc adds nobody (not even at the contact's own free-mail domain), no
    welcome goes to the attacker, and no refusal is mailed to the forged contact."""
    app = make_app()
    open_case(app, sink, tmp_path)
    before = state(app)
    row = deliver(app, tagged(f"Ann <{ANN}>", "more\n/cc mallory@customer.org",
                              message_id="<forged-ann@evil.test>"), mail_from=ATTACKER)
    after = state(app)
    assert after.collaborators == before.collaborators == ()
    assert after.comments == (*before.comments, (ANN, "more", True))
    assert row.outcome is not None
    assert "/cc mallory@customer.org: commands by mail need" in row.outcome
    sink.expect(1, to=BOB)  # the owner hears of the comment, as of any contact's
    sink.expect(0, to="mallory@customer.org")
    sink.expect(0, to=ANN)
    sink.expect(0, to=ATTACKER)


def test_a_dkim_signed_contact_commands_and_a_broken_signature_proves_nothing(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path
) -> None:
    """With DKIM verified here against the key the test publishes, Ann's signed /cc adds
    her colleague (who is welcomed) and the verdict shows in `cases show`; the same mail
    altered after signing counts as unsigned (RFC 6376 6.1): its words join as an
    unproven contact's, its /cc adds nobody, and nobody is mailed a refusal."""
    dns = Dns()
    dns.publish("customer.org")
    app = make_app(dns=dns.txt, mailbox={"address": SUPPORT, "verify_dkim": True})
    open_case(app, sink, tmp_path)
    signed = sign(tagged(f"Ann <{ANN}>", "Adding Carol.\n/cc carol@customer.org",
                         message_id="<signed@customer.org>"), "customer.org")
    deliver(app, signed, mail_from=ANN)
    assert state(app).collaborators == ("carol@customer.org",)
    sink.expect(1, to="carol@customer.org", subject_starts="[Case")  # the welcome
    shown = _show(tmp_path)
    assert shown["comments"][-1]["sender_auth"] == (  # type: ignore[index]
        "pass: dkim=pass d=customer.org (verified by mailcase)")
    sink.messages.clear()
    forged = sign(tagged(f"Ann <{ANN}>", "More.\n/cc dave@customer.org",
                         message_id="<altered@customer.org>"), "customer.org")
    row = deliver(app, forged.replace(b"/cc dave", b"/cc mallory"), mail_from=ATTACKER)
    assert state(app).collaborators == ("carol@customer.org",)
    assert row.outcome is not None and "commands by mail need" in row.outcome
    assert _show(tmp_path)["comments"][-1]["sender_auth"].startswith(  # type: ignore[index]
        "none: no verified DKIM signature")
    sink.expect(0, to="mallory@customer.org")
    sink.expect(0, to=ANN)


def test_what_a_verifier_and_our_parser_read_differently_proves_nothing(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path
) -> None:
    """A mail genuinely signed by example.com, with headers hidden behind bare CRs (one
    header to DKIM, Bob's From and a case tag to our parser), a second Subject on top of
    one Bob signed, or a signature whose l= leaves room for more text: none makes Bob an
    agent. The case stays as it was and nobody is mailed."""
    dns = Dns()
    dns.publish("example.com")
    app = make_app(dns=dns.txt, mailbox={"address": SUPPORT, "verify_dkim": True})
    open_case(app, sink, tmp_path)
    before = state(app)
    newsletter = sign(mail(sender="News <news@example.com>", subject="Our news",
                           message_id="<news1@example.com>", body="Hello.\n").as_bytes(),
                      "example.com")
    smuggled = (b"X-Note: x\rFrom: Bob <bob@example.com>\rSubject: Re: [Case #00001000] "
                b"update\rMessage-ID: <s@evil.test>\r\r\n /close pwned\r\n " + LURE.encode()
                + b"\r\n" + newsletter)
    lunch = sign(mail(sender=f"Bob <{BOB}>", subject="Lunch?", message_id="<lunch@example.com>",
                      body="Sure, see you at noon.\n").as_bytes(), "example.com")
    second_subject = b"Subject: Re: [Case #00001000] Printer on fire\r\n" + lunch
    short = sign(tagged(f"Bob <{BOB}>", "Looking.\n", message_id="<l@example.com>"),
                 "example.com", length=True) + b"/close pwned\r\n"
    for number, raw in enumerate((smuggled, second_subject, short), 1001):
        row = deliver(app, raw, mail_from=ATTACKER)
        assert state(app) == before, number
        assert row.opened_case, row.outcome
    assert sink.messages == []


def test_a_forged_from_through_a_forwarded_token_mails_no_one(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path
) -> None:
    """A token passed on, with a From the trusted MTA says failed DMARC: under
    foreign_reply = "new_case" the new case answers no one and copies no one in."""
    app = make_app(mailbox={"address": SUPPORT, "foreign_reply": "new_case",
                            "trusted_authserv_ids": ["mx.example.com"],
                            "collaborators": "anyone"})
    token = open_case(app, sink, tmp_path)
    raw = stamped(["mx.example.com; dmarc=fail header.from=bank.test"],
                  mail(sender="Victim <victim@bank.test>", to=token, Cc="other@bank.test",
                       subject="Re: Printer on fire", message_id="<v@evil.test>",
                       body="Hello").as_bytes())
    row = deliver(app, raw, mail_from=ATTACKER, rcpt=token)
    assert row.opened_case and row.outcome is not None
    assert "failed sender authentication" in row.outcome
    assert sink.messages == []


def test_a_follow_up_enrols_no_one_for_an_unproven_writer(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path
) -> None:
    """A forged reply to a closed case opens its follow-up (the contact may write), but
    the people it copies are not made collaborators of it and hear nothing."""
    app = make_app(cases={"on_reply_to_closed": "follow_up"})
    open_case(app, sink, tmp_path)
    assert cli(tmp_path, "cases", "close", "1000", "--resolution", "Replaced") == 0
    app.sender.drain()
    sink.messages.clear()
    raw = mail(sender=f"Ann <{ANN}>", Cc="mallory@customer.org", message_id="<fu@evil.test>",
               subject="Re: [Case #00001000] Printer on fire", body="It is back.").as_bytes()
    row = deliver(app, raw, mail_from=ATTACKER)
    assert row.opened_case
    assert state(app, 1001).collaborators == ()
    sink.expect(0, to="mallory@customer.org")


def _show(tmp_path: Path, number: str = "1000") -> dict[str, object]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli(tmp_path, "cases", "show", number, "--json") == 0
    return json.loads(out.getvalue())  # type: ignore[no-any-return]


# --- trusted Authentication-Results -------------------------------------------------------


def stamped(results: list[str], raw: bytes) -> bytes:
    """``raw`` as the MTA hands it over: its Authentication-Results on top, in order."""
    return b"".join(f"Authentication-Results: {r}\r\n".encode() for r in results) + raw


def test_an_agent_authenticated_by_the_trusted_mta_acts_by_thread(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path
) -> None:
    """Bob's From with the trusted MTA's DMARC pass is Bob: his reply in the thread is an
    agent's public comment, his /status applies, and Ann hears his answer."""
    app = make_app(mailbox={"address": SUPPORT, "trusted_authserv_ids": ["mx.example.com"]})
    open_case(app, sink, tmp_path)
    raw = stamped(["mx.example.com; dkim=pass header.d=example.com; "
                   "dmarc=pass header.from=example.com"],
                  tagged(f"Bob <{BOB}>", "Working on it.\n/status On Hold",
                         message_id="<bob-real@example.com>", how="thread"))
    deliver(app, raw, mail_from=BOB)
    after = state(app)
    assert after.status == "On Hold"
    assert after.comments[-1] == (BOB, "Working on it.", True)
    [answer] = sink.expect(1, to=ANN)
    assert "Working on it." in answer.text


@pytest.mark.parametrize("results", [
    ["mx.evil.test; dmarc=pass header.from=example.com"],
    ["mx.example.com; dmarc=fail header.from=example.com",
     "mx.example.com; dmarc=pass header.from=example.com"],
])
def test_untrusted_or_sender_written_results_make_no_agent(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path, results: list[str]
) -> None:
    """A pass from an authserv-id nobody trusts, or one the sender wrote below the trusted
    MTA's own failing header, proves nothing: the case is untouched and nobody is
    mailed."""
    app = make_app(mailbox={"address": SUPPORT, "trusted_authserv_ids": ["mx.example.com"]})
    open_case(app, sink, tmp_path)
    before = state(app)
    raw = stamped(results, tagged(f"Bob <{BOB}>", f"/close fixed\n{LURE}",
                                  message_id="<bob-fake@evil.test>"))
    row = deliver(app, raw, mail_from=ATTACKER)
    assert state(app) == before
    assert row.opened_case
    assert sink.messages == []


# --- a stranger with a known Message-ID -----------------------------------------------------


def test_a_stranger_in_the_thread_opens_a_case_of_their_own(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path
) -> None:
    """Someone who knows the customer's Message-ID gets a case of their own: the case and
    its customer hear nothing, and the stranger's acknowledgement tells nothing of it."""
    app = make_app()
    open_case(app, sink, tmp_path)
    before = state(app)
    row = deliver(app, tagged("Mallory <mallory@evil.test>", LURE,
                              message_id="<m@evil.test>", how="thread"),
                  mail_from="mallory@evil.test")
    assert state(app) == before
    assert row.opened_case and row.outcome is not None and "not on the case" in row.outcome
    [ack] = sink.expect(1, to="mallory@evil.test")
    assert "00001001" in (ack["Subject"] or "") and "Serial 12345" not in ack.text
    sink.expect(0, to=ANN)
    sink.expect(0, to=BOB)


def test_a_held_reply_joins_only_when_released_and_never_commands(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With unproven_reply = "hold" the stranger's reply waits (`inbound list --held`),
    mailing no one; `inbound release` adds it to the case as a comment, and its /cc is
    still refused."""
    app = make_app(mailbox={"address": SUPPORT, "unproven_reply": "hold"})
    open_case(app, sink, tmp_path)
    before = state(app)
    reply = tagged("Carl <carl@partner.test>", "Our log attached.\n/cc carl@partner.test",
                   message_id="<carl@partner.test>", how="thread")
    row = deliver(app, reply, mail_from="carl@partner.test")
    assert row.status == "held" and row.outcome is not None
    assert row.outcome.startswith("held for review: carl@partner.test wrote in case 00001000")
    assert state(app) == before and count(app, Case) == 1 and sink.messages == []
    capsys.readouterr()
    assert cli(tmp_path, "inbound", "list", "--held", "--json") == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [row.id]
    assert cli(tmp_path, "inbound", "release", str(row.id)) == 0
    app.processor.drain()
    app.sender.drain()
    after = state(app)
    assert after.comments == (*before.comments, ("carl@partner.test", "Our log attached.", True))
    assert after.collaborators == ()
    sink.expect(0, to="carl@partner.test")


# --- a token forwarded to a stranger --------------------------------------------------------


@pytest.mark.parametrize("policy", ["accept", "hold", "new_case", "park"])
def test_a_forwarded_token_follows_the_mailbox_policy_and_never_commands(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path, policy: str
) -> None:
    """A reply through Ann's token from someone else: a comment without its commands
    (accept), held, a case of its own, or parked; Ann's case never gains a collaborator,
    Ann hears of nothing but an accepted comment, and the writer is mailed no refusal."""
    app = make_app(mailbox={"address": SUPPORT, "foreign_reply": policy})
    token = open_case(app, sink, tmp_path)
    before = state(app)
    raw = mail(sender="Mallory <mallory@customer.org>", to=token, subject="Re: Printer on fire",
               message_id="<fw@customer.org>", body="Forwarded thoughts.\n/cc mallory@customer.org")
    row = deliver(app, raw.as_bytes(), mail_from="mallory@customer.org", rcpt=token)
    after = state(app)
    assert after.collaborators == ()
    expected_status = {"accept": "processed", "hold": "held", "new_case": "processed",
                       "park": "parked"}[policy]
    assert row.status == expected_status
    if policy == "accept":  # a comment like any other: the contact hears of it
        assert after.comments[-1] == ("mallory@customer.org", "Forwarded thoughts.", True)
        [notice] = sink.expect(1, to=ANN)
        assert "Forwarded thoughts." in notice.text and "/cc" not in notice.text
    else:
        assert after == before
        sink.expect(0, to=ANN)
    assert row.opened_case == (policy == "new_case")
    assert all("Not done" not in (m["Subject"] or "") for m in sink.messages)


# --- our own addresses through the other doors ----------------------------------------------


@pytest.mark.parametrize("ours", ["SUPPORT@example.com", "support+anything@example.com"])
def test_our_own_address_is_never_a_collaborator_or_a_recipient(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], ours: str,
) -> None:
    """`collaborators add` refuses our own address in any spelling with one clear line,
    and the composer queues nothing to it even when asked directly."""
    app = make_app(mailbox={"address": SUPPORT, "collaborators": "anyone"})
    open_case(app, sink, tmp_path)
    capsys.readouterr()
    assert cli(tmp_path, "collaborators", "add", "1000", ours) != 0
    assert "it is a mailcase address" in capsys.readouterr().err
    assert state(app).collaborators == ()
    with app.sessions.begin() as session:
        case = session.scalars(select(Case)).one()
        queued = app.services.composer.queue(
            session, case, Recipient(ours, "", Participant("c", 1)), template="acknowledgement",
            kind="notice", now=app.clock(), auto_submitted="auto-replied")
    assert queued is None
    app.sender.drain()
    assert sink.messages == []
