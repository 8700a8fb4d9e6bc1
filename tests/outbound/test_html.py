"""Every mail mailcase writes has a text and an HTML part, signed once, with the
writer's text escaped and its lines kept; an operator's text-only set stays text only.
Real mail over SMTP to the sink, read back with the email package."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

from mailcase.app import App
from mailcase.cli import main
from tests.support.mailsink import Received, Sink
from tests.support.servers import mail

MAILBOX = {"address": "support@example.com", "name": "Acme Support"}
OWNER = "bob@example.com"
# Words only that kind of mail says, in its text and its HTML part alike.
KINDS = {
    "acknowledgement": "We have logged your request",
    "case_logged": "you were copied on a request to Acme Support",
    "command_refused": "but not everything it",
    "agent_reply": "Reply to this mail to answer.",
    "new_comment": "wrote on case 00001000",
    "internal_note": "(not sent to the customer)",
    "collaborator_welcome": "you now follow case",
    "case_closed": "is closed.",
    "case_assigned": "is yours",
}
# What would make a mail client load something: an HTML part needs none of it, and a
# load would tell a tracker the mail was opened.
FETCHING = ("<img", "<link", "<script", "src=", "url(", "@import")


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and the HTML of a mail that must be multipart/alternative, text first
    (RFC 2046 5.1.4: the last part is the richest the writer offers)."""
    assert message.get_content_type() == "multipart/alternative", message.get_content_type()
    plain, html = message.iter_parts()
    assert (plain.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    return _content(plain), _content(html)


def _content(part: EmailMessage) -> str:
    """A text part decoded, its CRLF line ends (as on the wire) read as newlines."""
    content: str = part.get_content()
    return content.replace("\r\n", "\n")


def deliver(app: App, sender: str, to: str, body: str, message_id: str, **headers: str) -> None:
    raw = mail(sender=sender, to=to, subject="Re: [Case #00001000] Printer on fire",
               message_id=message_id, body=body, **headers)
    app.intake.accept(raw.as_bytes(), mail_from=parseaddr(sender)[1], rcpt_to=[to],
                      source="test")
    app.processor.drain()
    app.sender.drain()


def new_case(app: App, message_id: str, **headers: str) -> None:
    """Ann's first mail, processed: case 00001000."""
    app.intake.accept(mail(message_id=message_id, **headers).as_bytes(),
                      mail_from="ann@customer.org", rcpt_to=["support@example.com"],
                      source="test")
    app.processor.drain()


def token_of(message: Received) -> str:
    return parseaddr(message["Reply-To"] or "")[1]


def cli(tmp_path: Path, *args: str) -> None:
    assert main(["-c", str(tmp_path / "mailcase.toml"), *args]) == 0


def test_every_kind_of_mail_has_a_text_and_an_html_part(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path
) -> None:
    """A case lived through from its first mail to its close: the acknowledgement, the
    copied colleague's note, the refused copy, an agent's answer, a collaborator's
    comment, an internal note, a late collaborator's welcome, the owner's alert and the
    resolution each
    arrive as text/plain then text/html, saying the same, with nothing to fetch."""
    app = make_app(mailbox=MAILBOX)
    new_case(app, "<all@customer.org>", Cc="carl@customer.org, vendor@supplier.example")
    cli(tmp_path, "agents", "add", OWNER)
    cli(tmp_path, "cases", "update", "1000", "--owner", OWNER)
    cli(tmp_path, "cases", "reply", "1000", "--body", "A technician comes tomorrow.")
    app.sender.drain()
    [logged] = sink.expect(1, to="carl@customer.org", subject_starts="[Case")
    deliver(app, "carl@customer.org", token_of(logged), "Thanks, I will be there.",
            "<carl@customer.org>")
    cli(tmp_path, "cases", "note", "1000", "--body", "Old contract.", "--as", "eve@example.com")
    cli(tmp_path, "collaborators", "add", "1000", "dan@customer.org")
    cli(tmp_path, "cases", "close", "1000", "--resolution", "Printer replaced.")
    app.sender.drain()

    seen = dict.fromkeys(KINDS, 0)
    for received in sink.messages:
        text, html = parts(received.message)
        assert html.startswith("<!DOCTYPE html>") and "00001000" in html
        assert not [tag for tag in FETCHING if tag in html.lower()], html
        kinds = [kind for kind, words in KINDS.items() if words in text]
        assert len(kinds) == 1, f"one kind of mail expected, found {kinds}:\n{text}"
        [kind] = kinds
        assert KINDS[kind] in html, f"{kind}: the HTML part lacks {KINDS[kind]!r}"
        seen[kind] += 1
    assert all(seen.values()), seen


def test_an_answer_without_an_agent_is_signed_once_with_the_mailbox_name(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path
) -> None:
    """`cases reply` without --as writes in the mailbox's name: the signature is that
    name once (it was "Support, Support"); an agent answering by mail signs with their
    name over the mailbox's."""
    app = make_app(mailbox=MAILBOX)
    new_case(app, "<sign@customer.org>")
    cli(tmp_path, "agents", "add", OWNER)
    cli(tmp_path, "cases", "update", "1000", "--owner", OWNER)
    cli(tmp_path, "cases", "reply", "1000", "--body", "We are on it.")
    app.sender.drain()
    ack, answer = sink.expect(2, to="ann@customer.org")
    text, html = parts(answer.message)
    signature = text.split("\n-- \n")[1].splitlines()
    assert signature[0] == "Acme Support"
    assert signature[1].startswith("Case 00001000 (")
    assert text.count("Acme Support") == 1 and html.count("Acme Support") == 1
    assert "Acme Support<br>" in html

    # Bob answers his notification by mail: his name, then the team's.
    deliver(app, "ann@customer.org", token_of(ack), "Still burning.", "<burn@customer.org>")
    notification = sink.expect(3, to=OWNER)[-1]  # the alert, the answer's copy, Ann's comment
    deliver(app, f"Bob Baker <{OWNER}>", token_of(notification), "Unplug it, please.",
            "<bob@example.com>")
    [bobs] = [m for m in sink.expect(3, to="ann@customer.org") if "Unplug" in m.text]
    text, html = parts(bobs.message)
    assert text.split("\n-- \n")[1].splitlines()[:2] == ["Bob Baker", "Acme Support"]
    assert "Bob Baker<br>\nAcme Support<br>" in html


def test_a_customers_markup_arrives_as_text_with_its_lines(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path
) -> None:
    """A comment holding <script> and HTML tags reaches the owner's HTML part escaped
    (autoescaping is on for .html templates), with its line breaks and paragraphs
    kept; the text part carries the comment as written."""
    app = make_app(mailbox=MAILBOX)
    new_case(app, "<xss@customer.org>")
    cli(tmp_path, "agents", "add", OWNER)
    cli(tmp_path, "cases", "update", "1000", "--owner", OWNER)
    app.sender.drain()
    [ack] = sink.expect(1, to="ann@customer.org")
    body = ("<script>alert('owned')</script>\nSecond line & <b>bold</b>\n\n"
            "New paragraph:\n    indented")
    deliver(app, "ann@customer.org", token_of(ack), body, "<xss2@customer.org>")
    [note] = sink.expect(1, to=OWNER, subject_starts="Re:")  # (after his alert)
    text, html = parts(note.message)
    assert "<script>alert('owned')</script>\nSecond line & <b>bold</b>" in text
    assert "<script" not in html and "<b>bold" not in html
    assert ("<p>&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;<br>\n"
            "Second line &amp; &lt;b&gt;bold&lt;/b&gt;</p>\n"
            "<p>New paragraph:<br>\n\u00a0\u00a0\u00a0\u00a0indented</p>") in html


def test_an_operators_text_only_set_sends_text_only(make_app: Callable[..., App], sink: Sink,
                                                    tmp_path: Path) -> None:
    """An operator's agent_reply with a subject and a text but no HTML goes out as one
    text/plain part, theirs (no HTML of ours beside it); the sets they left alone keep
    both parts."""
    own = tmp_path / "templates"
    own.mkdir()
    (own / "agent_reply.subject.j2").write_text("Re: {{ case.subject }}\n")
    (own / "agent_reply.txt.j2").write_text("{{ comment.body }}\n-- \nThe Acme desk\n")
    app = make_app(mailbox=MAILBOX, templates={"dir": str(own)})
    new_case(app, "<own@customer.org>")
    cli(tmp_path, "cases", "reply", "1000", "--body", "Fixed.")
    app.sender.drain()
    ack, answer = sink.expect(2, to="ann@customer.org")
    parts(ack.message)
    assert answer.message.get_content_type() == "text/plain"
    assert not answer.message.is_multipart()
    assert _content(answer.message) == "Fixed.\n-- \nThe Acme desk\n"
