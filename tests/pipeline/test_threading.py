"""Which case a mail joins: tokens that cannot be forged, the subject tag only for people
already on the case, one case for one mail sent to two addresses, and CC'd colleagues
made collaborators as the mailbox's policy allows."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from mailcase.app import App
from mailcase.cli import main
from mailcase.identity.tokens import MAC_CHARS, Participant, TokenSigner
from mailcase.store.models import Case, Collaborator, InboundMail
from tests.support.servers import mail

SUPPORT = "support@example.com"


def accept(app: App, message: object, rcpt: list[str] | None = None,
           mail_from: str = "ann@customer.org") -> int:
    raw = message.as_bytes()  # type: ignore[attr-defined]
    return app.intake.accept(raw, mail_from=mail_from, rcpt_to=rcpt or [SUPPORT],
                             source="test").id


def cases(app: App) -> list[Case]:
    with app.sessions() as session:
        found = session.scalars(select(Case).order_by(Case.number)).all()
        for case in found:
            _ = case.comments, case.collaborators
        return list(found)


def first_case(app: App) -> None:
    accept(app, mail(message_id="<first@customer.org>",
                     Cc="Bob Colleague <bob@customer.org>"))
    app.processor.drain()


def signer_of(app: App) -> TokenSigner:
    return app.services.signer


def token_address(token: str) -> str:
    return f"support+{token}@example.com"


def flip(token: str) -> str:
    """The token with one character of its MAC changed."""
    head, _, mac = token.rpartition("-")
    changed = ("b" if mac[0] == "a" else "a") + mac[1:]
    return f"{head}-{changed}"


@pytest.mark.parametrize("forge", ["random", "flipped", "other-case", "rotated-out",
                                   "truncated"])
def test_forged_tokens_never_attach(app: App, forge: str) -> None:
    """Random tokens, a changed character, a valid token moved to another case, and a
    token of a secret that was rotated out all open a new case instead of attaching."""
    first_case(app)
    accept(app, mail(message_id="<second@customer.org>", subject="Second"))
    app.processor.drain()
    genuine = signer_of(app).make(1000, Participant("c", 1))
    forged = {
        "random": f"1000-c1-{secrets.token_hex(10)[:MAC_CHARS]}",
        "flipped": flip(genuine),
        "other-case": genuine.replace("1000-", "1001-", 1),
        "rotated-out": TokenSigner([b"an old secret, rotated out"]).make(1000,
                                                                          Participant("c", 1)),
        "truncated": genuine[:-4],
    }[forge]
    address = token_address(forged)
    accept(app, mail(to=address, sender="mallory@evil.org", message_id="<forged@evil.org>",
                     subject="Re: [Case #00001000] Printer on fire"), rcpt=[address],
           mail_from="mallory@evil.org")
    app.processor.drain()
    found = cases(app)
    assert [c.number for c in found] == [1000, 1001, 1002]
    assert found[2].supplied_email == "mallory@evil.org"
    assert [len(c.comments) for c in found] == [0, 0, 0]


def test_genuine_token_attaches_and_old_secret_still_verifies(make_app: Callable[..., App],
                                                              tmp_path: object) -> None:
    """After a rotation (new secret first, old one kept), a token signed with the old
    secret still threads the reply."""
    app = make_app()
    first_case(app)
    old_token = signer_of(app).make(1000, Participant("c", 1))
    secret_file = app.settings.tokens.secret_file
    secret_file.write_text("f" * 64 + "\n" + secret_file.read_text())
    rotated = make_app()
    assert rotated.services.signer.make(1000, Participant("c", 1)) != old_token
    address = token_address(old_token)
    accept(rotated, mail(to=address, message_id="<rotated@customer.org>", subject="Re: x"),
           rcpt=[address])
    rotated.processor.drain()
    assert [len(c.comments) for c in cases(rotated)] == [1]


def test_subject_tag_threads_only_for_participants(app: App) -> None:
    """A tag in the subject joins the case for its contact and its collaborators; from a
    stranger the same subject opens a new case."""
    first_case(app)
    tagged = "Re: [Case #00001000] Printer on fire"
    accept(app, mail(message_id="<tag-ann@customer.org>", subject=tagged))
    accept(app, mail(message_id="<tag-bob@customer.org>", subject=tagged,
                     sender="Bob Colleague <bob@customer.org>"), mail_from="bob@customer.org")
    accept(app, mail(message_id="<tag-eve@evil.org>", subject=tagged, sender="eve@evil.org"),
           mail_from="eve@evil.org")
    app.processor.drain()
    found = cases(app)
    assert [c.number for c in found] == [1000, 1001]
    assert [c.author_email for c in found[0].comments] == ["ann@customer.org",
                                                           "bob@customer.org"]
    assert found[1].supplied_email == "eve@evil.org"


def test_one_mail_to_two_support_addresses_opens_one_case(make_app: Callable[..., App]) -> None:
    """The same mail delivered once per support address (two SMTP transactions) is one
    case."""
    app = make_app(mailbox={"address": SUPPORT})
    message = mail(message_id="<both@customer.org>", to="support@example.com, help@example.com")
    accept(app, message, rcpt=[SUPPORT])
    accept(app, message, rcpt=["help@example.com"])
    app.processor.drain()
    assert len(cases(app)) == 1


def test_references_separated_by_commas_thread(app: App) -> None:
    """References written with commas (as some clients do) still find the case."""
    first_case(app)
    accept(app, mail(message_id="<comma@customer.org>", subject="no tag here",
                     References="<unknown@x.org>,<first@customer.org>,<other@y.org>"))
    app.processor.drain()
    assert [len(c.comments) for c in cases(app)] == [1]


@pytest.mark.parametrize(("policy", "domains", "expected"), [
    ("same_domain", [], ["bob@customer.org"]),
    ("domains", ["partner.net"], ["carol@partner.net"]),
    ("anyone", [], ["bob@customer.org", "carol@partner.net", "dan@gmail.example"]),
    ("none", [], []),
])
def test_copied_people_become_collaborators_by_policy(
    make_app: Callable[..., App], policy: str, domains: list[str], expected: list[str]
) -> None:
    """Everyone else addressed on a new mail joins its case as the mailbox's policy allows;
    our own addresses and robots never do, and each refusal is noted."""
    app = make_app(mailbox={"address": SUPPORT, "collaborators": policy,
                            "collaborator_domains": domains})
    inbound = accept(app, mail(
        message_id="<cc@customer.org>", to="support@example.com, Bob <bob@customer.org>",
        Cc="carol@partner.net, dan@gmail.example, noreply@customer.org, "
           "support+x@example.com"))
    app.processor.drain()
    [case] = cases(app)
    assert [c.email for c in case.collaborators] == expected
    with app.sessions() as session:
        outcome = session.get(InboundMail, inbound).outcome or ""  # type: ignore[union-attr]
    assert "noreply@customer.org not made a collaborator: it is a robot address" in outcome
    assert "support+x@example.com" not in outcome


def test_twenty_first_collaborator_is_refused(make_app: Callable[..., App]) -> None:
    """A case keeps at most twenty collaborators; the rest are refused with the reason."""
    app = make_app(mailbox={"address": SUPPORT, "collaborators": "anyone"})
    copied = ", ".join(f"person{n}@customer.org" for n in range(25))
    inbound = accept(app, mail(message_id="<many@customer.org>", Cc=copied))
    app.processor.drain()
    with app.sessions() as session:
        assert len(session.scalars(select(Collaborator)).all()) == 20
        outcome = session.get(InboundMail, inbound).outcome or ""  # type: ignore[union-attr]
    assert "already has 20 collaborators, the most a case can have; " \
           "person20@customer.org was not added" in outcome


def test_reply_from_someone_else_on_a_token_names_both(app: App) -> None:
    """A reply through Ann's token written by Bob is accepted as Bob's, and the note names
    whom the token was sent to."""
    first_case(app)
    address = token_address(signer_of(app).make(1000, Participant("c", 1)))
    inbound = accept(app, mail(to=address, sender="Bob <bob@customer.org>",
                               message_id="<fw@customer.org>", subject="Re: x"),
                     rcpt=[address], mail_from="bob@customer.org")
    app.processor.drain()
    [case] = cases(app)
    assert [c.author_email for c in case.comments] == ["bob@customer.org"]
    with app.sessions() as session:
        row = session.get(InboundMail, inbound)
        assert row is not None
        assert row.outcome is not None and row.outcome.startswith(
            "reply token was sent to ann@customer.org, reply came from bob@customer.org")


def test_collaborators_from_the_command_line(
    make_app: Callable[..., App], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`collaborators add|remove|list` keep the rules of mail: the mailbox's policy and
    at most twenty; refusals are one line."""
    app = make_app()
    first_case(app)
    config = str(tmp_path / "mailcase.toml")
    assert main(["-c", config, "collaborators", "add", "1000", "Carol@Customer.org",
                 "--name", "Carol"]) == 0
    capsys.readouterr()
    assert main(["-c", config, "collaborators", "add", "1000", "eve@evil.org"]) == 1
    assert capsys.readouterr().err == (
        "mailcase: eve@evil.org cannot collaborate on case 00001000: only addresses at "
        "customer.org may be added\n")
    for number in range(18):
        assert main(["-c", config, "collaborators", "add", "1000",
                     f"p{number}@customer.org"]) == 0
    capsys.readouterr()
    assert main(["-c", config, "collaborators", "add", "1000", "late@customer.org"]) == 1
    assert "already has 20 collaborators" in capsys.readouterr().err
    assert main(["-c", config, "collaborators", "remove", "1000", "bob@customer.org"]) == 0
    capsys.readouterr()
    assert main(["-c", config, "collaborators", "list", "1000", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 19
    assert listed[0] == {"email": "carol@customer.org", "name": "Carol", "added_by": None,
                         "created_at": listed[0]["created_at"]}
    assert "bob@customer.org" not in {c["email"] for c in listed}
