"""The benchmark's own smoke test: it runs end to end on a tiny corpus and reports every
measure. Nothing here is timed — the figures are the benchmark's business, by hand."""

from __future__ import annotations

from pathlib import Path

from bench import corpus, profile, run


def test_corpus_is_reproducible_and_mixed() -> None:
    """The same seed gives the same bytes; the mix has replies, HTML and attachments."""
    mails = corpus.generate(100, seed=7)
    assert mails == corpus.generate(100, seed=7)
    assert mails != corpus.generate(100, seed=8)
    assert sum(b"In-Reply-To:" in m for m in mails) >= 20
    assert sum(b"text/html" in m for m in mails) >= 15
    assert sum(b'filename="report-' in m for m in mails) == 2
    assert all(len(m) > 180_000 for m in mails if b'filename="report-' in m)


def test_benchmark_runs_on_a_tiny_corpus(tmp_path: Path) -> None:
    """Every measure produces a row with a positive figure, and no mail was refused."""
    output = tmp_path / "result.md"
    rows = run.main(["--messages", "24", "--import-messages", "30", "--scale-cases", "500",
                     "--search-cases", "300", "--search-queries", "2",
                     "--concurrency", "2", "--engines", "sqlite",
                     "--big-mail-bytes", "300000", "--timeout", "120",
                     "--api-cases", "200", "--api-seconds", "1",
                     "--console-cases", "300", "--console-seconds", "0.5",
                     "--output", str(output)])
    measures = [row.measure for row in rows]
    for expected in ("SMTP accept, bare aiosmtpd, new connection each",
                     "SMTP accept, new connection each", "end to end: sent → case/comment",
                     "DATA→250 p99 at half the peak rate", "SMTP accept with 500 cases",
                     "import of a 30-mail mbox", "fan-out: one reply to 21 people",
                     "agent reply from the command line until at the relay",
                     "search p50 / p99, 300 cases", "… search for phrase",
                     "API GET, bare FastAPI hello-world", "API GET /cases/{n}, 2 clients: 12",
                     "API GET /cases/{n} latency p50 / p99, 2 clients",
                     "API GET /cases/{n} latency, one client",
                     "Console, bare FastAPI hello-world", "Console page: my open cases, 300",
                     "Console page: a case with a dozen comments",
                     "peak RSS growth of the listener", "peak RSS growth of the processing",
                     "listener process RSS", "processing process RSS"):
        assert any(m.startswith(expected) for m in measures), f"no row for {expected}"
    assert all(row.value > 0 for row in rows)
    assert not any(m.startswith(("mail refused", "mail not processed", "API requests not"))
                   for m in measures)
    assert "| measure | engine |" in output.read_text()


def test_the_profile_summary_counts_each_frame_once_per_sample(tmp_path: Path) -> None:
    """Inclusive shares of the samples inside Processor.drain: a frame is counted once
    per sample even when it recurs in it; samples outside drain are left out."""
    raw = tmp_path / "raw.txt"
    drain = "Processor.drain (/x/mailcase/pipeline/processor.py:10)"
    record = "record (/x/mailcase/pipeline/stages.py:5)"
    flush = "Session.flush (/v/lib/python3.11/site-packages/sqlalchemy/orm/session.py:9)"
    raw.write_text(f"main;{drain};{record};{flush};{record} 3\n"
                   f"main;{drain};{flush} 1\n"
                   f"main;accept (/x/mailcase/intake/accept.py:1) 6\n", encoding="utf-8")
    text = profile.summary(raw)
    assert "Samples inside Processor.drain: 4." in text
    assert "100.0%  Processor.drain (mailcase/pipeline/processor.py)" in text
    assert " 75.0%  record (mailcase/pipeline/stages.py)" in text
    assert "100.0%  Session.flush (sqlalchemy/orm/session.py)" in text
    assert "accept" not in text
