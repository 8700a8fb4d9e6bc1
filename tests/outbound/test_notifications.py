"""Everyone on a case hears about it, once: a contact, twenty collaborators and an owner,
over real SMTP with the sink."""

from __future__ import annotations

from collections.abc import Callable
from email.utils import parseaddr
from pathlib import Path

from sqlalchemy import func, select

from mailcase.app import App
from mailcase.cli import main
from mailcase.outbound.compose import Threaded, thread_of
from mailcase.store.models import Case, InboundMail, OutboundMail
from tests.support.mailsink import Sink
from tests.support.servers import mail

COLLABORATORS = [f"colleague{n}@customer.org" for n in range(20)]
OWNER = "bob@example.com"


def owned_case(make_app: Callable[..., App], tmp_path: Path, copied: list[str]) -> App:
    """Case 00001000: contact Ann, ``copied`` on her first mail (collaborators: anyone
    may be), owner agent Bob; nothing sent yet."""
    app = make_app(mailbox={"address": "support@example.com", "collaborators": "anyone"})
    app.intake.accept(mail(message_id="<first@customer.org>", Cc=", ".join(copied))
                      .as_bytes(), mail_from="ann@customer.org",
                      rcpt_to=["support@example.com"], source="test")
    app.processor.drain()
    assert main(["-c", str(tmp_path / "mailcase.toml"), "agents", "add", OWNER]) == 0
    assert main(["-c", str(tmp_path / "mailcase.toml"), "cases", "update", "1000",
                 "--owner", OWNER]) == 0
    return app


def big_case(make_app: Callable[..., App], sink: Sink, tmp_path: Path) -> App:
    """Case 00001000: contact Ann, twenty collaborators copied on her mail, owner Bob."""
    app = owned_case(make_app, tmp_path, COLLABORATORS)
    app.sender.drain()
    sink.messages.clear()  # the acknowledgement, the "case logged" mails, Bob's alert
    sink.connections = 0
    return app


def recipients(sink: Sink) -> list[str]:
    return sorted(rcpt for message in sink.messages for rcpt in message.rcpt_tos)


def test_case_logged_reaches_the_copied_collaborators(make_app: Callable[..., App],
                                                      sink: Sink) -> None:
    """A new case: the contact gets the acknowledgement, each copied colleague one mail
    saying it was logged."""
    app = make_app(mailbox={"address": "support@example.com", "collaborators": "anyone"})
    app.intake.accept(mail(message_id="<logged@customer.org>", Cc="c1@x.org, c2@x.org")
                      .as_bytes(), mail_from="ann@customer.org",
                      rcpt_to=["support@example.com"], source="test")
    app.processor.drain()
    app.sender.drain()
    assert recipients(sink) == ["ann@customer.org", "c1@x.org", "c2@x.org"]
    [logged] = sink.expect(1, to="c1@x.org")
    assert logged["Auto-Submitted"] == "auto-generated"
    assert logged["X-Auto-Response-Suppress"] == "All"


def test_threading_headers_name_the_root_then_the_parent_chain(
    make_app: Callable[..., App], sink: Sink,
) -> None:
    """RFC 5322 3.6.4: a collaborator's first mail names the customer's mail it is
    about, not an acknowledgement they never got; each answer lists the parent's
    References then the parent, the case's root first; a long exchange stays trimmed
    to ten with the root kept."""
    app = make_app(mailbox={"address": "support@example.com", "collaborators": "anyone"})
    app.intake.accept(mail(message_id="<root@customer.org>", Cc="c1@x.org").as_bytes(),
                      mail_from="ann@customer.org", rcpt_to=["support@example.com"],
                      source="test")
    app.processor.drain()
    app.sender.drain()
    [logged] = sink.expect(1, to="c1@x.org")
    assert logged["In-Reply-To"] == "<root@customer.org>"
    assert logged["References"] == "<root@customer.org>"
    [ack] = sink.expect(1, to="ann@customer.org")
    assert ack["References"] == "<root@customer.org>"

    # Ann answers the acknowledgement, as her mail client threads it: root, then ack.
    latest, chain = ack, ["<root@customer.org>"]
    for turn in range(14):
        chain = [*chain, latest["Message-ID"]]
        sink.messages.clear()
        answer = mail(sender="ann@customer.org", to=latest["Reply-To"] or "",
                      subject=f"Re: {latest['Subject']}", message_id=f"<turn{turn}@customer.org>",
                      In_Reply_To=latest["Message-ID"] or "", References=" ".join(chain),
                      body=f"Still broken ({turn}).")
        app.intake.accept(answer.as_bytes(), mail_from="ann@customer.org",
                          rcpt_to=[parseaddr(latest["Reply-To"] or "")[1]], source="test")
        app.processor.drain()
        app.desk().reply(1000, f"Try this ({turn}).", app.desk().author(None))
        app.sender.drain()
        chain = [*chain, f"<turn{turn}@customer.org>"]
        [to_c1] = [m for m in sink.messages if m.rcpt_tos == ("c1@x.org",)][-1:]
        [latest] = [m for m in sink.messages if m.rcpt_tos == ("ann@customer.org",)][-1:]
        for message in (to_c1, latest):
            references = (message["References"] or "").split()
            assert message["In-Reply-To"] == f"<turn{turn}@customer.org>"
            assert references[0] == "<root@customer.org>"
            assert references[-1] == f"<turn{turn}@customer.org>"
            assert len(references) <= 10
            assert references[1:] == chain[-(len(references) - 1):]
    assert len((latest["References"] or "").split()) == 10


def test_agent_reply_reaches_everyone_once(make_app: Callable[..., App], sink: Sink,
                                           tmp_path: Path) -> None:
    """One agent reply on a case with twenty collaborators: one transaction, 21 outbox
    rows, 21 mails over one connection, one per person, each with its own token."""
    app = big_case(make_app, sink, tmp_path)
    with app.sessions() as session:
        before = session.scalar(select(func.count()).select_from(OutboundMail))
    assert main(["-c", str(tmp_path / "mailcase.toml"), "cases", "reply", "1000",
                 "--body", "Replacement on its way.", "--as", OWNER]) == 0
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboundMail)) == before + 21
    assert app.sender.drain() == {"sent": 21}
    assert recipients(sink) == sorted(["ann@customer.org", *COLLABORATORS])
    assert sink.connections == 1
    tokens = {parseaddr(m["Reply-To"] or "")[1] for m in sink.messages}
    assert len(tokens) == 21
    # A person wrote it: no automatic-mail headers, so the customer's own vacation
    # notice (which Exchange and Sieve suppress for automatic mail) reaches the agent.
    assert all(m["Auto-Submitted"] is None for m in sink.messages)
    assert all(m["X-Auto-Response-Suppress"] is None for m in sink.messages)


def test_collaborator_reply_reaches_everyone_but_its_author(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path
) -> None:
    """A collaborator's reply (through their own token) goes to the contact, the other 19
    and the owner, not back to its author, and threads in their mail clients."""
    app = big_case(make_app, sink, tmp_path)
    assert main(["-c", str(tmp_path / "mailcase.toml"), "cases", "reply", "1000",
                 "--body", "Which model?", "--as", OWNER]) == 0
    app.sender.drain()
    [theirs] = [m for m in sink.messages if m.rcpt_tos == ("colleague7@customer.org",)]
    token_address = parseaddr(theirs["Reply-To"] or "")[1]
    sink.messages.clear()
    answer = mail(sender="colleague7@customer.org", to=token_address,
                  subject=f"Re: {theirs['Subject']}", message_id="<c7-answer@customer.org>",
                  In_Reply_To=theirs["Message-ID"] or "",
                  body="It is the X200.\n\nOn Mon, 23 Nov 2026 at 10:00, Support wrote:\n> Which?")
    app.intake.accept(answer.as_bytes(), mail_from="colleague7@customer.org",
                      rcpt_to=[token_address], source="test")
    app.processor.drain()
    assert app.sender.drain() == {"sent": 21}
    others = [c for c in COLLABORATORS if c != "colleague7@customer.org"]
    expected = ["ann@customer.org", OWNER, *others]
    assert recipients(sink) == sorted(expected)
    for message in sink.messages:
        assert "It is the X200." in message.text
        assert message["In-Reply-To"] == "<c7-answer@customer.org>"
        assert "<c7-answer@customer.org>" in (message["References"] or "")
        assert message["Auto-Submitted"] == "auto-generated"


def test_internal_note_reaches_no_customer(make_app: Callable[..., App], sink: Sink,
                                           tmp_path: Path) -> None:
    """An internal note goes to the owner only: no contact, no collaborator."""
    app = big_case(make_app, sink, tmp_path)
    assert main(["-c", str(tmp_path / "mailcase.toml"), "cases", "note", "1000",
                 "--body", "Customer is on the old contract.", "--as", "eve@example.com"]) == 0
    app.sender.drain()
    assert recipients(sink) == [OWNER]
    assert sink.messages[0]["Subject"].startswith("[internal]")


def test_close_sends_the_resolution(make_app: Callable[..., App], sink: Sink,
                                    tmp_path: Path) -> None:
    """Closing mails the resolution to the contact and every collaborator."""
    app = big_case(make_app, sink, tmp_path)
    assert main(["-c", str(tmp_path / "mailcase.toml"), "cases", "close", "1000",
                 "--resolution", "Printer replaced.", "--as", OWNER]) == 0
    app.sender.drain()
    assert recipients(sink) == sorted(["ann@customer.org", *COLLABORATORS])
    assert all("Printer replaced." in m.text for m in sink.messages)


def test_late_collaborator_gets_the_public_history(make_app: Callable[..., App], sink: Sink,
                                                   tmp_path: Path) -> None:
    """A collaborator added later gets one welcome mail with every earlier public comment
    and no internal one."""
    app = make_app(mailbox={"address": "support@example.com", "collaborators": "anyone"})
    app.intake.accept(mail(message_id="<late@customer.org>").as_bytes(),
                      mail_from="ann@customer.org", rcpt_to=["support@example.com"],
                      source="test")
    app.processor.drain()
    config = str(tmp_path / "mailcase.toml")
    for command in (["reply", "1000", "--body", "First public answer."],
                    ["note", "1000", "--body", "Secret internal remark."],
                    ["reply", "1000", "--body", "Second public answer."]):
        assert main(["-c", config, "cases", *command]) == 0
    app.sender.drain()
    sink.messages.clear()
    assert main(["-c", config, "collaborators", "add", "1000", "late@partner.org"]) == 0
    app.sender.drain()
    [welcome] = sink.expect(1, to="late@partner.org")
    assert "First public answer." in welcome.text
    assert "Second public answer." in welcome.text
    assert "Secret internal remark." not in welcome.text
    assert len(sink.messages) == 1


def test_files_travel_with_notifications_up_to_the_cap(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path
) -> None:
    """A reply's files go along with its notifications while they fit under
    attachments.notify_max_size; above it the notification lists them instead."""
    app = make_app(attachments={"notify_max_size": 1000},
                   mailbox={"address": "support@example.com", "collaborators": "anyone"})
    app.intake.accept(mail(message_id="<files@customer.org>", Cc="carl@customer.org")
                      .as_bytes(), mail_from="ann@customer.org",
                      rcpt_to=["support@example.com"], source="test")
    app.processor.drain()
    for number, size in enumerate((100, 5000)):
        reply = mail(message_id=f"<file{number}@customer.org>", subject="Re: files",
                     In_Reply_To="<files@customer.org>", body=f"File {number} attached.")
        reply.add_attachment(b"x" * size, maintype="text", subtype="plain",
                             filename=f"log{number}.txt")
        app.intake.accept(reply.as_bytes(), mail_from="ann@customer.org",
                          rcpt_to=["support@example.com"], source="test")
    app.processor.drain()
    app.sender.drain()
    small, big = [m for m in sink.expect(3, to="carl@customer.org") if "File" in m.text]
    [attached] = list(small.message.iter_attachments())
    assert attached.get_filename() == "log0.txt"
    assert attached.get_content() == "x" * 100
    assert list(big.message.iter_attachments()) == []
    assert "log1.txt (5000 bytes, too large to send along" in big.text


def test_refused_copies_are_explained_to_the_sender(make_app: Callable[..., App],
                                                    sink: Sink) -> None:
    """Copied addresses the mailbox's policy refuses are explained to the sender in one
    mail; the case opens all the same."""
    app = make_app()
    app.intake.accept(mail(message_id="<refused@customer.org>",
                           Cc="vendor@supplier.example, carl@customer.org").as_bytes(),
                      mail_from="ann@customer.org", rcpt_to=["support@example.com"],
                      source="test")
    app.processor.drain()
    app.sender.drain()
    [notice] = sink.expect(1, to="ann@customer.org", subject_starts="Not done:")
    assert "vendor@supplier.example not made a collaborator: only addresses at " \
           "customer.org may be added" in notice.text
    sink.expect(1, to="carl@customer.org")
    # The sender's address is not proven: a second such mail within the acknowledgement's
    # interval explains nothing (a forged From is never mailed twice).
    app.intake.accept(mail(message_id="<refused2@customer.org>", subject="Again",
                           Cc="vendor@supplier.example").as_bytes(),
                      mail_from="ann@customer.org", rcpt_to=["support@example.com"],
                      source="test")
    app.processor.drain()
    app.sender.drain()
    sink.expect(1, to="ann@customer.org", subject_starts="Not done:")



def test_people_copied_on_a_later_reply_join_and_get_no_second_copy(
        make_app: Callable[..., App], sink: Sink) -> None:
    """Ann's reply through her token copies a colleague (same domain) and a stranger:
    the colleague joins the case, the stranger does not (noted, not mailed about); the
    colleague, who got Ann's mail directly, gets no notification of it, but does of the
    next one."""
    app = make_app(mailbox={"address": "support@example.com"})
    app.intake.accept(mail(message_id="<start@customer.org>").as_bytes(),
                      mail_from="ann@customer.org", rcpt_to=["support@example.com"],
                      source="test")
    app.processor.drain()
    app.sender.drain()
    [ack] = sink.expect(1, to="ann@customer.org")
    token = parseaddr(ack["Reply-To"] or "")[1]
    sink.messages.clear()
    reply = mail(sender="ann@customer.org", to=token, subject="Re: Printer on fire",
                 Cc="Dan <dan@customer.org>, eve@elsewhere.example", body="Dan knows more.")
    inbound = app.intake.accept(reply.as_bytes(), mail_from="ann@customer.org",
                                rcpt_to=[token], source="test")
    app.processor.drain()
    app.sender.drain()
    with app.sessions() as session:
        case = session.scalars(select(Case)).one()
        assert [c.email for c in case.collaborators] == ["dan@customer.org"]
        row = session.get(InboundMail, inbound.id)
        assert row is not None and "eve@elsewhere.example not made a collaborator" in (
            row.outcome or "")
    assert sink.messages == []  # Dan had it already; Eve is told nothing
    app.intake.accept(mail(sender="ann@customer.org", to=token, subject="Re: Printer on fire",
                           body="Any news?").as_bytes(),
                      mail_from="ann@customer.org", rcpt_to=[token], source="test")
    app.processor.drain()
    app.sender.drain()
    [news] = sink.expect(1, to="dan@customer.org")
    assert "Any news?" in news.text


def test_a_forged_cc_keeps_no_one_from_hearing_and_agents_always_hear(
        make_app: Callable[..., App], sink: Sink, tmp_path: Path) -> None:
    """Who already has a mail is read only from a proven writer's headers: a claimed
    "Ann" naming the case in its subject and Cc'ing everyone still notifies them all;
    Ann's proven reply copying the owner still gives the owner his own copy (with the
    token he answers through), sparing only the customer-side people copied."""
    app = owned_case(make_app, tmp_path, ["dan@customer.org"])
    app.sender.drain()
    [ack] = sink.expect(1, to="ann@customer.org")
    sink.messages.clear()
    forged = mail(sender="ann@customer.org", subject="Re: [Case #00001000] Printer on fire",
                  Cc=f"dan@customer.org, {OWNER}", body="Pay to IBAN XX.")
    app.intake.accept(forged.as_bytes(), mail_from="ann@customer.org",
                      rcpt_to=["support@example.com"], source="test")
    app.processor.drain()
    app.sender.drain()
    sink.expect(1, to="dan@customer.org")
    sink.expect(1, to=OWNER)
    sink.messages.clear()
    token = parseaddr(ack["Reply-To"] or "")[1]
    proven = mail(sender="ann@customer.org", to=token, subject="Re: Printer on fire",
                  Cc=f"dan@customer.org, {OWNER}", body="Dan and Bob know.")
    app.intake.accept(proven.as_bytes(), mail_from="ann@customer.org", rcpt_to=[token],
                      source="test")
    app.processor.drain()
    app.sender.drain()
    sink.expect(0, to="dan@customer.org")  # he had it straight from Ann
    [copy] = sink.expect(1, to=OWNER)
    assert "Dan and Bob know." in copy.text


def test_an_internal_note_by_mail_enrols_none_of_its_copies(
        make_app: Callable[..., App], sink: Sink, tmp_path: Path) -> None:
    """An agent's /internal reply copying an outside engineer keeps them off the case:
    an internal note is not the customer's conversation."""
    app = owned_case(make_app, tmp_path, [])
    app.sender.drain()
    [alert] = sink.expect(1, to=OWNER)
    token = parseaddr(alert["Reply-To"] or "")[1]
    note = mail(sender=OWNER, to=token, subject=f"Re: {alert['Subject']}",
                Cc="eng-lead@partner.org", body="/internal\nEng, can you look?")
    app.intake.accept(note.as_bytes(), mail_from=OWNER, rcpt_to=[token], source="test")
    app.processor.drain()
    with app.sessions() as session:
        case = session.scalars(select(Case)).one()
        assert case.collaborators == []
        assert [c.public for c in case.comments] == [False]


def test_threading_root_is_the_cases_first_mail_whoever_sent_it() -> None:
    """A case opened by hand starts with our acknowledgement: it is the root, and the
    customer's reply to it is the parent, last."""
    parent, references = thread_of([Threaded("<ack@ours>", "out"),
                                    Threaded("<ann1@c>", "in", ("<ack@ours>",))])
    assert (parent, references) == ("<ann1@c>", ["<ack@ours>", "<ann1@c>"])
