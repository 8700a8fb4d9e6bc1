"""Hostile input that stays: generated MIME trees, headers, encodings and charsets
(hypothesis), and the nastiest of them kept as fixtures. The processor never crashes on
them (it parks at worst, with the reason), every accepted mail ends as a case, a
comment, a recorded drop or a parked mail, and reading one costs bounded memory.

The number of examples is bounded for CI (the "default" profile in conftest.py);
MAILCASE_HYPOTHESIS_PROFILE=thorough runs thousands by hand."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from mailcase.app import App
from mailcase.intake.accept import TooLarge
from mailcase.reading import parsing
from mailcase.store.models import InboundMail
from tests.support.hostile import hostile_mail
from tests.support.paths import DATA

HOSTILE = sorted((DATA / "hostile").glob("*.eml"))
# What the parse stage parks on (pipeline.stages.parse): anything else escaping the
# reader is a bug the processor would retry for nothing.
PARKED_ON = (RecursionError, MemoryError, ValueError, LookupError, TypeError)
# Peak memory of reading a mail: a few times its size and a fixed allowance.
MEMORY_FACTOR, MEMORY_BASE = 20, 8 * 1024 * 1024


@given(hostile_mail())
def test_reading_hostile_mail_raises_nothing_unexpected_in_bounded_memory(raw: bytes) -> None:
    """parse() returns, or raises only what the parse stage parks on; its peak memory
    stays within MEMORY_FACTOR times the mail plus MEMORY_BASE."""
    tracemalloc.start()
    try:
        parsing.parse(raw)
    except PARKED_ON:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak <= MEMORY_FACTOR * len(raw) + MEMORY_BASE


def _ended_well(row: InboundMail) -> str | None:
    """Why ``row`` did not end as it must (None when it did)."""
    if row.last_error:
        return f"an unexpected error: {row.last_error}"
    if row.status == "processed":
        return None if row.case_id is not None else "processed without a case"
    if row.status in ("dropped", "parked", "held"):
        return None if row.outcome else f"{row.status} without a reason"
    return f"left {row.status}"


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(st.lists(hostile_mail(), min_size=1, max_size=4))
def test_every_accepted_hostile_mail_ends_somewhere(app: App, mails: list[bytes]) -> None:
    """Accepted, then processed on a real database: each mail is a case or a comment, a
    drop with its reason, or parked with its reason; none raises out of the pipeline."""
    ids = []
    for raw in mails:
        try:
            ids.append(app.intake.accept(raw, mail_from="ann@customer.org",
                                         rcpt_to=["support@example.com"], source="test").id)
        except TooLarge:
            continue
    app.processor.drain()
    with app.sessions() as session:
        rows = session.scalars(select(InboundMail).where(InboundMail.id.in_(ids))).all()
        problems = {row.id: _ended_well(row) for row in rows}
    assert not {k: v for k, v in problems.items() if v}, problems


@pytest.mark.parametrize("path", HOSTILE, ids=[p.name for p in HOSTILE])
def test_the_nastiest_kept_mails_end_well(app: App, path: Path) -> None:
    """Each fixture of tests/data/hostile (named after what makes it nasty) is accepted
    and ends as a case, a drop or a parked mail with its reason."""
    accepted = app.intake.accept(path.read_bytes(), mail_from="ann@customer.org",
                                 rcpt_to=["support@example.com"], source="test")
    app.processor.drain()
    with app.sessions() as session:
        row = session.get(InboundMail, accepted.id)
        assert row is not None
        assert _ended_well(row) is None, _ended_well(row)


def test_an_unexpected_error_of_the_mime_walk_parks_the_mail_after_the_attempts(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader bug that raises something the parse stage does not park on at once (the
    AttributeError that 8-bit Content-Disposition bytes once raised in the walk) is
    retried, then the mail is parked with its reason: never left pending for ever."""
    def broken_walk(message: object) -> object:
        raise AttributeError("'Header' object has no attribute 'split'")

    monkeypatch.setattr("mailcase.reading.mime.walk", broken_walk)
    raw = (DATA / "hostile" / "content-disposition-8bit-filename.eml").read_bytes()
    accepted = app.intake.accept(raw, mail_from="ann@customer.org",
                                 rcpt_to=["support@example.com"], source="test")
    for _ in range(10):  # processing.max_attempts is 5; retries are due at once in tests
        app.processor.drain()
    with app.sessions() as session:
        row = session.get(InboundMail, accepted.id)
        assert row is not None
        assert (row.status, row.attempts) == ("parked", 5), (row.status, row.attempts)
        assert row.last_error == "AttributeError: 'Header' object has no attribute 'split'"
        assert row.outcome == "parked after 5 failed attempts"

