"""The acknowledgement a new case's sender gets: at most one per sender per interval, and
never at the cost of the case when it cannot be composed."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailcase.app import App
from mailcase.cli import main
from mailcase.store.models import Case, InboundMail
from tests.support.mailsink import Sink
from tests.support.paths import ROOT
from tests.support.servers import mail, write_config


def accept(app: App, **kwargs: str) -> int:
    raw = mail(**kwargs).as_bytes()
    return app.intake.accept(raw, mail_from="ann@customer.org",
                             rcpt_to=["support@example.com"], source="test").id


def test_one_acknowledgement_per_sender_per_interval(app: App, sink: Sink) -> None:
    """Three new cases from one sender within the interval get one acknowledgement; the
    others say why in their outcome."""
    for number in range(3):
        accept(app, message_id=f"<n{number}@customer.org>", subject=f"Problem {number}")
    app.processor.drain()
    app.sender.drain()
    sink.expect(1, to="ann@customer.org")
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 3
        outcomes = session.scalars(select(InboundMail.outcome).order_by(InboundMail.id)).all()
    assert outcomes[0] is None
    assert outcomes[1] == outcomes[2] == (
        "no acknowledgement: ann@customer.org got one in the last 86400 s")


def test_interval_zero_acknowledges_every_case(make_app: Callable[..., App], sink: Sink) -> None:
    """With auto_response_interval = 0 every new case is acknowledged."""
    app = make_app(mailbox={"address": "support@example.com", "auto_response_interval": 0})
    accept(app, message_id="<a@customer.org>")
    accept(app, message_id="<b@customer.org>", subject="Another")
    app.processor.drain()
    app.sender.drain()
    sink.expect(2)


def test_broken_template_costs_no_case(
    make_app: Callable[..., App], sink: Sink, tmp_path: Path
) -> None:
    """A template that fails at render time leaves the case recorded, with the reason in
    the inbound outcome, and nothing half-written in the outbox."""
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    (templates / "acknowledgement.txt.j2").write_text("Hello {{ case.no_such_field.x }}\n")
    app = make_app(templates={"dir": str(templates)})
    inbound_id = accept(app, message_id="<broken@customer.org>")
    app.processor.drain()
    with app.sessions() as session:
        row = session.get(InboundMail, inbound_id)
        assert row is not None and row.status == "processed"
        assert row.outcome and row.outcome.startswith("acknowledgement not sent: template ")
        assert session.scalar(select(func.count()).select_from(Case)) == 1
    assert app.sender.drain() == {}
    sink.expect(0)


def test_check_config_knows_what_each_template_gets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config fails an acknowledgement template that uses `comment`, a variable only
    replies get, naming the file."""
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    path = templates / "acknowledgement.txt.j2"
    path.write_text(path.read_text() + "{{ comment.body }}\n")
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", None,
                          templates={"dir": str(templates)})
    capsys.readouterr()
    assert main(["-c", str(config), "check-config"]) == 78
    err = capsys.readouterr().err
    assert "acknowledgement.txt.j2" in err and "'comment' is undefined" in err


def test_replay_skip_screening_turns_dropped_mail_into_a_case(app: App, tmp_path: Path) -> None:
    """Mail wrongly dropped as automatic becomes a case when an operator replays it with
    --skip-screening."""
    inbound_id = accept(app, message_id="<human@customer.org>", Precedence="bulk")
    app.processor.drain()
    config = str(tmp_path / "mailcase.toml")
    assert main(["-c", config, "inbound", "replay", str(inbound_id), "--skip-screening"]) == 0
    app.processor.drain()
    with app.sessions() as session:
        row = session.get(InboundMail, inbound_id)
        assert row is not None and row.status == "processed"
        assert row.outcome == "screening skipped by an operator's replay"
        assert session.scalar(select(func.count()).select_from(Case)) == 1
