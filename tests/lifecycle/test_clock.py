"""The case's clock end to end on both engines, on an injected clock (no sleeps): targets
counted in business hours from a case's start, paused while it waits on the customer,
met by the first public agent reply and the close; warnings and breaches acted on once
each however often the sweep runs, and caught up once after downtime; reminders and
auto-close of cases on hold; the frozen times in `cases show --json` and /metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailcase.app import App
from mailcase.cli import main
from mailcase.store.models import Case, CaseTarget, Event, OutboundMail
from tests.support.mailsink import Sink
from tests.support.servers import mail

BOB, EVE, LEAD = "bob@example.com", "eve@example.com", "lead@example.com"
CARL = "carl@customer.org"
OFFICE = {"name": "office", "time_zone": "Europe/Berlin",
          "hours": {d: "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")}}
# Friday 4 December 2026, 17:55 in Berlin (UTC+1): five minutes before the weekend.
FRIDAY_1755 = datetime(2026, 12, 4, 16, 55, tzinfo=UTC)


class Clock:
    """The time every part of the app reads; tests move it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def at(self, when: datetime) -> None:
        self.now = when

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def cli(tmp_path: Path, *args: str) -> int:
    return main(["-c", str(tmp_path / "mailcase.toml"), *args])


def act(app: App, what: str, number: str, text: str | None = None, **fields: Any) -> None:
    """An agent (Bob) acts on a case through the case rules, on the app's clock (the
    command line would read the real one)."""
    desk = app.desk()
    author, n = desk.author(BOB), int(number)
    if what == "update":
        desk.update(n, status=fields.get("status"), priority=None, owner=None, author=author)
    elif what == "reopen":
        desk.reopen(n, author)
    elif what == "close":
        desk.close(n, text or "", author)
    else:
        getattr(desk, what)(n, text, author)


def shown(tmp_path: Path, number: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert cli(tmp_path, "cases", "show", number, "--json") == 0
    return json.loads(capsys.readouterr().out)


def staffed(make_app: Callable[..., App], tmp_path: Path, clock: Clock,
            **sections: Any) -> App:
    """An app on ``clock`` whose store has agents Bob, Eve and Lead; Bob owns new cases."""
    sections.setdefault("cases", {})
    sections["cases"] = {"default_owner": BOB, **sections["cases"]}
    app = make_app(clock=clock, **sections)
    for agent in (BOB, EVE, LEAD):
        assert cli(tmp_path, "agents", "add", agent) == 0
    return app


def new_case(app: App, subject: str = "Printer on fire", **headers: str) -> str:
    raw = mail(sender=CARL, subject=subject, body="It is on fire.\n", **headers).as_bytes()
    app.intake.accept(raw, mail_from=CARL, rcpt_to=["support@example.com"], source="test")
    app.processor.drain()
    with app.sessions() as session:
        return session.scalars(select(Case).order_by(Case.id.desc()).limit(1)).one() \
            .display_number


def customer_reply(app: App, number: str, body: str = "Here is the log.\n") -> None:
    raw = mail(sender=CARL, subject=f"Re: [Case #{number}] Printer on fire",
               body=body).as_bytes()
    app.intake.accept(raw, mail_from=CARL, rcpt_to=["support@example.com"], source="test")
    app.processor.drain()


# What each template's subject says, after the case tag.
SUBJECTS = {"sla_warning": "Due soon:", "sla_breach": "Overdue:",
            "hold_reminder": "Waiting for your reply:", "auto_closed": "Closed without"}


def templates_sent(app: App, template: str) -> list[str]:
    """The recipients of every queued mail of ``template``, in order."""
    with app.sessions() as session:
        rows = session.execute(select(OutboundMail.rcpt_to, OutboundMail.raw)
                               .order_by(OutboundMail.id)).all()
    return [rcpt for rcpt, raw in rows
            if SUBJECTS[template] in (BytesParser().parsebytes(raw, headersonly=True)
                                      ["Subject"] or "")]


def kinds(app: App, number: str) -> list[str]:
    with app.sessions() as session:
        case = session.scalars(select(Case).where(Case.number == int(number))).one()
        return list(session.scalars(select(Event.kind).where(Event.case_id == case.id)
                                    .order_by(Event.id)))


OFFICE_SLA = {"name": "standard", "business_hours": "office", "first_response": "4h",
              "resolution": "2d", "warning": 0.8, "escalate_status": "Escalated",
              "alert": [LEAD]}


def test_the_readme_example_friday_evening_case(make_app: Callable[..., App],
                                                tmp_path: Path, sink: Sink,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A case in at Friday 17:55 on a 09:00-17:00 calendar: its 4h first response is due
    Monday 13:00, warned at 12:12 (80 %), breached at 13:00 — once each, however often
    the sweep runs — and its 2d resolution is due Wednesday 09:00."""
    clock = Clock(FRIDAY_1755)
    app = staffed(make_app, tmp_path, clock, business_hours=[OFFICE], sla=[OFFICE_SLA])
    number = new_case(app)
    case = shown(tmp_path, number, capsys)
    targets = {t["name"]: t for t in case["targets"]}
    assert case["sla"] == "standard"
    assert targets["first_response"]["due_at"] == "2026-12-07T12:00:00+00:00"  # 13:00 CET
    assert targets["first_response"]["warn_at"] == "2026-12-07T11:12:00+00:00"
    assert targets["resolution"]["due_at"] == "2026-12-09T08:00:00+00:00"  # Wed 09:00
    assert targets["resolution"]["warn_at"] == "2026-12-08T12:48:00+00:00"  # Tue 13:48
    assert {t["state"] for t in targets.values()} == {"running"}

    clock.at(datetime(2026, 12, 7, 11, 11, tzinfo=UTC))  # Monday 12:11
    assert app.sweeps.run() == {}
    clock.at(datetime(2026, 12, 7, 11, 12, tzinfo=UTC))
    assert app.sweeps.run() == {"warned": 1}
    assert app.sweeps.run() == {}
    assert templates_sent(app, "sla_warning") == [BOB]
    assert shown(tmp_path, number, capsys)["is_escalated"] is False

    clock.at(datetime(2026, 12, 7, 12, 0, tzinfo=UTC))  # Monday 13:00
    assert app.sweeps.run() == {"breached": 1}
    for _ in range(3):
        assert app.sweeps.run() == {}
    assert templates_sent(app, "sla_breach") == [BOB, LEAD]
    case = shown(tmp_path, number, capsys)
    assert case["is_escalated"] is True
    assert case["status"] == "Escalated"
    states = {t["name"]: t["state"] for t in case["targets"]}
    assert states == {"first_response": "breached", "resolution": "running"}
    assert kinds(app, number).count("target breached") == 1
    app.sender.drain()
    [alert] = sink.expect(1, to=LEAD)
    assert alert["Subject"].startswith(f"[Case #{number}] Overdue: first response")
    assert "+" in alert["Reply-To"]  # the agent's own token: a reply answers the case


def test_the_readme_example_answered_then_on_hold(make_app: Callable[..., App],
                                                  tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The README's example, answered Monday 10:00 (230,700 s wall, 3,600 s business),
    On Hold from Monday 15:00 to the customer's reply on Tuesday 11:00: the resolution,
    due Wednesday 09:00, stood still four business hours and is due Wednesday 13:00."""
    clock = Clock(FRIDAY_1755)
    app = staffed(make_app, tmp_path, clock, business_hours=[OFFICE], sla=[OFFICE_SLA])
    number = new_case(app)
    clock.at(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))  # Monday 10:00 in Berlin
    act(app, "reply", number, "We are on it.")
    case = shown(tmp_path, number, capsys)
    assert (case["first_response_seconds"], case["business_first_response_seconds"]) == (
        230_700, 3_600)
    clock.at(datetime(2026, 12, 7, 14, 0, tzinfo=UTC))  # Monday 15:00
    act(app, "update", number, status="On Hold")
    clock.at(datetime(2026, 12, 8, 10, 0, tzinfo=UTC))  # Tuesday 11:00
    customer_reply(app, number)
    case = shown(tmp_path, number, capsys)
    resolution = next(t for t in case["targets"] if t["name"] == "resolution")
    assert (case["status"], resolution["state"]) == ("Working", "running")
    assert resolution["due_at"] == "2026-12-09T12:00:00+00:00"  # Wednesday 13:00


def test_a_daemon_stopped_over_the_weekend_fires_each_breach_once(
        make_app: Callable[..., App], tmp_path: Path) -> None:
    """Past both its warning and its due time at the first sweep after downtime, a
    target gets its breach alone, once; a second app on the same database (another
    instance) then finds nothing left to do."""
    clock = Clock(FRIDAY_1755)
    app = staffed(make_app, tmp_path, clock, business_hours=[OFFICE], sla=[OFFICE_SLA])
    numbers = [new_case(app, subject=f"Problem {n}") for n in range(3)]
    clock.at(datetime(2026, 12, 8, 8, 0, tzinfo=UTC))  # Tuesday 09:00: long past due
    other = App.build(app.settings, clock=clock, jitter=False)
    try:
        assert app.sweeps.run() == {"breached": 3}
        assert other.sweeps.run() == {}
    finally:
        other.close()
    assert templates_sent(app, "sla_warning") == []
    assert templates_sent(app, "sla_breach") == [BOB, LEAD] * 3
    for number in numbers:
        assert kinds(app, number).count("target breached") == 1


def test_on_hold_stops_the_clock_and_a_customer_reply_restarts_it(
        make_app: Callable[..., App], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """On Hold pauses a target; the customer's reply puts the case back to Working and
    pushes the due time on by exactly the time it stood still."""
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    clock = Clock(start)
    sla = {"name": "round the clock", "resolution": "8h", "warning": 0}
    app = staffed(make_app, tmp_path, clock, sla=[sla])
    number = new_case(app)
    clock.advance(hours=1)
    act(app, "update", number, status="On Hold")
    assert shown(tmp_path, number, capsys)["targets"][0]["state"] == "paused"
    clock.advance(hours=30)  # long past the old due time, but waiting on the customer
    assert app.sweeps.run() == {}
    customer_reply(app, number)
    case = shown(tmp_path, number, capsys)
    assert case["status"] == "Working"
    [target] = case["targets"]
    assert target["state"] == "running"
    assert target["due_at"] == (start + timedelta(hours=8 + 30)).isoformat()
    clock.at(start + timedelta(hours=38) - timedelta(seconds=1))
    assert app.sweeps.run() == {}
    clock.at(start + timedelta(hours=38))
    assert app.sweeps.run() == {"breached": 1}


def test_replies_meet_targets_and_the_close_freezes_the_times(
        make_app: Callable[..., App], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The first public agent reply meets the first response (an internal note does
    not); a customer's reply starts a next response that the next agent reply meets;
    the close meets the resolution; wall and business times are frozen on the case."""
    clock = Clock(FRIDAY_1755)
    sla = {**OFFICE_SLA, "next_response": "2h"}
    app = staffed(make_app, tmp_path, clock, business_hours=[OFFICE], sla=[sla])
    number = new_case(app)
    clock.at(datetime(2026, 12, 7, 8, 30, tzinfo=UTC))  # Monday 09:30
    act(app, "note", number, "Looking.")
    assert shown(tmp_path, number, capsys)["first_response_seconds"] is None
    clock.at(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))  # Monday 10:00
    act(app, "reply", number, "On it.")
    case = shown(tmp_path, number, capsys)
    wall = int((datetime(2026, 12, 7, 9, 0, tzinfo=UTC) - FRIDAY_1755).total_seconds())
    assert case["first_response_seconds"] == wall
    assert case["business_first_response_seconds"] == 3600  # closed Friday; Monday 1 h
    first = next(t for t in case["targets"] if t["name"] == "first_response")
    assert (first["state"], first["met_at"]) == ("met", "2026-12-07T09:00:00+00:00")

    clock.at(datetime(2026, 12, 7, 10, 0, tzinfo=UTC))
    customer_reply(app, number)
    case = shown(tmp_path, number, capsys)
    [nxt] = [t for t in case["targets"] if t["name"] == "next_response"]
    assert (nxt["state"], nxt["due_at"]) == ("running", "2026-12-07T12:00:00+00:00")
    clock.at(datetime(2026, 12, 7, 11, 0, tzinfo=UTC))
    act(app, "reply", number, "Fixed?")
    clock.at(datetime(2026, 12, 8, 9, 0, tzinfo=UTC))  # Tuesday 10:00
    act(app, "close", number, "New fuser.")
    case = shown(tmp_path, number, capsys)
    assert {t["state"] for t in case["targets"]} == {"met"}
    assert case["resolution_seconds"] == int(
        (datetime(2026, 12, 8, 9, 0, tzinfo=UTC) - FRIDAY_1755).total_seconds())
    assert case["business_resolution_seconds"] == 8 * 3600 + 3600  # Monday, Tuesday 1 h
    metrics = app.metrics.exposition().decode()
    assert ('mailcase_case_resolution_seconds_bucket{le="86400.0",time="business"} 1.0'
            in metrics)
    assert 'mailcase_case_resolution_seconds_gcount{time="wall"} 1.0' in metrics
    for bound, count in (("1800.0", "0.0"), ("3600.0", "1.0")):
        assert (f'mailcase_case_first_response_seconds_bucket{{le="{bound}",time="business"}} '
                f'{count}') in metrics

    clock.advance(hours=1)  # a reopening runs the resolution clock again
    act(app, "reopen", number)
    case = shown(tmp_path, number, capsys)
    resolution = next(t for t in case["targets"] if t["name"] == "resolution")
    assert resolution["state"] == "running"
    assert case["resolution_seconds"] is None


def test_reminder_then_auto_close_of_a_case_on_hold(make_app: Callable[..., App],
                                                    tmp_path: Path, sink: Sink) -> None:
    """A case On Hold with no customer reply is reminded at N-k days and closed at N
    days with the configured resolution and a notice, each once; a customer's reply in
    between cancels both."""
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    clock = Clock(start)
    app = staffed(make_app, tmp_path, clock,
                  cases={"auto_close_after": "7d", "remind_before": "2d"})
    quiet, answered = new_case(app, subject="Quiet"), new_case(app, subject="Answered")
    for number in (quiet, answered):
        act(app, "update", number, status="On Hold")
    clock.at(start + timedelta(days=5) - timedelta(seconds=1))
    assert app.sweeps.run() == {}
    clock.at(start + timedelta(days=5))
    assert app.sweeps.run() == {"reminded": 2}
    assert app.sweeps.run() == {}
    clock.advance(days=1)
    customer_reply(app, answered, "Sorry, I was away. Still broken.\n")
    clock.at(start + timedelta(days=7))
    assert app.sweeps.run() == {"closed": 1}
    assert app.sweeps.run() == {}
    assert templates_sent(app, "hold_reminder") == [CARL, CARL]
    assert templates_sent(app, "auto_closed") == [CARL]
    with app.sessions() as session:
        by_number = {c.display_number: c for c in session.scalars(select(Case))}
    assert by_number[quiet].is_closed
    assert by_number[quiet].resolution == app.settings.cases.auto_close_resolution
    assert (by_number[answered].status, by_number[answered].is_closed) == ("Working", False)
    app.sender.drain()
    [notice] = sink.expect(1, to=CARL, subject_starts=f"[Case #{quiet}] Closed without")
    assert "did not hear back" in notice.text


def test_lists_of_due_escalated_and_breached_cases(make_app: Callable[..., App],
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]
                                                   ) -> None:
    """`cases list --due` gives open cases with a running target, soonest due first;
    `--escalated` and `--breached` those the sweep escalated."""
    clock = Clock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    slas = [{"name": "urgent", "priority": ["High"], "first_response": "1h"},
            {"name": "normal", "first_response": "8h"}]
    app = staffed(make_app, tmp_path, clock, sla=slas)
    normal = new_case(app, subject="Slow printer")
    urgent = new_case(app, subject="Down", Importance="high")
    unheld = new_case(app, subject="Other")
    act(app, "close", unheld, "Done")

    def listed(*flags: str) -> list[str]:
        capsys.readouterr()
        assert cli(tmp_path, "cases", "list", *flags, "--json") == 0
        return [row["number"] for row in json.loads(capsys.readouterr().out)]

    assert listed("--due") == [urgent, normal]
    clock.advance(hours=2)
    app.sweeps.run()
    assert listed("--escalated") == [urgent]
    assert listed("--breached") == [urgent]
    act(app, "reply", urgent, "Here.")
    assert listed("--breached") == []
    assert listed("--due") == [normal]


def test_an_imported_case_is_held_to_its_own_time(make_app: Callable[..., App],
                                                  tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A case from an archive import starts at its mail's Date and is judged against its
    own time: a target that ran out before the import shows as breached then, with no
    alert and no escalation (history, not news), and a later archived mail on the case
    is recorded at its own Date."""
    clock = Clock(datetime(2026, 12, 7, 12, 0, tzinfo=UTC))
    app = staffed(make_app, tmp_path, clock, sla=[
        {"name": "day", "first_response": "4h", "resolution": "1d"}])
    archive = [
        mail(sender=CARL, subject="Old problem", body="From the archive.\n",
             message_id="<old@customer.org>", Date="Tue, 03 Nov 2026 10:00:00 +0000"),
        mail(sender=CARL, subject="Re: Old problem", body="Any news?\n",
             message_id="<again@customer.org>", in_reply_to="<old@customer.org>",
             Date="Wed, 04 Nov 2026 09:00:00 +0000"),
    ]
    for message in archive:
        app.intake.accept(message.as_bytes(), mail_from=message["From"],
                          rcpt_to=["support@example.com"], source="import")
        app.processor.drain()
    with app.sessions() as session:
        number = session.scalars(select(Case)).one().display_number
    case = shown(tmp_path, number, capsys)
    assert case["created_at"] == "2026-11-03T10:00:00+00:00"
    targets = {t["name"]: t for t in case["targets"]}
    assert targets["resolution"]["due_at"] == "2026-11-04T10:00:00+00:00"
    assert targets["resolution"]["state"] == "breached"
    assert targets["first_response"]["state"] == "breached"
    assert case["comments"][-1]["created_at"] == "2026-11-04T09:00:00+00:00"
    assert case["is_escalated"] is False
    assert app.sweeps.run() == {}
    assert templates_sent(app, "sla_breach") == []

def test_the_mailbox_picks_the_calendar_when_the_rule_does_not(
        make_app: Callable[..., App], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A rule without business_hours counts in its case's mailbox's calendar: Friday
    17:55 + 1h is Monday 10:00 in the office, not Friday 18:55."""
    clock = Clock(FRIDAY_1755)
    app = staffed(make_app, tmp_path, clock, business_hours=[OFFICE],
                  sla=[{"name": "quick", "first_response": "1h"}],
                  mailbox={"address": "support@example.com", "business_hours": "office"})
    number = new_case(app)
    [target] = shown(tmp_path, number, capsys)["targets"]
    assert (target["calendar"], target["due_at"]) == ("office", "2026-12-07T09:00:00+00:00")


def test_a_breach_that_reassigns_into_another_rule_does_not_breach_again(
        make_app: Callable[..., App], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A breach reassigns the case to a queue whose own rule would also be overdue at
    once: the breached target stays (until met) instead of starting, breaching and
    reassigning again, so every sweep after the first finds nothing."""
    clock = Clock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    slas = [{"name": "tier2", "queue": ["Tier 2"], "first_response": "30m",
             "reassign": "queue:Tier 1"},
            {"name": "tier1", "first_response": "1h", "reassign": "queue:Tier 2"}]
    app = staffed(make_app, tmp_path, clock)
    for queue, member in (("Tier 1", BOB), ("Tier 2", EVE)):
        assert cli(tmp_path, "queues", "add", queue, "--members", member) == 0
    app = make_app(clock=clock, sla=slas, cases={"default_owner": "queue:Tier 1"})
    number = new_case(app)
    clock.advance(hours=2)
    assert app.sweeps.run() == {"breached": 1}
    for _ in range(3):
        assert app.sweeps.run() == {}
    case = shown(tmp_path, number, capsys)
    assert (case["owner"], case["sla"]) == (EVE, "tier2")
    assert [(t["name"], t["sla"], t["state"]) for t in case["targets"]] == [
        ("first_response", "tier1", "breached")]
    act(app, "reply", number, "Sorry for the wait.")
    assert shown(tmp_path, number, capsys)["targets"][0]["state"] == "met"


def test_a_case_whose_escalation_fails_does_not_hold_up_the_others(
        make_app: Callable[..., App], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An action that fails (here: composing the alert of the first case) is rolled back
    and tried again five minutes later; the other cases are escalated meanwhile."""
    clock = Clock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    app = staffed(make_app, tmp_path, clock,
                  sla=[{"name": "quick", "first_response": "1h", "warning": 0}])
    first, second = new_case(app, subject="One"), new_case(app, subject="Two")
    clock.advance(hours=2)
    alert = app.sweeps.escalation.notifier.target_alert

    def failing(session: Any, case: Case, *args: Any, **kwargs: Any) -> Any:
        if case.display_number == first:
            raise RuntimeError("the template store is away")
        return alert(session, case, *args, **kwargs)

    monkeypatch.setattr(app.sweeps.escalation.notifier, "target_alert", failing)
    assert app.sweeps.run() == {"breached": 1, "failed": 1}
    assert kinds(app, first).count("target breached") == 0  # rolled back whole
    assert kinds(app, second).count("target breached") == 1
    monkeypatch.setattr(app.sweeps.escalation.notifier, "target_alert", alert)
    assert app.sweeps.run() == {}  # it waits before it is tried again
    clock.advance(minutes=5)
    assert app.sweeps.run() == {"breached": 1}
    assert kinds(app, first).count("target breached") == 1


def test_a_claim_acts_only_on_what_is_due_and_only_once(make_app: Callable[..., App],
                                                        tmp_path: Path) -> None:
    """Acting on a target read as due (by a sweep, or a second instance) claims it only
    if its time has really come and nobody claimed it first: the claim itself, not the
    query before it, makes an alert happen once."""
    clock = Clock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    app = staffed(make_app, tmp_path, clock,
                  sla=[{"name": "quick", "first_response": "4h", "warning": 0.5}])
    number = new_case(app)
    with app.sessions() as session:
        [target_id] = session.scalars(select(CaseTarget.id)).all()
    escalation = app.sweeps.escalation

    def act_now() -> str | None:
        with app.sessions.begin() as session:
            return escalation._act(session, target_id, clock.now)

    assert act_now() is None  # read as due, but pushed later meanwhile: nothing yet
    clock.advance(hours=2)
    assert act_now() == "warned"
    assert act_now() is None
    clock.advance(hours=2)
    assert act_now() == "breached"
    assert act_now() is None
    assert kinds(app, number).count("target breached") == 1
    assert templates_sent(app, "sla_warning") == [BOB]
    assert templates_sent(app, "sla_breach") == [BOB]


def test_a_merge_into_a_case_on_hold_leaves_its_clock_alone(
        make_app: Callable[..., App], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Merging a duplicate into a case waiting on the customer moves old text, not a
    new answer: the case stays On Hold, paused, with its reminder count running."""
    clock = Clock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    app = staffed(make_app, tmp_path, clock, sla=[{"name": "day", "resolution": "1d"}],
                  cases={"auto_close_after": "7d"})
    target, duplicate = new_case(app, subject="Printer"), new_case(app, subject="Printer 2")
    act(app, "update", target, status="On Hold")
    clock.advance(hours=1)
    app.desk().merge(int(duplicate), int(target), app.desk().author(BOB))
    case = shown(tmp_path, target, capsys)
    assert case["status"] == "On Hold"
    assert [t["state"] for t in case["targets"]] == ["paused"]
    with app.sessions() as session:
        held = session.scalars(select(Case).where(Case.number == int(target))).one()
        assert held.waiting_since == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_a_new_rule_keeps_the_time_stood_still_and_the_warning_given(
        make_app: Callable[..., App], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Raising the priority moves the case to a stricter rule: its target keeps the five
    days the case spent On Hold, and a warning already given is not given again."""
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    clock = Clock(start)
    slas = [{"name": "urgent", "priority": ["High"], "resolution": "3d", "warning": 0.1},
            {"name": "normal", "resolution": "10d", "warning": 0.1}]
    app = staffed(make_app, tmp_path, clock, sla=slas)
    number = new_case(app)
    clock.advance(days=1, hours=1)  # past 10 % of ten days: warned
    assert app.sweeps.run() == {"warned": 1}
    act(app, "update", number, status="On Hold")
    clock.advance(days=5)
    customer_reply(app, number)  # back to Working: five days stood still
    app.desk().update(int(number), status=None, priority="High", owner=None,
                      author=app.desk().author(BOB))
    [target] = [t for t in shown(tmp_path, number, capsys)["targets"]
                if t["state"] != "met"]
    assert (target["sla"], target["state"]) == ("urgent", "warned")
    assert target["due_at"] == (start + timedelta(days=3 + 5)).isoformat()
    assert app.sweeps.run() == {}
    assert templates_sent(app, "sla_warning") == [BOB]
