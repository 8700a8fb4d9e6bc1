"""The IMAP poller against a real Dovecot: new mail becomes a case and is marked only after
the commit; a failure before it leaves the mail untouched; a crash between commit and mark
is healed by the next pass; a new UIDVALIDITY imports nothing twice."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy import event, func, select, update

from mailcase.app import App
from mailcase.cli import main
from mailcase.intake.imap import ImapPoller, PollError, mailbox_lock, poll_once
from mailcase.pipeline import stages
from mailcase.store.models import Case, InboundMail, OutboundMail
from tests.support.dovecot import PASSWORD, USER, Dovecot
from tests.support.servers import mail, running_daemon, wait_for


def imap_app(make_app: Callable[..., App], dovecot: Dovecot, tmp_path: Path,
             **imap: object) -> tuple[App, ImapPoller]:
    secret = tmp_path / "imap-password"
    secret.write_text(PASSWORD + "\n")
    settings = {"host": "127.0.0.1", "port": dovecot.port, "tls": "none",
                "username": USER, "password_file": str(secret), **imap}
    app = make_app(mailbox={"address": "support@example.com", "imap": settings})
    return app, ImapPoller(app.settings.mailbox[0], app.intake, app.polls)


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


def test_move_creates_a_missing_processed_folder(make_app: Callable[..., App],
                                                dovecot: Dovecot, tmp_path: Path) -> None:
    """acknowledge = "move" into a folder nobody created: the poller creates it and
    moves the stored mail there, instead of failing every pass on [TRYCREATE]."""
    dovecot.append(mail(message_id="<move1@customer.org>").as_bytes())
    _app, poller = imap_app(make_app, dovecot, tmp_path, acknowledge="move",
                           processed_folder="Stored")
    client = dovecot.client()
    assert not client.folder_exists("Stored")
    client.logout()
    result = poller.poll()
    assert (result.found, result.stored) == (1, 1)
    assert dovecot.flags() == {}
    assert len(dovecot.flags("Stored")) == 1
    dovecot.append(mail(message_id="<move2@customer.org>").as_bytes())
    assert poller.poll().stored == 1
    assert len(dovecot.flags("Stored")) == 2


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
        with pytest.raises(PollError, match="database down"):
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
    """Whether a session of this Dovecot has entered IDLE."""
    return dovecot.idle_sessions() > 0


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
            wait_for(lambda: dovecot.idle_sessions() == 1, timeout=10, what="one watcher in IDLE")
            time.sleep(0.5)  # give a second watcher the chance to (wrongly) start
            assert dovecot.idle_sessions() == 1
        wait_for(lambda: dovecot.idle_sessions() == 1, timeout=15,
                 what="the other instance taking over")
        dovecot.append(mail(message_id="<takeover@customer.org>").as_bytes())
        wait_for(lambda: cases(second) == 1, timeout=5, what="a case via the new watcher")


def token_command(tmp_path: Path, token: str) -> tuple[list[str], Path, Path]:
    """A stand-in OAuth helper: prints the token in a file and counts its runs."""
    current, runs = tmp_path / "current-token", tmp_path / "token-runs"
    current.write_text(token)
    script = tmp_path / "oauth-helper.sh"
    script.write_text(f"#!/bin/sh\necho run >> {runs}\ncat {current}\n")
    script.chmod(0o755)
    return [str(script), USER], current, runs


def runs_of(runs: Path) -> int:
    return len(runs.read_text().splitlines()) if runs.exists() else 0


def test_xoauth2_token_file_is_read_at_every_login(
    make_app: Callable[..., App], dovecot: Dovecot, tmp_path: Path
) -> None:
    """XOAUTH2 with a token file: the poller logs in with the file's token, and after the
    provider rotates the token (and something rewrites the file) the next pass works."""
    dovecot.set_password("token-one")
    token = tmp_path / "imap-token"
    token.write_text("token-one\n")
    dovecot.append(mail(message_id="<oauth-file1@customer.org>").as_bytes())
    _app, poller = imap_app(make_app, dovecot, tmp_path, auth="xoauth2",
                            token_file=str(token))
    assert poller.poll().stored == 1
    dovecot.set_password("token-two, a longer one")
    token.write_text("token-two, a longer one\n")
    dovecot.append(mail(message_id="<oauth-file2@customer.org>").as_bytes())
    assert poller.poll().stored == 1
    assert "method=XOAUTH2" in (dovecot.root / "dovecot.log").read_text()


def test_xoauth2_command_token_is_kept_until_refused_then_refreshed(
    make_app: Callable[..., App], dovecot: Dovecot, tmp_path: Path
) -> None:
    """A token from a command is reused while the server takes it; when the server
    refuses it (expired), the command is run again and the pass goes on."""
    dovecot.set_password("first-token")
    command, current, runs = token_command(tmp_path, "first-token")
    _app, poller = imap_app(make_app, dovecot, tmp_path, auth="xoauth2",
                            token_command=command)
    assert poller.poll().found == 0
    assert poller.poll().found == 0
    assert runs_of(runs) == 1  # the second pass reused the token
    dovecot.set_password("second-token, refreshed")
    current.write_text("second-token, refreshed")
    dovecot.append(mail(message_id="<oauth-cmd@customer.org>").as_bytes())
    assert poller.poll().stored == 1
    assert runs_of(runs) == 2


def test_a_refused_token_is_a_recorded_failure_with_the_mail_untouched(
    make_app: Callable[..., App], dovecot: Dovecot, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A fresh token the server refuses, and a helper that fails, are failed passes:
    one clear reason, counted in a row in mailbox_polls, mail left on the server, and
    neither the token nor the helper's arguments in the log."""
    command, _current, runs = token_command(tmp_path, "revoked-token")
    dovecot.append(mail(message_id="<oauth-refused@customer.org>").as_bytes())
    app, poller = imap_app(make_app, dovecot, tmp_path, auth="xoauth2",
                           token_command=[*command, "--client-secret=S3CRET"])
    with pytest.raises(PollError, match=r"XOAUTH2 login as support@example\.com refused"):
        poller.poll()
    assert runs_of(runs) == 1  # a fresh token refused: no second try on the spot
    other = tmp_path / "other"
    other.mkdir()
    broken, _, _ = token_command(other, "unused")
    Path(broken[0]).write_text("#!/bin/sh\necho 'refresh token revoked' >&2\nexit 3\n")
    poller.credentials.settings = poller.settings.model_copy(
        update={"token_command": tuple(broken)})
    with pytest.raises(PollError, match="exited with 3: refresh token revoked"):
        poller.poll()
    [record] = app.polls.all()
    assert (record.address, record.failures, record.last_success_at) == (
        "support@example.com", 2, None)
    assert record.last_error and "refresh token revoked" in record.last_error
    assert [flags for flags in dovecot.flags().values()] == [()]
    assert "revoked-token" not in caplog.text and "S3CRET" not in caplog.text


def test_a_refused_password_is_one_clear_failure(
    make_app: Callable[..., App], dovecot: Dovecot, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A wrong password: a failed pass saying the login was refused, without the
    password anywhere in the log."""
    app, poller = imap_app(make_app, dovecot, tmp_path)
    assert app.settings.mailbox[0].imap is not None
    password_file = app.settings.mailbox[0].imap.password_file
    assert password_file is not None
    password_file.write_text("wrong-Pa55word\n")
    with pytest.raises(PollError, match=r"IMAP login as support@example\.com refused"):
        poller.poll()
    assert "wrong-Pa55word" not in caplog.text


def test_every_pass_is_recorded_for_health_checks(
    make_app: Callable[..., App], dovecot: Dovecot, tmp_path: Path
) -> None:
    """A good pass records its time and ends a failure streak; a pass against a server
    that is down is recorded as a failure and leaves the last good time alone."""
    app, poller = imap_app(make_app, dovecot, tmp_path)
    poller.poll()
    [first] = app.polls.all()
    assert first.last_success_at is not None and first.failures == 0
    dovecot.stop()
    for attempt in (1, 2):
        with pytest.raises(PollError):
            poller.poll()
        [record] = app.polls.all()
        assert record.failures == attempt
        assert record.last_success_at == first.last_success_at
        assert record.last_error
    dovecot.start()
    poller.poll()
    [record] = app.polls.all()
    assert record.failures == 0
    assert record.last_success_at is not None and record.last_success_at >= first.last_success_at


def test_parked_mail_is_copied_to_the_quarantine_folder_once(
    make_app: Callable[..., App], dovecot: Dovecot, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A polled mail that cannot be processed is parked and its exact bytes copied to the
    quarantine folder (created if missing) on the next pass; never a second time."""
    raw = mail(message_id="<poison-imap@customer.org>").as_bytes()
    dovecot.append(raw)
    app, poller = imap_app(make_app, dovecot, tmp_path, quarantine_folder="Quarantine")

    def explode(_ctx: object) -> None:
        raise ValueError("matcher bug")

    monkeypatch.setattr("mailcase.pipeline.processor.PIPELINE",
                        tuple(explode if s is stages.match else s for s in stages.PIPELINE))
    poller.poll()
    with app.sessions() as session:
        session.execute(update(InboundMail).values(attempts=4))  # the last attempt is next
        session.commit()
    app.processor.drain()
    with app.sessions() as session:
        assert session.scalars(select(InboundMail.status)).one() == "parked"
    poller.poll()
    poller.poll()
    client = dovecot.client()
    try:
        client.select_folder("Quarantine")
        copies = client.fetch(client.search(["ALL"]), ["BODY.PEEK[]"])
    finally:
        client.logout()
    with app.sessions() as session:
        stored = session.execute(select(InboundMail.raw, InboundMail.quarantined_at)).one()
    assert stored.quarantined_at is not None
    assert stored.raw == raw.replace(b"\n", b"\r\n")  # as IMAP gave it
    assert [data[b"BODY[]"] for data in copies.values()] == [stored.raw]


def test_interval_polling_skips_a_mailbox_another_instance_holds(
    make_app: Callable[..., App], dovecot: Dovecot, tmp_path: Path
) -> None:
    """For servers without IDLE: a scheduled pass while another instance holds the
    mailbox's lock does nothing (PostgreSQL); once free, the pass polls. SQLite, one
    host, always polls."""
    dovecot.append(mail(message_id="<interval@customer.org>").as_bytes())
    app, poller = imap_app(make_app, dovecot, tmp_path)
    if app.engine.dialect.name == "postgresql":
        with mailbox_lock(app.engine, "support@example.com") as held:
            assert held
            assert poll_once(poller, app.engine) is None
        assert [flags for flags in dovecot.flags().values()] == [()]
    result = poll_once(poller, app.engine)
    assert result is not None and result.stored == 1


def test_xoauth2_idle_session_logs_in_again_when_its_token_is_old(
    make_app: Callable[..., App], dovecot: Dovecot, tmp_path: Path
) -> None:
    """An IDLE session does not outlive its token: after token_lifetime it logs out and
    in again with a fresh token from the command, and goes on turning mail into cases."""
    dovecot.set_password("idle-token-1")
    command, current, runs = token_command(tmp_path, "idle-token-1")
    app, _ = imap_app(make_app, dovecot, tmp_path, poll_seconds=3600, auth="xoauth2",
                      token_command=command, token_lifetime=1.5)
    with running_daemon(app, workers=True):
        wait_for(lambda: dovecot_idlers(dovecot), timeout=10, what="the watcher in IDLE")
        current.write_text("idle-token-2, after expiry")
        dovecot.set_password("idle-token-2, after expiry")
        wait_for(lambda: runs_of(runs) >= 2, timeout=10, what="a fresh token for a new login")
        dovecot.append(mail(message_id="<idle-oauth@customer.org>").as_bytes())
        wait_for(lambda: cases(app) == 1, timeout=10, what="a case on the new session")


def test_mailboxes_command_shows_a_stalled_poller(
    make_app: Callable[..., App], dovecot: Dovecot, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`mailcase mailboxes --json` reports each mailbox's last good poll and its failures
    in a row with the last error: what an operator looks at when mail stops coming."""
    _app, poller = imap_app(make_app, dovecot, tmp_path)
    poller.poll()
    dovecot.stop()
    with pytest.raises(PollError):
        poller.poll()
    capsys.readouterr()
    assert main(["-c", str(tmp_path / "mailcase.toml"), "mailboxes", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["address"] == "support@example.com"
    assert row["intake"] == f"imap {USER}@127.0.0.1:{dovecot.port}/INBOX"
    assert row["last_poll_at"] is not None and 0 <= row["last_poll_age_seconds"] < 60
    assert row["failures_in_a_row"] == 1
    assert "Connection refused" in row["last_error"]
    assert main(["-c", str(tmp_path / "mailcase.toml"), "mailboxes"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["MAILBOX", "INTAKE", "LAST", "GOOD", "POLL",
                                           "FAILURES", "LAST", "ERROR"]
    assert "Connection refused" in out


def test_a_quarantine_that_fails_does_not_fail_the_pass(
    make_app: Callable[..., App], dovecot: Dovecot, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """The server refuses the copy to the quarantine folder (over quota): the error is
    logged, but the pass still stores, marks and records new mail, and the processor is
    woken for it."""
    app, poller = imap_app(make_app, dovecot, tmp_path, quarantine_folder="Quarantine")

    def over_quota(*_args: object, **_kwargs: object) -> None:
        raise IMAPClientError("APPEND command error: NO [OVERQUOTA] Quota exceeded")

    with app.sessions.begin() as session:
        session.add(InboundMail(
            idempotency_key="parked-1", source="imap", mail_from="a@customer.org",
            rcpt_to=["support@example.com"], size=3, raw=b"abc", received_at=app.clock(),
            status="parked", attempts=5, next_attempt_at=app.clock()))
    woken: list[int] = []
    poller.on_stored = lambda: woken.append(1)
    dovecot.append(mail(message_id="<after-bad-quarantine@customer.org>").as_bytes())
    monkeypatch.setattr(IMAPClient, "append", over_quota)
    assert poller.poll().stored == 1
    assert woken == [1]
    [flags] = dovecot.flags().values()
    assert b"$MailcaseStored" in flags
    [record] = app.polls.all()
    assert record.failures == 0 and record.last_success_at is not None
    assert "could not copy parked mail" in caplog.text
    with app.sessions() as session:
        assert session.scalar(select(InboundMail.quarantined_at)
                              .where(InboundMail.idempotency_key == "parked-1")) is None
