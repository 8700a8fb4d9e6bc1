"""CPython's own email test messages, the parser's torture set, all go through mailcase
without a crash: each becomes a case, a comment, or a dropped or parked row with its
reason."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from mailcase.app import App
from mailcase.store.models import InboundMail

try:
    import test.test_email as cpython_email_tests
except ImportError:  # some Python builds ship without their test suite
    cpython_email_tests = None

DATA = (Path(cpython_email_tests.__file__).parent / "data") if cpython_email_tests else None


def test_cpython_email_corpus_never_crashes(app: App) -> None:
    """Every message of Lib/test/test_email/data is processed to a final status, none by
    an unexpected error."""
    if DATA is None or not DATA.is_dir():
        pytest.skip("this Python was built without its test suite (Lib/test/test_email)")
    files = sorted(DATA.glob("msg_*.txt"))
    assert len(files) >= 40
    for path in files:
        app.intake.accept(path.read_bytes(), mail_from="someone@example.org",
                          rcpt_to=["support@example.com"], source="test")
    app.processor.drain()
    with app.sessions() as session:
        rows = session.execute(select(InboundMail.status, InboundMail.outcome,
                                      InboundMail.last_error)).all()
    crashed = [row for row in rows if row.last_error]
    assert crashed == [], f"unexpected errors: {crashed}"
    statuses = Counter(row.status for row in rows)
    assert set(statuses) <= {"processed", "dropped", "parked"}, statuses
    assert statuses["processed"] > len(rows) // 2
    assert all(row.outcome for row in rows if row.status != "processed")
