"""Cases opened by hand, clones, and parent and child cases, through the command line on
both engines: what each command stores, what it mails, and what it refuses."""

from __future__ import annotations

import json
from email.utils import parseaddr
from pathlib import Path

import pytest
from sqlalchemy import select

from mailcase.app import App
from mailcase.cli import main
from mailcase.store.models import Case, Collaborator, Comment, Event
from tests.support.mailsink import Sink
from tests.support.servers import mail

AGENT = "eve@example.com"


def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: object) -> tuple[int, str,
                                                                                     str]:
    """Run ``mailcase -c CONFIG ARGS`` on the test's app; exit code, stdout, stderr."""
    capsys.readouterr()
    code = main(["-c", str(tmp_path / "mailcase.toml"), *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: object,
            code: int = 1) -> str:
    """The one line a refused command prints on stderr (exit 1, or 2 for a mistake in
    the arguments; no traceback)."""
    got, _, err = cli(capsys, tmp_path, *args)
    assert got == code, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def shown(capsys: pytest.CaptureFixture[str], tmp_path: Path, number: int) -> dict[str, object]:
    code, out, err = cli(capsys, tmp_path, "cases", "show", number, "--json")
    assert code == 0, err
    found: dict[str, object] = json.loads(out)
    return found


def new_case(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: object,
             email: str = "ann@customer.org", subject: str = "Printer on fire") -> str:
    code, out, err = cli(capsys, tmp_path, "cases", "new", "--email", email, "--subject",
                         subject, "--as", AGENT, *args)
    assert code == 0, err
    return out


def stored(app: App, number: int) -> Case:
    with app.sessions() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        _ = case.comments, case.collaborators, case.contact, case.parent
        return case


def kinds(app: App, number: int) -> list[tuple[str, str | None, dict[str, object]]]:
    with app.sessions() as session:
        rows = session.execute(select(Event.kind, Event.actor, Event.detail).join(
            Case, Case.id == Event.case_id).where(Case.number == number).order_by(Event.id))
        return [(r.kind, r.actor, r.detail) for r in rows]


# --- cases opened by hand ---------------------------------------------------------------


def test_new_case_without_notify_mails_nobody(app: App, sink: Sink, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`cases new` stores the case with its contact, origin, priority and description,
    names the agent as its opener, and sends no mail unless asked."""
    out = new_case(capsys, tmp_path, "--body", "Called: the printer smokes.", "--priority",
                   "high")
    assert out.strip() == "case 00001000 opened; 0 mail(s) queued"
    case = stored(app, 1000)
    assert (case.subject, case.description) == ("Printer on fire", "Called: the printer smokes.")
    assert (case.origin, case.priority, case.status) == ("Phone", "High", "New")
    assert case.contact is not None and case.contact.email == "ann@customer.org"
    assert case.supplied_email == "ann@customer.org"
    assert (case.is_closed, case.is_closed_on_create) == (False, False)
    assert kinds(app, 1000)[0][:2] == ("created", AGENT)
    app.processor.drain()
    app.sender.drain()
    assert sink.messages == []


def test_new_case_with_notify_sends_the_acknowledgement_to_reply_into(
    app: App, sink: Sink, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """--notify-contact mails the contact the acknowledgement with their own token; their
    reply through it is a comment on that case, not a new case."""
    out = new_case(capsys, tmp_path, "--origin", "Web", "--notify-contact")
    assert out.strip() == "case 00001000 opened; 1 mail(s) queued"
    app.sender.drain()
    [ack] = sink.expect(1, to="ann@customer.org")
    assert ack["Subject"] == "[Case #00001000] Printer on fire"
    assert "logged your request as case 00001000" in " ".join(ack.text.split())
    token = parseaddr(ack["Reply-To"] or "")[1]
    assert token.startswith("support+1000-c")
    raw = mail(to=token, subject="Re: Printer on fire", body="It smokes more now.\n",
               message_id="<more@customer.org>")
    app.intake.accept(raw.as_bytes(), mail_from="ann@customer.org", rcpt_to=[token],
                      source="test")
    app.processor.drain()
    case = stored(app, 1000)
    assert [c.body for c in case.comments] == ["It smokes more now."]
    assert case.origin == "Web"
    with app.sessions() as session:
        assert session.scalars(select(Case.number)).all() == [1000]


def test_new_case_closed_at_once(app: App, sink: Sink, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """--close closes the case with its resolution and sets is_closed_on_create; told,
    the contact gets the resolution (not an acknowledgement promising an answer)."""
    out = new_case(capsys, tmp_path, "--close", "--resolution", "Reset the toner.",
                   "--notify-contact")
    assert out.strip() == "case 00001000 opened and closed; 1 mail(s) queued"
    case = shown(capsys, tmp_path, 1000)
    assert (case["is_closed"], case["is_closed_on_create"]) == (True, True)
    assert case["resolution"] == "Reset the toner."
    app.sender.drain()
    [told] = sink.expect(1, to="ann@customer.org")
    assert (told["Subject"] or "").startswith("Closed:")
    assert "Reset the toner." in told.text


@pytest.mark.parametrize(
    ("args", "says", "code"),
    [
        (["--close"], "--close needs --resolution", 2),
        (["--resolution", "x"], "--resolution goes with --close", 2),
        (["--priority", "urgent"], "unknown priority 'urgent'", 2),
        (["--parent", "4711"], "there is no case 00004711", 1),
    ],
    ids=["close-without-resolution", "resolution-without-close", "bad-priority",
         "unknown-parent"],
)
def test_new_case_refusals_store_nothing(app: App, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str],
                                         args: list[str], says: str, code: int) -> None:
    """A refused `cases new` says why in one line and leaves no case (nor a used number)."""
    line = refused(capsys, tmp_path, "cases", "new", "--email", "ann@customer.org",
                   "--subject", "Printer", *args, code=code)
    assert says in line
    new_case(capsys, tmp_path)
    with app.sessions() as session:
        assert session.scalars(select(Case.number)).all() == [1000]


def test_new_case_refuses_our_own_address_as_contact(app: App, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The mailbox's own address (any plus-form) is never a contact."""
    line = refused(capsys, tmp_path, "cases", "new", "--email", "Support+x@Example.com",
                   "--subject", "Loop")
    assert "support+x@example.com is one of mailcase's own addresses" in line


# --- parent and child -------------------------------------------------------------------


def test_children_are_listed_and_parent_changes_recorded(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """`cases new --parent` and `cases update --parent` link cases; the parent's show
    (JSON and text) lists its children; `--parent none` clears; the feed records it."""
    new_case(capsys, tmp_path, subject="Office printers")
    new_case(capsys, tmp_path, "--parent", "1000", subject="Printer 1")
    new_case(capsys, tmp_path, subject="Printer 2")
    assert cli(capsys, tmp_path, "cases", "update", "1002", "--parent", "00001000",
               "--as", AGENT)[0] == 0
    parent = shown(capsys, tmp_path, 1000)
    assert parent["children"] == ["00001001", "00001002"]
    assert shown(capsys, tmp_path, 1001)["parent"] == "00001000"
    text = cli(capsys, tmp_path, "cases", "show", "1000")[1]
    assert "Children: 00001001, 00001002" in text
    assert ("parent", AGENT, {"old": None, "new": "00001000"}) in kinds(app, 1002)
    assert kinds(app, 1001)[0][2] == {"origin": "Phone", "parent": "00001000"}
    assert cli(capsys, tmp_path, "cases", "update", "1002", "--parent", "none",
               "--as", AGENT)[0] == 0
    assert shown(capsys, tmp_path, 1000)["children"] == ["00001001"]
    assert kinds(app, 1002)[-1] == ("parent", AGENT, {"old": "00001000", "new": None})
    events = shown(capsys, tmp_path, 1002)["events"]
    assert isinstance(events, list)
    assert events[-1]["summary"] == "parent 00001000 → none"


def test_a_case_cannot_become_its_own_ancestor(app: App, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Making a case the child of its own descendant, or of itself, is refused with one
    line, and nothing changes."""
    new_case(capsys, tmp_path)
    new_case(capsys, tmp_path, "--parent", "1000")
    new_case(capsys, tmp_path, "--parent", "1001")
    line = refused(capsys, tmp_path, "cases", "update", "1000", "--parent", "1002")
    assert line == ("mailcase: case 00001002 cannot be the parent of case 00001000: it "
                    "descends from case 00001000, and a case cannot be its own ancestor")
    line = refused(capsys, tmp_path, "cases", "update", "1001", "--parent", "1001")
    assert "a case cannot be its own parent" in line
    assert stored(app, 1000).parent_id is None
    assert stored(app, 1001).parent is not None and stored(app, 1001).parent.number == 1000
    assert [k for k, _, _ in kinds(app, 1000)] == ["created"]


# --- clone ----------------------------------------------------------------------------------


def test_clone_copies_contact_fields_and_collaborators_not_comments(
    app: App, sink: Sink, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """`cases clone` opens a new case with the contact, priority, origin, type, reason,
    mailbox, account and parent of the original and its collaborators, without its
    comments; each case's feed names the other; nobody is mailed."""
    new_case(capsys, tmp_path, subject="Office printers")
    new_case(capsys, tmp_path, "--parent", "1000", "--priority", "Low", "--origin", "Web",
             "--body", "Toner streaks.")
    for person in ("bob@customer.org", "carol@customer.org"):
        assert cli(capsys, tmp_path, "collaborators", "add", "1001", person)[0] == 0
    assert cli(capsys, tmp_path, "cases", "note", "1001", "--body", "Old model.")[0] == 0
    with app.sessions.begin() as session:
        original = session.scalars(select(Case).where(Case.number == 1001)).one()
        original.type, original.reason = "Problem", "Equipment Design"
    app.sender.drain()
    sent_before = len(sink.messages)

    code, out, err = cli(capsys, tmp_path, "cases", "clone", "1001", "--as", AGENT)
    assert (code, out.strip()) == (0, "case 00001002 cloned from 00001001"), err
    clone, original = stored(app, 1002), stored(app, 1001)
    copied = ("subject", "description", "priority", "origin", "type", "reason", "mailbox",
              "account_id", "parent_id", "contact_id", "supplied_email")
    assert [getattr(clone, f) for f in copied] == [getattr(original, f) for f in copied]
    assert (clone.priority, clone.type, clone.parent.number) == ("Low", "Problem", 1000)
    assert [c.email for c in clone.collaborators] == ["bob@customer.org",
                                                      "carol@customer.org"]
    assert clone.comments == [] and len(original.comments) == 1
    assert (clone.status, clone.is_closed) == ("New", False)
    assert ("cloned from", AGENT, {"number": "00001001"}) in kinds(app, 1002)
    assert kinds(app, 1001)[-1] == ("cloned to", AGENT, {"number": "00001002"})
    app.sender.drain()
    assert len(sink.messages) == sent_before

    assert cli(capsys, tmp_path, "cases", "clone", "1001", "--subject", "Second printer")[0] == 0
    assert stored(app, 1003).subject == "Second printer"
    with app.sessions() as session:
        assert session.scalars(select(Collaborator.email).join(Case).where(
            Case.number == 1003)).all() == ["bob@customer.org", "carol@customer.org"]
        assert session.scalars(select(Comment.id).join(Case).where(
            Case.number == 1003)).all() == []
