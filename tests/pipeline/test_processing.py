"""Processing after the commit: robots are screened out, failures are retried and then
parked with their bytes, and parked mail can be replayed into a case."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailcase.app import App
from mailcase.cli import main
from mailcase.pipeline import stages
from mailcase.pipeline.context import Context
from mailcase.store.db import WriterGate
from mailcase.store.models import Case, InboundMail, OutboundMail
from tests.support.mailsink import Sink
from tests.support.servers import mail


def accept(app: App, raw: bytes, mail_from: str = "ann@customer.org") -> int:
    return app.intake.accept(raw, mail_from=mail_from, rcpt_to=["support@example.com"],
                             source="test").id


def count(app: App, model: type) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def inbound(app: App, inbound_id: int) -> InboundMail:
    with app.sessions() as session:
        row = session.get(InboundMail, inbound_id)
        assert row is not None
        return row


@pytest.mark.parametrize(("headers", "mail_from"), [
    ({"Auto_Submitted": "auto-replied"}, "ann@customer.org"),
    ({"Precedence": "bulk"}, "ann@customer.org"),
    ({"List_Id": "<announce.customer.org>"}, "ann@customer.org"),
    ({"X_Autoreply": "yes"}, "ann@customer.org"),
    ({}, ""),
    ({"X_Mailcase_Loop": "support@example.com"}, "support@example.com"),
])
def test_robot_mail_opens_no_case_and_gets_no_answer(
    app: App, sink: Sink, headers: dict[str, str], mail_from: str
) -> None:
    """Automatic mail is recorded as dropped with its reason: no case, no auto-response."""
    inbound_id = accept(app, mail(**headers).as_bytes(), mail_from=mail_from)
    app.processor.drain()
    app.sender.drain()
    row = inbound(app, inbound_id)
    assert row.status == "dropped"
    assert row.outcome and row.outcome.startswith("automatic mail")
    assert count(app, Case) == 0
    assert count(app, OutboundMail) == 0
    sink.expect(0)


def test_failures_retry_then_park_keeping_the_bytes(
    app: App, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An unexpected error rolls back, is retried max_attempts times, then the mail is
    parked with its raw bytes; replaying it after the fix opens the case."""
    broken: list[int] = []

    def explode(ctx: object) -> None:
        broken.append(1)
        raise ValueError("matcher bug")

    pipeline = stages.PIPELINE
    monkeypatch.setattr("mailcase.pipeline.processor.PIPELINE",
                        tuple(explode if s is stages.match else s for s in pipeline))
    raw = mail(message_id="<poison@customer.org>").as_bytes()
    inbound_id = accept(app, raw)
    for _ in range(10):
        app.processor.drain()
    row = inbound(app, inbound_id)
    assert len(broken) == 5  # processing.max_attempts
    assert row.status == "parked"
    assert row.attempts == 5
    assert row.last_error == "ValueError: matcher bug"
    assert row.raw == raw
    assert count(app, Case) == 0  # rolled back every time, contact included

    monkeypatch.setattr("mailcase.pipeline.processor.PIPELINE", pipeline)
    assert main(["-c", str(tmp_path / "mailcase.toml"), "inbound", "replay", "--all-parked"]) == 0
    app.processor.drain()
    row = inbound(app, inbound_id)
    assert row.status == "processed"
    assert count(app, Case) == 1


def test_processed_mail_cannot_be_replayed(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Replaying a processed mail would duplicate its case, so it is refused in one line."""
    inbound_id = accept(app, mail().as_bytes())
    app.processor.drain()
    capsys.readouterr()
    code = main(["-c", str(tmp_path / "mailcase.toml"), "inbound", "replay", str(inbound_id)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "is processed" in err


def reply_after_close(app: App) -> None:
    """Open case 00001000, close it, then process the customer's reply to it."""
    accept(app, mail(message_id="<one@customer.org>").as_bytes())
    app.processor.drain()
    desk = app.desk()
    desk.close(1000, "fixed", desk.author(None))
    accept(app, mail(message_id="<two@customer.org>", In_Reply_To="<one@customer.org>")
           .as_bytes())
    app.processor.drain()


def test_reply_to_closed_case_reopens_it(app: App) -> None:
    """By default a customer's reply to a closed case reopens it."""
    reply_after_close(app)
    with app.sessions() as session:
        case = session.scalars(select(Case)).one()
        assert (case.status, case.is_closed, case.closed_at) == ("Working", False, None)


def test_reply_to_closed_case_opens_follow_up(make_app: Callable[..., App]) -> None:
    """With on_reply_to_closed = "follow_up" the reply opens a child case of the closed one."""
    app = make_app(cases={"on_reply_to_closed": "follow_up"})
    reply_after_close(app)
    with app.sessions() as session:
        first, follow_up = session.scalars(select(Case).order_by(Case.number)).all()
        assert first.is_closed
        assert follow_up.parent_id == first.id and follow_up.number == 1001
        assert follow_up.description == "My printer is on fire."
    accept(app, mail(message_id="<three@customer.org>", In_Reply_To="<one@customer.org>",
                     body="Still there.\n\nOn Mon, 1 Jan 2026 at 10:00, S <s@x.org> wrote:\n> x")
           .as_bytes())
    app.processor.drain()
    with app.sessions() as session:
        cases = session.scalars(select(Case).order_by(Case.number)).all()
        assert [c.number for c in cases] == [1000, 1001]  # the follow-up takes later replies
        assert [c.body for c in cases[1].comments] == ["Still there."]


def test_forged_token_opens_a_new_case(app: App) -> None:
    """A token that does not verify never attaches mail to the case it names."""
    accept(app, mail(message_id="<one@customer.org>").as_bytes())
    app.processor.drain()
    forged = "support+1000-c1-aaaaaaaaaaaaaaaaaaaa@example.com"
    app.intake.accept(mail(to=forged, sender="mallory@evil.org", message_id="<x@evil.org>")
                      .as_bytes(), mail_from="mallory@evil.org", rcpt_to=[forged], source="test")
    app.processor.drain()
    with app.sessions() as session:
        cases = session.scalars(select(Case).order_by(Case.number)).all()
        assert [c.supplied_email for c in cases] == ["ann@customer.org", "mallory@evil.org"]
        assert cases[0].comments == []


def untimed_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch ends only on its size, new mail or a stop, never on the clock: a slow
    machine must not end it after fewer mails than the test counts on."""
    monkeypatch.setattr("mailcase.pipeline.processor.BATCH_SECONDS", 3600.0)


def test_a_burst_is_processed_in_batches_and_a_poison_mail_costs_only_itself(
    make_app: Callable[..., App], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mails processed in one batch transaction: one that fails unexpectedly rolls the
    batch back, the mails before it are processed again one per transaction, it alone
    counts an attempt (its stages ran once), and the mails after it stay pending for
    the next batch; every good mail opens exactly one case."""
    app = make_app(processing={"retry_base_seconds": 3600, "retry_max_seconds": 3600})
    untimed_batches(monkeypatch)
    runs: list[str] = []

    def explode_on_poison(ctx: Context) -> None:
        runs.append(ctx.parsed.message_id or "")
        if ctx.parsed.message_id == "<m2@customer.org>":
            raise ValueError("matcher bug")
        stages.match(ctx)

    monkeypatch.setattr("mailcase.pipeline.processor.PIPELINE",
                        tuple(explode_on_poison if s is stages.match else s
                              for s in stages.PIPELINE))
    ids = [accept(app, mail(message_id=f"<m{n}@customer.org>", subject=f"Question {n}",
                            sender=f"ann{n}@customer.org").as_bytes()) for n in range(5)]
    first = app.processor.process_batch()
    assert first == ["processed", "processed", "pending"]  # m0, m1 again alone; m2 failed
    assert runs.count("<m2@customer.org>") == 1
    assert inbound(app, ids[2]).attempts == 1
    assert [inbound(app, i).status for i in ids[3:]] == ["pending", "pending"]
    assert app.processor.drain() == {"processed": 2}  # m3, m4; m2 waits for its retry
    assert count(app, Case) == 4


def test_a_batch_makes_way_for_new_mail_waiting_to_be_stored(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a batch commits after the mail in hand as soon as a commit of new mail
    is announced, so senders wait for one mail's processing, not a whole batch's."""
    for n in range(4):
        accept(app, mail(message_id=f"<w{n}@customer.org>").as_bytes())
    untimed_batches(monkeypatch)
    monkeypatch.setattr(app.processor.gate, "wanted", lambda: True)
    assert app.processor.process_batch() == ["processed"]
    monkeypatch.setattr(app.processor.gate, "wanted", lambda: False)
    assert app.processor.process_batch() == ["processed"] * 3


def test_the_writer_gate_sees_an_announced_commit(tmp_path: Path) -> None:
    """WriterGate.wanted is true exactly while the intake holds the gate for a commit."""
    gate = WriterGate(tmp_path / "mailcase.db")
    assert not gate.wanted()
    with gate.first():
        assert gate.wanted()
    assert not gate.wanted()
    assert not WriterGate(None).wanted()  # PostgreSQL: nothing to make way for


@pytest.mark.parametrize("batch_size", [1, 3])
def test_batch_size_changes_transactions_not_outcomes(
    make_app: Callable[..., App], batch_size: int
) -> None:
    """Whatever processing.batch_size says, a burst ends the same: one case per new mail,
    replies on their cases, nothing left pending."""
    app = make_app(processing={"batch_size": batch_size})
    for n in range(4):
        accept(app, mail(message_id=f"<b{n}@customer.org>", subject=f"Order {n}",
                         sender=f"bea{n}@customer.org").as_bytes())
    accept(app, mail(message_id="<b-reply@customer.org>", subject="Re: Order 1",
                     sender="bea1@customer.org", In_Reply_To="<b1@customer.org>").as_bytes())
    assert app.processor.drain() == {"processed": 5}
    assert count(app, Case) == 4
