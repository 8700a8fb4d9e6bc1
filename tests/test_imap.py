"""The IMAP poller against a real Dovecot: new mail becomes a case and is marked only after
the commit; a failure before it leaves the mail untouched; a crash between commit and mark
is healed by the next pass; a new UIDVALIDITY imports nothing twice."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from mailcase.app import App
from mailcase.imap import ImapPoller
from mailcase.models import Case, InboundMail, OutboundMail
from tests.support.dovecot import PASSWORD, USER, Dovecot
from tests.support.servers import mail, running_daemon, wait_for


def imap_app(make_app: Callable[..., App], dovecot: Dovecot, tmp_path: Path,
             **imap: object) -> tuple[App, ImapPoller]:
    secret = tmp_path / "imap-password"
    secret.write_text(PASSWORD + "\n")
    settings = {"host": "127.0.0.1", "port": dovecot.port, "tls": "none",
                "username": USER, "password_file": str(secret), **imap}
    app = make_app(mailbox={"address": "support@example.com", "imap": settings})
    return app, ImapPoller(app.settings.mailbox[0], app.intake)


def cases(app: App) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Case)) or 0)


@pytest.mark.parametrize(("mode", "mark"), [("keyword", b"$MailcaseStored"),
                                             ("seen", b"\\Seen")])
def test_new_mail_becomes_a_case_and_is_marked(make_app: Callable[..., App], dovecot: Dovecot,
                                               tmp_path: Path, mode: str, mark: bytes) -> None:
    """A mail in the folder is stored, processed into a case, and marked as configured
    (fetched with BODY.PEEK[], so nothing else changed its flags)."""
    dovecot.append(mail(message_id="<imap1@customer.org>").as_bytes())
    app, poller = imap_app(make_app, dovecot, tmp_path, acknowledge=mode)
    result = poller.poll()
    assert (result.found, result.stored, result.duplicates) == (1, 1, 0)
    [flags] = dovecot.flags().values()
    assert mark in flags
    if mode == "keyword":
        assert b"\\Seen" not in flags  # a person reading the mailbox still sees it as new
    app.processor.drain()
    assert cases(app) == 1
    assert poller.poll().found == 0


def test_failure_before_the_commit_leaves_the_mail_untouched(
    make_app: Callable[..., App], dovecot: Dovecot, tmp_path: Path
) -> None:
    """With the database refusing the commit, the mail is not marked; the next pass, with
    the database back, stores it."""
    dovecot.append(mail(message_id="<imap2@customer.org>").as_bytes())
    app, poller = imap_app(make_app, dovecot, tmp_path)

    def refuse(_connection: object) -> None:
        raise RuntimeError("database down")

    event.listen(app.engine, "commit", refuse)
    try:
        with pytest.raises(RuntimeError):
            poller.poll()
    finally:
        event.remove(app.engine, "commit", refuse)
    assert [flags for flags in dovecot.flags().values()] == [()]
    assert poller.poll().stored == 1


def test_crash_between_commit_and_mark_heals_on_the_next_pass(
    make_app: Callable[..., App], dovecot: Dovecot, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stored but not marked (the process died in between): the next pass finds it, knows
    it, marks it, and there is still one case."""
    dovecot.append(mail(message_id="<imap3@customer.org>").as_bytes())
    app, poller = imap_app(make_app, dovecot, tmp_path)
    original = ImapPoller._mark

    def die(*_args: object) -> None:
        raise SystemExit("killed before marking")

    monkeypatch.setattr(ImapPoller, "_mark", die)
    with pytest.raises(SystemExit):
        poller.poll()
    monkeypatch.setattr(ImapPoller, "_mark", original)
    result = poller.poll()
    assert (result.found, result.stored, result.duplicates) == (1, 0, 1)
    app.processor.drain()
    assert cases(app) == 1
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(InboundMail)) == 1


def test_new_uidvalidity_imports_nothing_twice(make_app: Callable[..., App], dovecot: Dovecot,
                                               tmp_path: Path) -> None:
    """The folder deleted and made again with the same mail (a new UIDVALIDITY): the mail
    is recognised, marked, and opens no second case."""
    raw = mail(message_id="<imap4@customer.org>").as_bytes()
    dovecot.append(raw, folder="Support")
    app, poller = imap_app(make_app, dovecot, tmp_path, folder="Support")
    poller.poll()
    client = dovecot.client()
    client.delete_folder("Support")
    client.logout()
    dovecot.append(raw, folder="Support")
    result = poller.poll()
    assert (result.found, result.stored, result.duplicates) == (1, 0, 1)
    app.processor.drain()
    assert cases(app) == 1


def test_idle_turns_new_mail_into_a_case_within_two_seconds(
    make_app: Callable[..., App], dovecot: Dovecot, tmp_path: Path
) -> None:
    """With the daemon watching the folder in IDLE, a mail appended to it is a case within
    two seconds, and the daemon stops within seconds."""
    app, _ = imap_app(make_app, dovecot, tmp_path, poll_seconds=3600)
    with running_daemon(app, workers=True):
        wait_for(lambda: dovecot_idlers(dovecot), timeout=10, what="the watcher in IDLE")
        dovecot.append(mail(message_id="<idle@customer.org>").as_bytes())
        wait_for(lambda: cases(app) == 1, timeout=2.0, what="a case from the IDLE push")
        started = time.monotonic()
    assert time.monotonic() - started < 5


def test_watcher_reconnects_after_the_connection_is_cut(
    make_app: Callable[..., App], dovecot: Dovecot, tmp_path: Path
) -> None:
    """The server goes away mid-session and comes back: the watcher reconnects by itself
    and goes on."""
    app, _ = imap_app(make_app, dovecot, tmp_path, poll_seconds=3600)
    with running_daemon(app, workers=True):
        wait_for(lambda: dovecot_idlers(dovecot), timeout=10, what="the watcher in IDLE")
        dovecot.stop()
        dovecot.start()
        dovecot.append(mail(message_id="<after-cut@customer.org>").as_bytes())
        wait_for(lambda: cases(app) == 1, timeout=15, what="a case after the reconnect")


def dovecot_idlers(dovecot: Dovecot) -> bool:
    """Whether a session has entered IDLE (Dovecot's verbose process titles name the
    command each imap process runs)."""
    return idle_sessions() > 0


def test_our_own_mail_in_the_folder_is_never_imported(
    make_app: Callable[..., App], dovecot: Dovecot, tmp_path: Path, sink: object
) -> None:
    """A copy of mailcase's own acknowledgement landing in the watched folder (a shared
    Sent folder, a BCC to itself) is recognised and dropped: no case, no answer."""
    app, poller = imap_app(make_app, dovecot, tmp_path)
    app.intake.accept(mail(message_id="<first@customer.org>").as_bytes(),
                      mail_from="ann@customer.org", rcpt_to=["support@example.com"],
                      source="test")
    app.processor.drain()
    with app.sessions() as session:
        own = session.scalars(select(OutboundMail.raw)).one()
    dovecot.append(own)
    assert poller.poll().stored == 1
    app.processor.drain()
    assert cases(app) == 1
    with app.sessions() as session:
        row = session.scalars(select(InboundMail).where(InboundMail.source == "imap")).one()
        assert row.status == "dropped"
        assert row.outcome and row.outcome.startswith("duplicate: our own mail")
        assert session.scalar(select(func.count()).select_from(OutboundMail)) == 1


def test_one_instance_watches_and_another_takes_over(
    make_app: Callable[..., App], dovecot: Dovecot, tmp_path: Path, database_url: str
) -> None:
    """Two instances on one PostgreSQL database: only one watches the mailbox; when it
    stops, the other takes over. (SQLite serves one host, where there is one watcher.)"""
    if not database_url.startswith("postgresql"):
        assert make_app().engine.dialect.name == "sqlite"
        return
    first, _ = imap_app(make_app, dovecot, tmp_path, poll_seconds=3600)
    second, _ = imap_app(make_app, dovecot, tmp_path, poll_seconds=3600)
    with running_daemon(second, workers=True):
        with running_daemon(first, workers=True):
            wait_for(lambda: idle_sessions() == 1, timeout=10, what="one watcher in IDLE")
            time.sleep(0.5)  # give a second watcher the chance to (wrongly) start
            assert idle_sessions() == 1
        wait_for(lambda: idle_sessions() == 1, timeout=15, what="the other instance taking over")
        dovecot.append(mail(message_id="<takeover@customer.org>").as_bytes())
        wait_for(lambda: cases(second) == 1, timeout=5, what="a case via the new watcher")


def idle_sessions() -> int:
    result = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    return sum("imap [" in line and "IDLE" in line for line in result.stdout.splitlines())
