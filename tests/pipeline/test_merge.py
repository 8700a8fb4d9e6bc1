"""Merging cases on both engines: what moves to the case that stays, every later reply to
the merged case (token, In-Reply-To, References, subject tag) landing on it, both contacts
told once, and ``/merge`` by mail for agents only."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from mailcase.app import App
from mailcase.cli import main
from mailcase.store.models import Case, Collaborator, Message
from tests.support.delivery import deliver_now, token_of
from tests.support.mailsink import Received, Sink
from tests.support.servers import mail

SUPPORT = "support@example.com"
ANN, CARL, OWNER = "ann@customer.org", "carl@other.org", "bob@example.com"


def deliver(app: App, sender: str, to: str, body: str, message_id: str,
            subject: str = "Re: Printer on fire", files: int = 0, **headers: str) -> str:
    """Accept and process one mail, send what it caused; the outcome noted on it."""
    raw = mail(sender=sender, to=to, subject=subject, message_id=message_id, body=body,
               **headers)
    for index in range(files):
        raw.add_attachment(b"log line\n" * (index + 1), maintype="text", subtype="plain",
                           filename=f"log{index}.txt")
    return deliver_now(app, raw, mail_from=sender, rcpt=to).outcome or ""


def cli(tmp_path: Path, *args: object) -> int:
    return main(["-c", str(tmp_path / "mailcase.toml"), *map(str, args)])


def two_cases(make_app: Callable[..., App], sink: Sink) -> App:
    """Case 00001000 from Ann (a reply with a file, a colleague copied in) and case
    00001001 from Carl, each acknowledged."""
    app = make_app(mailbox={"address": SUPPORT, "collaborators": "anyone"})
    deliver(app, ANN, SUPPORT, "My printer is on fire.", "<ann1@customer.org>",
            subject="Printer on fire", files=1, Cc="Dora <dora@customer.org>")
    deliver(app, CARL, SUPPORT, "Our printer smokes.", "<carl1@other.org>",
            subject="Printer smokes")
    ann_ack = sink.expect(1, to=ANN)[0]
    deliver(app, ANN, token_of(ann_ack), "Here is the log.", "<ann2@customer.org>", files=1)
    sink.expect(1, to=CARL)
    return app


def numbers(app: App) -> list[int]:
    with app.sessions() as session:
        return list(session.scalars(select(Case.number).order_by(Case.number)))


def show(app: App, tmp_path: Path, number: int, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert cli(tmp_path, "cases", "show", number, "--json") == 0
    found: dict = json.loads(capsys.readouterr().out)
    return found


def mails_to(sink: Sink, address: str) -> list[Received]:
    return [m for m in sink.messages if address in m.rcpt_tos]


def test_merge_moves_the_story_and_tells_both_contacts_once(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`cases merge` closes the source as merged into the target, which gets its opening
    text (with the first mail's file), its comments with their files, its contact and
    collaborators; each contact gets one mail about it, and nothing else."""
    app = two_cases(make_app, sink)
    assert cli(tmp_path, "cases", "note", "1000", "--body", "Old contract.") == 0
    app.sender.drain()
    before = {a: len(mails_to(sink, a)) for a in (ANN, CARL, "dora@customer.org")}
    capsys.readouterr()
    assert cli(tmp_path, "cases", "merge", "1000", "--into", "1001", "--as", OWNER) == 0
    assert capsys.readouterr().out.strip() == (
        "case 00001000 merged into 00001001: 2 comment(s) and 2 file(s) moved, "
        "2 collaborator(s) added; 2 mail(s) queued")
    app.sender.drain()

    source, target = show(app, tmp_path, 1000, capsys), show(app, tmp_path, 1001, capsys)
    assert (source["is_closed"], source["merged_into"]) == (True, "00001001")
    assert source["resolution"] == "merged into case 00001001"
    assert source["comments"] == [] and target["merged_into"] is None
    bodies = [(c["author"], c["body"].splitlines()[-1], c["public"])
              for c in target["comments"]]
    assert bodies == [(ANN, "My printer is on fire.", True), (ANN, "Here is the log.", True),
                      ("support@example.com", "Old contract.", False)]
    assert target["comments"][0]["body"].startswith(
        "Case 00001000 (Printer on fire), merged into this case, was opened with:")
    assert [[f["filename"] for f in c["attachments"]] for c in target["comments"]] == [
        ["log0.txt"], ["log0.txt"], []]
    assert [c["email"] for c in target["collaborators"]] == [ANN, "dora@customer.org"]
    assert source["events"][-1]["summary"] == "merged into case 00001001"
    assert target["events"][-1]["summary"] == (
        "case 00001000 merged in: 2 comment(s) and 2 file(s) moved here; collaborators "
        "added: ann@customer.org, dora@customer.org")
    assert target["events"][-1]["actor"] == OWNER

    for address in (ANN, CARL):
        [told] = mails_to(sink, address)[before[address]:]
        assert told["Subject"] == ("Merged: case 00001000 is now part of "
                                   "[Case #00001001] Printer smokes")
        assert token_of(told).startswith("support+1001-c")
        assert "case 00001000 is closed" in " ".join(told.text.split())
        html = told.message.get_body(preferencelist=("html",))
        assert html is not None and "<strong>00001000</strong>" in html.get_content()
    assert len(mails_to(sink, "dora@customer.org")) == before["dora@customer.org"]


def test_merge_keeps_the_limit_of_twenty_collaborators(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The source's people join the target while there is room (its contact first); who
    the limit of twenty left out is said in the output and kept in the history."""
    app = two_cases(make_app, sink)
    with app.sessions.begin() as session:
        target = session.scalars(select(Case).where(Case.number == 1001)).one()
        target.collaborators.extend(
            Collaborator(email=f"c{n}@other.org", name="", created_at=target.created_at)
            for n in range(19))
    capsys.readouterr()
    assert cli(tmp_path, "cases", "merge", "1000", "--into", "1001") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == ("not added, the case has the most collaborators it can: "
                       "dora@customer.org")
    target_shown = show(app, tmp_path, 1001, capsys)
    emails = [c["email"] for c in target_shown["collaborators"]]
    assert len(emails) == 20 and emails[-1] == ANN and "dora@customer.org" not in emails
    assert target_shown["events"][-1]["detail"]["left_out"] == ["dora@customer.org"]


@pytest.mark.parametrize("path", ["token", "in-reply-to", "references", "subject tag"])
def test_replies_to_a_merged_case_land_on_its_target(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path, path: str,
) -> None:
    """A reply meant for the merged case — through its token, answering one of its
    Message-IDs (In-Reply-To or References alone), or carrying its subject tag — is a
    comment on the case it was merged into; no case is opened or reopened."""
    app = two_cases(make_app, sink)
    ann_ack = sink.expect(1, to=ANN)[0]
    assert cli(tmp_path, "cases", "merge", "1000", "--into", "1001") == 0
    headers: dict[str, str] = {}
    to, subject = SUPPORT, "Re: Printer on fire"
    if path == "token":
        to = token_of(ann_ack)
    elif path == "in-reply-to":
        headers["In_Reply_To"] = ann_ack["Message-ID"] or ""
    elif path == "references":
        headers["References"] = "<unknown@elsewhere.org> <ann1@customer.org>"
    else:
        subject = "[Case #00001000] still burning"
    outcome = deliver(app, ANN, to, "Still burning.", "<ann3@customer.org>", subject=subject,
                      **headers)
    assert "case 00001000 is merged: the mail goes to case 00001001" in outcome
    assert numbers(app) == [1000, 1001]
    with app.sessions() as session:
        source, target = (session.scalars(select(Case).where(Case.number == n)).one()
                          for n in (1000, 1001))
        assert [c.body for c in target.comments][-1] == "Still burning."
        assert source.comments == [] and source.is_closed
        reply = session.scalars(select(Message).where(
            Message.message_id == "<ann3@customer.org>")).one()
        assert reply.case_id == target.id
    # Carl, the target's contact, hears of Ann's words as of any comment.
    assert "Still burning." in mails_to(sink, CARL)[-1].text


def test_a_chain_of_merges_is_followed_to_its_end(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path,
) -> None:
    """Merged into a case that is then merged on, the first case's mail lands on the last."""
    app = two_cases(make_app, sink)
    ann_ack = sink.expect(1, to=ANN)[0]
    deliver(app, "erin@third.org", SUPPORT, "Printer three.", "<erin@third.org>",
            subject="Third printer")
    assert cli(tmp_path, "cases", "merge", "1000", "--into", "1001") == 0
    assert cli(tmp_path, "cases", "merge", "1001", "--into", "1002") == 0
    deliver(app, ANN, token_of(ann_ack), "Any news?", "<ann4@customer.org>")
    with app.sessions() as session:
        last = session.scalars(select(Case).where(Case.number == 1002)).one()
        assert [c.body for c in last.comments][-1] == "Any news?"
        assert [c.email for c in last.collaborators] == [CARL, ANN, "dora@customer.org"]
    assert numbers(app) == [1000, 1001, 1002]


def test_merges_that_cannot_be_are_refused(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Into itself, back into a case merged into it (a loop), into a case closed as
    merged, or a case already merged: one line each, nothing changes, nobody is mailed."""
    app = two_cases(make_app, sink)
    deliver(app, "erin@third.org", SUPPORT, "Printer three.", "<erin@third.org>",
            subject="Third printer")
    capsys.readouterr()
    assert cli(tmp_path, "cases", "merge", "1000", "--into", "1000") == 1
    assert capsys.readouterr().err.strip() == (
        "mailcase: case 00001000 cannot be merged into itself")
    assert cli(tmp_path, "cases", "merge", "1000", "--into", "1001") == 0
    app.sender.drain()
    sent = len(sink.messages)
    for source, target, says in (
        (1001, 1000, "case 00001000 is merged into case 00001001: merging back would make "
                     "a loop"),
        (1002, 1000, "case 00001000 is closed as merged into case 00001001; merge into "
                     "that one instead"),
        (1000, 1002, "case 00001000 is already merged into case 00001001"),
    ):
        capsys.readouterr()
        assert cli(tmp_path, "cases", "merge", source, "--into", target) == 1
        err = capsys.readouterr().err
        assert err.strip() == f"mailcase: {says}", err
    for number in (1001, 1002):
        assert show(app, tmp_path, number, capsys)["merged_into"] is None
    app.sender.drain()
    assert len(sink.messages) == sent


def test_merging_two_cases_of_one_contact_mails_them_once(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path,
) -> None:
    """When both cases are the same person's, that person gets one mail about the merge."""
    app = make_app(mailbox={"address": SUPPORT})
    deliver(app, ANN, SUPPORT, "First.", "<a1@customer.org>", subject="Printer on fire")
    deliver(app, ANN, SUPPORT, "Second.", "<a2@customer.org>", subject="Printer, again")
    assert cli(tmp_path, "cases", "merge", "1001", "--into", "1000") == 0
    app.sender.drain()
    [told] = sink.expect(1, to=ANN, subject_starts="Merged:")
    assert (told["Subject"] or "").startswith("Merged: case 00001001 is now part of "
                                              "[Case #00001000]")


# --- /merge by mail -----------------------------------------------------------------------


def owned(make_app: Callable[..., App], sink: Sink, tmp_path: Path) -> tuple[App, str]:
    """The two cases, 00001000 owned by agent Bob, who holds a notification of Ann's reply
    with his own token; that token."""
    app = two_cases(make_app, sink)
    assert cli(tmp_path, "agents", "add", OWNER) == 0
    assert cli(tmp_path, "cases", "update", "1000", "--owner", OWNER) == 0
    deliver(app, ANN, token_of(sink.expect(1, to=ANN)[0]), "Any news?", "<ann5@customer.org>")
    return app, token_of(sink.expect(2, to=OWNER)[-1])  # (after his alert)


def test_an_agent_merges_by_mail(make_app: Callable[..., App], sink: Sink,
                                 tmp_path: Path) -> None:
    """`/merge 1001` in the owner's reply through his own token merges the case, tells
    both contacts once, and adds no comment of its own."""
    app, bob = owned(make_app, sink, tmp_path)
    before = {a: len(mails_to(sink, a)) for a in (ANN, CARL)}
    deliver(app, OWNER, bob, "/merge 00001001", "<bob-merge@example.com>")
    with app.sessions() as session:
        source, target = (session.scalars(select(Case).where(Case.number == n)).one()
                          for n in (1000, 1001))
        assert source.merged_into_id == target.id and source.is_closed
        bodies = sorted(c.body.splitlines()[-1] for c in target.comments)
        assert bodies == ["Any news?", "Here is the log.", "My printer is on fire."]
    for address in (ANN, CARL):
        [told] = mails_to(sink, address)[before[address]:]
        assert (told["Subject"] or "").startswith("Merged: case 00001000 is now part of "
                                                  "[Case #00001001]")


def test_the_agents_words_beside_merge_go_to_the_target(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path,
) -> None:
    """Text written with `/merge` is a comment on the case merged into, like every later
    reply, not on the closed one."""
    app, bob = owned(make_app, sink, tmp_path)
    deliver(app, OWNER, bob, "Same printer as Carl's.\n/merge 1001", "<bob-words@example.com>")
    with app.sessions() as session:
        target = session.scalars(select(Case).where(Case.number == 1001)).one()
        assert (target.comments[-1].body, target.comments[-1].author_email) == (
            "Same printer as Carl's.", OWNER)


@pytest.mark.parametrize("how", ["contact's token", "forged From, thread",
                                 "forged From, contact's token"])
def test_merge_by_mail_is_for_proven_agents_only(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path, how: str,
) -> None:
    """The contact's `/merge` (through her own token) is refused and explained to her; a
    mail merely claiming the agent's From merges nothing and mails nobody about it."""
    app, _bob = owned(make_app, sink, tmp_path)
    ann = token_of(sink.expect(1, to=ANN)[0])
    sent = len(sink.messages)
    if how == "contact's token":
        outcome = deliver(app, ANN, ann, "/merge 1001", "<ann-merge@customer.org>")
        assert "/merge 1001: only an agent" in outcome
        [notice] = sink.expect(1, to=ANN, subject_starts="Not done:")
        assert "only an agent" in notice.text
    elif how == "forged From, thread":
        deliver(app, OWNER, SUPPORT, "/merge 1001", "<forged1@example.com>",
                In_Reply_To="<ann1@customer.org>")
    else:
        outcome = deliver(app, OWNER, ann, "/merge 1001", "<forged2@example.com>")
        assert "/merge 1001: commands by mail need" in outcome
    with app.sessions() as session:
        merged = session.scalars(select(Case.merged_into_id)).all()
    assert merged and set(merged) == {None}
    assert not [m for m in sink.messages[sent:] if "Merged:" in (m["Subject"] or "")]
