"""Replies that act on a case: agents answering and commanding by mail through their own
token, customers managing who follows a case, refusals explained by mail."""

from __future__ import annotations

from collections.abc import Callable
from email.utils import parseaddr
from pathlib import Path

from sqlalchemy import select

from mailcase.app import App
from mailcase.cli import main
from mailcase.store.models import Case, InboundMail
from tests.support.mailsink import Received, Sink
from tests.support.servers import mail

OWNER = "bob@example.com"


def deliver(app: App, sender: str, to: str, body: str, message_id: str,
            subject: str = "Re: [Case #00001000] Printer on fire") -> int:
    raw = mail(sender=sender, to=to, subject=subject, message_id=message_id, body=body)
    inbound = app.intake.accept(raw.as_bytes(), mail_from=sender, rcpt_to=[to], source="test")
    app.processor.drain()
    app.sender.drain()
    return inbound.id


def token_of(message: Received) -> str:
    return parseaddr(message["Reply-To"] or "")[1]


def owned_case(make_app: Callable[..., App], sink: Sink, tmp_path: Path, **mailbox: object) -> App:
    """Case 00001000 from Ann, owned by agent Bob; Ann has written once more, so Bob holds a
    notification with his own token."""
    app = make_app(mailbox={"address": "support@example.com", **mailbox})
    deliver(app, "ann@customer.org", "support@example.com", "My printer is on fire.",
            "<first@customer.org>", subject="Printer on fire")
    assert main(["-c", str(tmp_path / "mailcase.toml"), "agents", "add", OWNER]) == 0
    assert main(["-c", str(tmp_path / "mailcase.toml"), "cases", "update", "1000",
                 "--owner", OWNER]) == 0
    app.sender.drain()
    [alert] = sink.expect(1, to=OWNER)  # the case is Bob's now: he is told so
    assert (alert["Subject"] or "").startswith("[Case #00001000] For you")
    sink.messages.remove(alert)
    [ack] = sink.expect(1, to="ann@customer.org")
    deliver(app, "ann@customer.org", token_of(ack), "Any news?", "<news@customer.org>")
    sink.expect(1, to=OWNER)
    return app


def case(app: App, number: int = 1000) -> Case:
    with app.sessions() as session:
        found = session.scalars(select(Case).where(Case.number == number)).one()
        _ = found.comments, found.collaborators
        return found


def test_agent_answers_by_mail(make_app: Callable[..., App], sink: Sink, tmp_path: Path) -> None:
    """The owner's reply to a notification is a public comment by the agent, mailed to the
    customer as a person's answer (no Auto-Submitted)."""
    app = owned_case(make_app, sink, tmp_path)
    [note] = sink.expect(1, to=OWNER)
    deliver(app, OWNER, token_of(note), "A technician comes tomorrow.", "<bob1@example.com>")
    answer = sink.expect(2, to="ann@customer.org")[1]
    assert "A technician comes tomorrow." in answer.text
    assert answer["Auto-Submitted"] is None
    assert [(c.author_kind, c.public) for c in case(app).comments][-1] == ("agent", True)


def test_agent_commands_by_mail(make_app: Callable[..., App], sink: Sink,
                                tmp_path: Path) -> None:
    """/internal makes a note nobody outside hears of; /status and /priority act and leave
    the comment; /close closes with its resolution, which the customer is sent."""
    app = owned_case(make_app, sink, tmp_path)
    bob = token_of(sink.expect(1, to=OWNER)[0])
    deliver(app, OWNER, bob, "/internal\nShe is on the old contract.", "<bob2@example.com>")
    sink.expect(1, to="ann@customer.org")  # still only the acknowledgement
    deliver(app, OWNER, bob, "Ordered the part.\n/status On Hold\n/priority high",
            "<bob3@example.com>")
    current = case(app)
    assert (current.status, current.priority) == ("On Hold", "High")
    assert [c.body for c in current.comments][-2:] == [
        "She is on the old contract.", "Ordered the part."]
    assert [c.public for c in current.comments][-2:] == [False, True]
    deliver(app, OWNER, bob, "/close Replaced the printer", "<bob4@example.com>")
    current = case(app)
    assert (current.is_closed, current.resolution) == (True, "Replaced the printer")
    assert current.comments[-1].body == "Ordered the part."  # commands alone add no comment
    closed = sink.expect(3, to="ann@customer.org")[2]
    assert "Replaced the printer" in closed.text


def test_customer_cannot_command_and_is_told(make_app: Callable[..., App], sink: Sink,
                                             tmp_path: Path) -> None:
    """A customer's /close is refused, cut from the comment, and explained to them."""
    app = owned_case(make_app, sink, tmp_path)
    [ack] = sink.expect(1, to="ann@customer.org")
    inbound = deliver(app, "ann@customer.org", token_of(ack), "Please close it.\n/close done",
                      "<ann-close@customer.org>")
    current = case(app)
    assert not current.is_closed
    assert current.comments[-1].body == "Please close it."
    notice = sink.expect(2, to="ann@customer.org")[1]
    assert notice["Subject"].startswith("Not done:")
    assert "only an agent" in notice.text
    with app.sessions() as session:
        outcome = session.get(InboundMail, inbound).outcome  # type: ignore[union-attr]
    assert outcome and "/close done: only an agent" in outcome


def test_contact_manages_collaborators_by_mail(make_app: Callable[..., App], sink: Sink,
                                               tmp_path: Path) -> None:
    """/cc adds a colleague (who gets the welcome mail), /uncc removes one, a collaborator
    leaves with /unsubscribe, and an address the policy refuses is explained."""
    app = owned_case(make_app, sink, tmp_path)
    ann = token_of(sink.expect(1, to="ann@customer.org")[0])
    deliver(app, "ann@customer.org", ann, "/cc carol@customer.org\n/cc dave@customer.org",
            "<cc@customer.org>")
    assert [c.email for c in case(app).collaborators] == ["carol@customer.org",
                                                         "dave@customer.org"]
    [welcome] = sink.expect(1, to="carol@customer.org")
    deliver(app, "carol@customer.org", token_of(welcome), "/unsubscribe", "<bye@customer.org>")
    deliver(app, "ann@customer.org", ann, "/uncc dave@customer.org\n/cc eve@evil.org",
            "<uncc@customer.org>")
    assert case(app).collaborators == []
    notice = sink.expect(1, to="ann@customer.org", subject_starts="Not done:")[0]
    assert "eve@evil.org cannot follow this case" in notice.text


def test_foreign_reply_can_be_parked(make_app: Callable[..., App], sink: Sink,
                                     tmp_path: Path) -> None:
    """With foreign_reply = "park", a reply through Ann's token from someone else waits for
    an operator instead of joining the case."""
    app = owned_case(make_app, sink, tmp_path, foreign_reply="park")
    ann = token_of(sink.expect(1, to="ann@customer.org")[0])
    inbound = deliver(app, "mallory@customer.org", ann, "Hi", "<fw@customer.org>")
    with app.sessions() as session:
        row = session.get(InboundMail, inbound)
        assert row is not None and row.status == "parked"
        assert row.outcome == ("reply through the token sent to ann@customer.org came from "
                               "mallory@customer.org")


def test_internal_words_never_reach_the_customer(make_app: Callable[..., App], sink: Sink,
                                                 tmp_path: Path) -> None:
    """/internal keeps a reply private wherever the line stands and whoever sends it (an
    agent from an alias through their token), and a reply to an internal-note mail stays
    internal. An agent's From alone proves nothing: without a token, their tagged reply
    opens a case of its own, and its words still reach no customer."""
    app = owned_case(make_app, sink, tmp_path)
    bob = token_of(sink.expect(1, to=OWNER)[0])
    secret = "Customer is lying, refund denied."
    deliver(app, OWNER, "support@example.com", f"/internal\n{secret}", "<tag@example.com>")
    assert case(app, 1001).description == f"/internal\n{secret}"
    deliver(app, "bob.smith@example.com", bob, f"/internal\n{secret}", "<alias@example.com>")
    deliver(app, OWNER, bob, f"Team:\n/internal\n{secret}", "<second@example.com>")
    assert main(["-c", str(tmp_path / "mailcase.toml"), "cases", "note", "1000", "--body",
                 "Check the warranty.", "--as", "eve@example.com"]) == 0
    app.sender.drain()
    note = sink.expect(2, to=OWNER, subject_starts="[internal]")[-1]  # the alias's, then Eve's
    assert "Check the warranty." in note.text
    deliver(app, OWNER, token_of(note), "Agreed, deny the claim.", "<agree@example.com>")
    for message in sink.messages:
        if "ann@customer.org" in message.rcpt_tos:
            assert secret not in message.text and "deny the claim" not in message.text
    bodies = {c.body: c.public for c in case(app).comments}
    assert bodies["Agreed, deny the claim."] is False
    assert bodies[secret] is False and bodies[f"Team:\n{secret}"] is False


def test_bad_cc_address_costs_nothing_and_smuggles_nothing(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path
) -> None:
    """A malformed or list-shaped /cc address is refused and explained; the reply is still
    recorded and sent, and no one outside the policy is added."""
    app = owned_case(make_app, sink, tmp_path, collaborators="anyone")
    bob = token_of(sink.expect(1, to=OWNER)[0])
    deliver(app, OWNER, bob,
            "The fix is X.\n/cc x@[customer.org\n/cc mallory@evil.com, x@customer.org\n"
            '/cc a"b@customer.org', "<badcc@example.com>")
    current = case(app)
    assert current.collaborators == []
    assert current.comments[-1].body == "The fix is X."
    assert any("The fix is X." in m.text for m in sink.expect(2, to="ann@customer.org"))
    notice = sink.expect(1, to=OWNER, subject_starts="Not done:")[0]
    assert notice.text.count("is not one plain email address") == 3
    assert all("mallory@evil.com" not in m.rcpt_tos for m in sink.messages)


def test_two_auto_responders_on_a_case_do_not_loop(make_app: Callable[..., App], sink: Sink,
                                                   tmp_path: Path) -> None:
    """Two plain vacation responders answering each other's notifications through us
    stop at once: a word-for-word repeat notifies no one."""
    app = make_app(mailbox={"address": "support@example.com", "collaborators": "anyone"})
    deliver(app, "ann@customer.org", "support@example.com", "Help", "<loop0@customer.org>",
            subject="Printer on fire")
    assert main(["-c", str(tmp_path / "mailcase.toml"), "collaborators", "add", "1000",
                 "carol@other.org"]) == 0
    app.sender.drain()
    for round_number in range(6):
        waiting = list(sink.messages)
        sink.messages.clear()
        for received in waiting:
            person = received.rcpt_tos[0]
            deliver(app, person, token_of(received), "I am on vacation.",
                    f"<vac{round_number}-{person}>")
    assert len(sink.messages) == 0
    assert len(case(app).comments) <= 4


def test_two_auto_responders_with_changing_text_stop_within_two_exchanges(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path
) -> None:
    """Two responders that answer every notification at once with new words each time
    (no repeat gives them away, no header marks them) are taken for robots after two
    exchanges: the loop ends within three exchanges (each robot's comments answered at
    most twice) and a handful of mails, where it took 22 comments and 42 mails."""
    app = make_app(mailbox={"address": "support@example.com", "collaborators": "anyone"})
    deliver(app, "ann@customer.org", "support@example.com", "Help", "<pp0@customer.org>",
            subject="Printer on fire")
    assert main(["-c", str(tmp_path / "mailcase.toml"), "collaborators", "add", "1000",
                 "carol@other.org"]) == 0
    app.sender.drain()
    sent = len(sink.messages)
    for round_number in range(8):
        waiting = list(sink.messages)
        sink.messages.clear()
        for received in waiting:
            person = received.rcpt_tos[0]
            deliver(app, person, token_of(received),
                    f"Ticket {round_number * 7 + 3} received, we answer within a day.",
                    f"<pp{round_number}-{person}>")
            sent += len(sink.messages)
    assert len(sink.messages) == 0
    assert len(case(app).comments) <= 5
    assert sent <= 8, sent
    with app.sessions() as session:
        outcomes = session.scalars(select(InboundMail.outcome)).all()
    assert any("answered each other's notifications" in (o or "") for o in outcomes)


def test_agent_reply_to_closed_case_opens_no_follow_up(make_app: Callable[..., App],
                                                       sink: Sink, tmp_path: Path) -> None:
    """With follow-up cases on, an agent's reply to a closed case is recorded on it; it
    does not open a case with the agent as its contact."""
    app = owned_case(make_app, sink, tmp_path)
    bob = token_of(sink.expect(1, to=OWNER)[0])
    assert main(["-c", str(tmp_path / "mailcase.toml"), "cases", "close", "1000",
                 "--resolution", "done"]) == 0
    app.processor.drain()
    with app.sessions.begin() as session:
        session.scalars(select(Case)).one()  # still one case before the reply
    deliver(app, OWNER, bob, "One more thing for the record.", "<late@example.com>")
    with app.sessions() as session:
        assert session.scalars(select(Case.number)).all() == [1000]


def test_unsubscribe_button_of_a_notification(make_app: Callable[..., App], sink: Sink,
                                              tmp_path: Path) -> None:
    """A collaborator's notification offers List-Unsubscribe (their own token address);
    the mail that button sends removes them and adds no comment. The contact's mail
    offers no such button."""
    app = owned_case(make_app, sink, tmp_path, collaborators="anyone")
    assert main(["-c", str(tmp_path / "mailcase.toml"), "collaborators", "add", "1000",
                 "carol@other.org"]) == 0
    app.sender.drain()
    [welcome] = sink.expect(1, to="carol@other.org")
    button = (welcome["List-Unsubscribe"] or "").strip()
    assert button == f"<mailto:{token_of(welcome)}?subject=unsubscribe>"
    assert all(m["List-Unsubscribe"] is None for m in sink.expect(1, to="ann@customer.org"))
    comments_before = len(case(app).comments)
    deliver(app, "carol@other.org", token_of(welcome), "", "<unsub@other.org>",
            subject="unsubscribe")
    current = case(app)
    assert current.collaborators == []
    assert len(current.comments) == comments_before
