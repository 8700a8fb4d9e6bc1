"""Every new case ends with a named owner who hears about it: assignment rules in order,
the mailbox's owner, the default owner; queues in turn or least busy; alerts with the
agent's own token; and rules naming nobody are refused."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailcase import config
from mailcase.app import App
from mailcase.cases.book import CaseBook
from mailcase.cases.staff import Staff
from mailcase.cli import main
from mailcase.store.models import Case, Comment, Event, Queue
from tests.service.test_serve import run
from tests.support.mailsink import Sink
from tests.support.paths import ROOT
from tests.support.servers import mail

BOB, EVE, JOE, ANN_AGENT = ("bob@example.com", "eve@example.com", "joe@example.com",
                            "ann@example.com")
RULES = [
    {"name": "invoices", "subject_words": ["invoice"], "owner": "queue:Billing"},
    {"name": "vip", "senders": ["@bigcorp.example"], "owner": EVE},
    {"name": "pager", "header": "X-Alert", "header_value": "^sev[12]$", "owner": JOE},
    {"name": "refunds", "regex": r"refund(ed)?\b", "owner": "queue:Billing"},
]


def cli(tmp_path: Path, *args: str) -> int:
    return main(["-c", str(tmp_path / "mailcase.toml"), *args])


def staffed(make_app: Callable[..., App], tmp_path: Path, *, mode: str = "round-robin",
            **sections: Any) -> App:
    """An app whose store has agents Bob, Eve and Joe, and Billing (Bob, Eve)."""
    app = make_app(**sections)
    for agent in (BOB, EVE, JOE):
        assert cli(tmp_path, "agents", "add", agent) == 0
    assert cli(tmp_path, "queues", "add", "Billing", "--members", f"{BOB},{EVE}",
               "--mode", mode) == 0
    return app


def new_case(app: App, sender: str = "carl@customer.org", subject: str = "Help",
             body: str = "Please help.\n", **headers: str) -> Case:
    raw = mail(sender=sender, subject=subject, body=body, **headers).as_bytes()
    accepted = app.intake.accept(raw, mail_from=sender, rcpt_to=["support@example.com"],
                                 source="test")
    app.processor.drain()
    with app.sessions() as session:
        case = session.scalars(select(Case).join(Case.contact)
                               .order_by(Case.id.desc()).limit(1)).one()
        _ = case.owner_agent, case.owner_queue
        assert accepted.id
        return case


def owner_events(app: App, case: Case) -> list[dict[str, Any]]:
    with app.sessions() as session:
        return [e.detail for e in session.scalars(select(Event).where(
            Event.case_id == case.id, Event.kind == "owner").order_by(Event.id))]


def test_rules_in_order_then_mailbox_then_default(make_app: Callable[..., App],
                                                  tmp_path: Path) -> None:
    """The first matching rule wins; no match falls to the default owner; each
    assignment's event names the rule."""
    app = staffed(make_app, tmp_path, assignment_rule=RULES, cases={"default_owner": JOE})
    invoice = new_case(app, sender="ceo@bigcorp.example", subject="Invoice 42 is wrong")
    assert invoice.owner_queue is not None and invoice.owner_queue.name == "Billing"
    assert invoice.owner_agent is not None and invoice.owner_agent.email == BOB
    assert owner_events(app, invoice)[-1]["why"] == "rule invoices"
    vip = new_case(app, sender="ceo@bigcorp.example", subject="Printer")
    assert vip.owner_agent is not None and vip.owner_agent.email == EVE
    paged = new_case(app, subject="Disk full", X_Alert="sev2")
    assert paged.owner_agent is not None and paged.owner_agent.email == JOE
    assert owner_events(app, paged)[-1]["why"] == "rule pager"
    not_paged = new_case(app, subject="Disk nearly full", X_Alert="sev3")
    assert owner_events(app, not_paged)[-1]["why"] == "the default owner"
    refund = new_case(app, subject="Money", body="I want it REFUNDED now.\n")
    assert owner_events(app, refund)[-1]["why"] == "rule refunds"


def test_mailbox_defaults_and_its_owner(make_app: Callable[..., App], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A routing address gives its cases origin, priority, type, reason and an owner."""
    app = staffed(make_app, tmp_path, mailbox={
        "address": "support@example.com", "origin": "Web", "priority": "High",
        "owner": EVE, "type": "Problem", "reason": "Installation"})
    case = new_case(app)
    assert (case.origin, case.priority, case.type, case.reason) == (
        "Web", "High", "Problem", "Installation")
    assert case.owner_agent is not None and case.owner_agent.email == EVE
    capsys.readouterr()
    assert cli(tmp_path, "cases", "show", case.display_number, "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["owner"], shown["type"], shown["reason"]) == (EVE, "Problem", "Installation")
    assert "owner → eve@example.com, mailbox support@example.com" in [
        e["summary"] for e in shown["events"]]


def test_round_robin_spreads_cases_evenly_and_skips_inactive_agents(
        make_app: Callable[..., App], tmp_path: Path) -> None:
    """100 cases through a queue of four: 25 each; a deactivated member gets none."""
    app = staffed(make_app, tmp_path, cases={"default_owner": "queue:Billing"})
    assert cli(tmp_path, "agents", "add", ANN_AGENT) == 0
    assert cli(tmp_path, "queues", "members", "Billing", "--add", f"{JOE},{ANN_AGENT}") == 0
    counts = Counter(assign_many(app, 100))
    assert counts == {BOB: 25, EVE: 25, JOE: 25, ANN_AGENT: 25}
    assert cli(tmp_path, "agents", "deactivate", JOE) == 0
    counts = Counter(assign_many(app, 30))
    assert counts == {BOB: 10, EVE: 10, ANN_AGENT: 10}


def assign_many(app: App, count: int) -> list[str]:
    """Open ``count`` cases (no mail) and give each to the Billing queue."""
    owners = []
    for _ in range(count):
        with app.sessions.begin() as session:
            book = CaseBook(session, app.settings.cases, app.clock())
            case, _ = book.open(subject="x", description="", mailbox="support@example.com",
                                contact=None)
            [agent] = book.assign(case, "queue:Billing", None, why="test")
            owners.append(agent.email)
    return owners


def test_least_busy_picks_the_member_with_fewest_open_cases(
        make_app: Callable[..., App], tmp_path: Path) -> None:
    """Bob holds two open cases and Eve one: the next goes to Eve, then (tied, Bob
    first) to Bob; closed cases do not count."""
    app = staffed(make_app, tmp_path, mode="least-busy")
    cases = [new_case(app, subject=f"Case {n}") for n in range(3)]
    for case, owner in zip(cases, (BOB, BOB, EVE), strict=True):
        assert cli(tmp_path, "cases", "update", case.display_number, "--owner", owner) == 0
    assert assign_many(app, 2) == [EVE, BOB]
    assert cli(tmp_path, "cases", "close", cases[0].display_number, "--resolution", "x") == 0
    assert cli(tmp_path, "cases", "close", cases[1].display_number, "--resolution", "x") == 0
    assert assign_many(app, 1) == [BOB]  # Bob 1 open, Eve 2


def test_alerts_reach_the_owner_and_followers_once_with_their_own_token(
        make_app: Callable[..., App], sink: Sink, tmp_path: Path) -> None:
    """A new case alerts its owner and every follower, once each; the owner's reply to
    the alert answers the customer, and /internal makes a note."""
    app = staffed(make_app, tmp_path, cases={"default_owner": EVE})
    assert cli(tmp_path, "agents", "add", ANN_AGENT, "--follow-all") == 0
    assert cli(tmp_path, "agents", "add", EVE, "--follow-all") == 0  # owner and follower
    case = new_case(app, sender="carl@customer.org", subject="Printer on fire")
    app.sender.drain()
    [alert] = sink.expect(1, to=EVE)
    sink.expect(1, to=ANN_AGENT)
    sink.expect(0, to=BOB)
    assert (alert["Subject"] or "").startswith(f"[Case #{case.display_number}] For you")
    assert "Printer on fire" in alert.text and "/internal" in alert.text
    assert alert["Auto-Submitted"] == "auto-generated"
    token = parseaddr(alert["Reply-To"] or "")[1]
    sink.messages.clear()
    answer = mail(sender=EVE, to=token, subject=f"Re: {alert['Subject']}",
                  body="A technician comes tomorrow.\n")
    app.intake.accept(answer.as_bytes(), mail_from=EVE, rcpt_to=[token], source="test")
    app.processor.drain()
    app.sender.drain()
    [to_carl] = sink.expect(1, to="carl@customer.org")
    assert "A technician comes tomorrow." in to_carl.text
    note = mail(sender=EVE, to=token, subject=f"Re: {alert['Subject']}",
                body="/internal\nHe has the old contract.\n")
    app.intake.accept(note.as_bytes(), mail_from=EVE, rcpt_to=[token], source="test")
    app.processor.drain()
    app.sender.drain()
    sink.expect(1, to="carl@customer.org")  # nothing more to the customer
    with app.sessions() as session:
        comments = session.scalars(select(Comment).where(Comment.case_id == case.id)
                                   .order_by(Comment.id)).all()
        assert [(c.author_kind, c.public) for c in comments] == [
            ("agent", True), ("agent", False)]


def test_a_shared_queue_alerts_every_active_member_and_reassignment_alerts_anew(
        make_app: Callable[..., App], sink: Sink, tmp_path: Path) -> None:
    """A shared queue keeps the case and tells each active member; handing the case
    to an agent by hand tells that agent."""
    app = staffed(make_app, tmp_path, mode="shared", cases={"default_owner": "queue:Billing"})
    case = new_case(app)
    app.sender.drain()
    assert case.owner_agent is None and case.owner_queue is not None
    sink.expect(1, to=BOB)
    sink.expect(1, to=EVE)
    sink.messages.clear()
    assert cli(tmp_path, "cases", "update", case.display_number, "--owner", JOE) == 0
    app.sender.drain()
    [alert] = sink.expect(1, to=JOE)
    assert len(sink.messages) == 1
    assert "assigned it" in alert.text


def test_unread_for_the_owner(make_app: Callable[..., App], sink: Sink, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """A customer's reply marks the case unread for its owner; the owner reading it
    (cases show --as) or answering marks it read."""
    app = staffed(make_app, tmp_path, cases={"default_owner": BOB})
    case = new_case(app, sender="carl@customer.org")
    app.sender.drain()
    [ack] = sink.expect(1, to="carl@customer.org")
    token = parseaddr(ack["Reply-To"] or "")[1]

    def unread() -> bool:
        capsys.readouterr()
        assert cli(tmp_path, "cases", "show", case.display_number, "--json") == 0
        return bool(json.loads(capsys.readouterr().out)["has_unread_comments_for_owner"])

    reply = mail(sender="carl@customer.org", to=token, subject="Re: Help", body="More.\n")
    app.intake.accept(reply.as_bytes(), mail_from="carl@customer.org", rcpt_to=[token],
                      source="test")
    app.processor.drain()
    assert unread()
    assert cli(tmp_path, "cases", "show", case.display_number, "--as", EVE) == 0
    assert unread()  # someone else's reading changes nothing
    assert cli(tmp_path, "cases", "show", case.display_number, "--as", BOB) == 0
    assert not unread()
    app.intake.accept(mail(sender="carl@customer.org", to=token, subject="Re: Help",
                           body="Still there?\n").as_bytes(),
                      mail_from="carl@customer.org", rcpt_to=[token], source="test")
    app.processor.drain()
    assert unread()
    assert cli(tmp_path, "cases", "reply", case.display_number, "--body", "Yes.",
               "--as", BOB) == 0
    assert not unread()


def test_cases_list_by_owner_queue_or_nobody(make_app: Callable[..., App], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    app = staffed(make_app, tmp_path, mode="shared", assignment_rule=RULES[:1])
    billing = new_case(app, subject="Invoice wrong")
    loose = new_case(app, subject="Printer")
    assert cli(tmp_path, "cases", "update", loose.display_number, "--owner", JOE) == 0
    nobody = new_case(app, subject="Scanner")

    def listed(*args: str) -> list[str]:
        capsys.readouterr()
        assert cli(tmp_path, "cases", "list", "--json", *args) == 0
        return [row["number"] for row in json.loads(capsys.readouterr().out)]

    assert listed("--queue", "Billing") == [billing.display_number]
    assert listed("--owner", JOE) == [loose.display_number]
    assert listed("--unassigned") == [nobody.display_number]


def test_rules_naming_nobody_are_refused_with_the_key(
        make_app: Callable[..., App], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown mailbox fails the config itself; an agent or queue the store lacks
    fails check-config and the start, each naming the key."""
    app = staffed(make_app, tmp_path)
    settings = app.settings.model_dump(by_alias=True)
    with pytest.raises(ValueError, match=r"assignment_rule\[0\]\.mailbox"):
        config.Settings.model_validate({**settings, "assignment_rule": [
            {"mailbox": "sales@example.com", "owner": BOB}]})
    bad = make_app(assignment_rule=[{"owner": "queue:Nobody"}, {"owner": "zed@example.com"}],
                   cases={"default_owner": BOB})
    assert bad.owner_problems() == [
        "assignment_rule[0].owner: there is no queue 'Nobody' (mailcase queues add NAME "
        "--members …)",
        "assignment_rule[1].owner: zed@example.com is not an active agent "
        "(mailcase agents add EMAIL)",
    ]
    capsys.readouterr()
    assert cli(tmp_path, "check-config", "--no-ports", "--offline") == 78
    err = capsys.readouterr().err
    assert "assignment_rule[0].owner: there is no queue 'Nobody'" in err
    assert "assignment_rule[1].owner: zed@example.com" in err
    started = run("-c", str(tmp_path / "mailcase.toml"), "serve")
    assert started.returncode == 78
    assert "assignment_rule[1].owner" in started.stderr


def test_round_robin_across_two_processes_never_repeats_or_skips_a_turn(
        make_app: Callable[..., App], tmp_path: Path) -> None:
    """Two processes hand out 60 cases through one queue at once: each member gets 20
    and the turn counter saw every case (the queue row's lock orders them)."""
    app = staffed(make_app, tmp_path)
    assert cli(tmp_path, "queues", "members", "Billing", "--add", JOE) == 0
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from mailcase import config\n"
        "from mailcase.app import App\n"
        "from tests.cases.test_routing import assign_many\n"
        "app = App.build(config.load(Path(sys.argv[1])), jitter=False)\n"
        "print(' '.join(assign_many(app, 30)))\n"
    )
    workers = [subprocess.Popen([sys.executable, "-c", script,
                                 str(tmp_path / "mailcase.toml")],
                                stdout=subprocess.PIPE, text=True, cwd=ROOT)
               for _ in range(2)]
    owners = [o for w in workers for o in w.communicate(timeout=120)[0].split()]
    assert all(w.returncode == 0 for w in workers)
    assert Counter(owners) == {BOB: 20, EVE: 20, JOE: 20}
    with app.sessions() as session:
        assert session.scalar(select(Queue.turn).where(Queue.name == "Billing")) == 60


def test_the_readmes_worked_example(make_app: Callable[..., App], sink: Sink,
                                    tmp_path: Path) -> None:
    """The README's routing example, taken from the README itself: its commands run,
    check-config passes, and mail lands where the example says."""
    section = (ROOT / "README.md").read_text().split("### Routing", 1)[1].split("\n## ", 1)[0]
    toml = section.split("```toml\n", 1)[1].split("```", 1)[0]
    commands = section.split("```sh\n", 1)[1].split("```", 1)[0]
    make_app()  # the test config file and a migrated database
    path = tmp_path / "mailcase.toml"
    path.write_text(path.read_text() + "\n" + toml)
    app = App.build(config.load(path), jitter=False)
    try:
        for line in commands.splitlines():
            words = shlex.split(line.split("#", 1)[0])
            assert words[0] == "mailcase"
            extra = ["--no-ports", "--offline"] if words[1] == "check-config" else []
            assert cli(tmp_path, *words[1:], *extra) == 0, line
        invoice = new_case(app, subject="Invoice 7", sender="kim@customer.org")
        key = new_case(app, subject="Printer", sender="ceo@bigcorp.example")
        paged = new_case(app, subject="Down", X_Alert="sev1")
        rest = new_case(app, subject="Question")
        assert invoice.owner_agent is not None and invoice.owner_agent.email == BOB
        assert key.owner_agent is not None and key.owner_agent.email == EVE
        assert paged.owner_agent is not None and paged.owner_agent.email == JOE
        assert rest.owner_agent is None
        assert rest.owner_queue is not None and rest.owner_queue.name == "Frontline"
        app.sender.drain()
        assert len(sink.expect(4, to="lead@example.com")) == 4  # follows every case
    finally:
        app.close()


def test_a_case_opened_by_hand_can_be_routed_like_mail(
        make_app: Callable[..., App], sink: Sink, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`cases new --assign-using-rules` gives the case the owner its mail would have
    got, and alerts them; without it the case stays unassigned."""
    app = staffed(make_app, tmp_path, assignment_rule=RULES)
    assert cli(tmp_path, "cases", "new", "--email", "kim@customer.org", "--subject",
               "Invoice 9 twice", "--assign-using-rules") == 0
    assert cli(tmp_path, "cases", "new", "--email", "kim@customer.org", "--subject",
               "Invoice 10") == 0
    capsys.readouterr()
    assert cli(tmp_path, "cases", "list", "--json") == 0
    owners = {row["subject"]: row["owner"] for row in json.loads(capsys.readouterr().out)}
    assert owners == {"Invoice 9 twice": BOB, "Invoice 10": None}
    app.sender.drain()
    [alert] = sink.expect(1, to=BOB)
    assert "rule invoices" in alert.text


def test_an_owner_gone_since_the_check_passes_the_case_on(
        make_app: Callable[..., App], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rule's agent deactivated behind the config's back: the case goes to the next
    owner named (here the default). The command line refuses to deactivate an agent
    the config still names, since the next start would refuse the config."""
    app = staffed(make_app, tmp_path, assignment_rule=RULES, cases={"default_owner": JOE})
    capsys.readouterr()
    assert cli(tmp_path, "agents", "deactivate", EVE) == 1
    assert "the config still names them (assignment_rule[1].owner)" in capsys.readouterr().err
    with app.sessions.begin() as session:
        Staff(session).deactivate(EVE)
    vip = new_case(app, sender="ceo@bigcorp.example", subject="Printer")
    assert vip.owner_agent is not None and vip.owner_agent.email == JOE
    assert owner_events(app, vip)[-1]["why"] == "the default owner"

