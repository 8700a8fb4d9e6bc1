"""The IMAP poller: fetch new mail from a hosted mailbox, store it, then mark it.

By UID, never by sequence number; fetched with ``BODY.PEEK[]`` so the server sets no
``\\Seen`` on its own; handed to the intake, and only after the commit marked as the
mailbox says (a keyword by default, or ``\\Seen``, a move, a delete). A failure before
the commit leaves the mail untouched on the server for the next pass; a crash between
the commit and the mark makes the next pass find it again, where the intake knows it as
a duplicate and it is only marked. The same content key makes a UIDVALIDITY change
harmless: renumbered mail is recognised, not imported twice.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy import Engine, text

from mailcase.config import ImapSettings, MailboxSettings
from mailcase.intake import Intake, return_path

log = logging.getLogger(__name__)

FETCH_BATCH = 25
SEEN = b"\\Seen"
DELETED = b"\\Deleted"


class PollError(Exception):
    """The mailbox could not be polled (connection, login, folder); nothing was marked."""


@dataclass(frozen=True)
class PollResult:
    """What one pass did."""

    found: int
    stored: int
    duplicates: int


class ImapPoller:
    """Polls one mailbox's IMAP folder into the intake."""

    def __init__(self, mailbox: MailboxSettings, intake: Intake,
                 on_stored: Callable[[], None] = lambda: None) -> None:
        assert mailbox.imap is not None
        self.mailbox = mailbox
        self.settings: ImapSettings = mailbox.imap
        self.intake = intake
        self.on_stored = on_stored
        self.failures = 0

    def poll(self) -> PollResult:
        """One pass over the folder on a connection of its own."""
        try:
            with self.session() as client:
                client.select_folder(self.settings.folder)
                return self.catch_up(client)
        except (IMAPClientError, OSError, ssl.SSLError) as exc:
            raise self.failed(exc) from exc

    def failed(self, exc: BaseException) -> PollError:
        """Count and log a failed pass loudly; the error to raise."""
        self.failures += 1
        log.error("IMAP poll of %s failed (%d in a row): %s", self.mailbox.address,
                  self.failures, exc)
        return PollError(str(exc))

    def catch_up(self, client: IMAPClient) -> PollResult:
        """Store and mark whatever is new in the selected folder."""
        uids = client.search(self._unmarked())
        stored = duplicates = 0
        for start in range(0, len(uids), FETCH_BATCH):
            chunk = uids[start : start + FETCH_BATCH]
            fetched = client.fetch(chunk, ["BODY.PEEK[]"])
            for uid in chunk:
                raw = fetched.get(uid, {}).get(b"BODY[]")
                if raw is None:
                    continue  # expunged meanwhile by someone else
                accepted = self.intake.accept(
                    raw, mail_from=return_path(raw), rcpt_to=[self.mailbox.address],
                    source="imap",
                )
                self._mark(client, uid)  # only now: the mail is committed
                stored += not accepted.duplicate
                duplicates += accepted.duplicate
            if self.settings.acknowledge in ("move", "delete"):
                client.expunge()
        self.failures = 0
        if stored:
            self.on_stored()
        if uids:
            log.info("IMAP poll of %s: %d found, %d stored, %d already stored",
                     self.mailbox.address, len(uids), stored, duplicates)
        return PollResult(len(uids), stored, duplicates)

    def _unmarked(self) -> list[Any]:
        """Search criteria for the mail not yet marked as stored."""
        mode = self.settings.acknowledge
        if mode == "keyword":
            return ["UNKEYWORD", self.settings.keyword]
        if mode == "seen":
            return ["UNSEEN"]
        return ["NOT", "DELETED"]

    def _mark(self, client: IMAPClient, uid: int) -> None:
        mode = self.settings.acknowledge
        if mode == "keyword":
            client.add_flags([uid], [self.settings.keyword.encode()])
        elif mode == "seen":
            client.add_flags([uid], [SEEN])
        elif mode == "move":
            assert self.settings.processed_folder is not None
            client.copy([uid], self.settings.processed_folder)
            client.add_flags([uid], [DELETED])
        else:
            client.add_flags([uid], [DELETED])

    @contextmanager
    def session(self) -> Iterator[IMAPClient]:
        """A logged-in connection, TLS as configured, closed however the pass ends."""
        imap = self.settings
        context = ssl.create_default_context(cafile=str(imap.ca_file) if imap.ca_file else None)
        if not imap.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        client = IMAPClient(imap.host, port=imap.port, ssl=imap.tls == "implicit",
                            ssl_context=context, timeout=imap.timeout)
        try:
            if imap.tls == "starttls":
                client.starttls(context)
            client.login(imap.username, _password(imap))
            yield client
        finally:
            try:
                client.logout()
            except (IMAPClientError, OSError):
                client.shutdown()


class IdleWatcher:
    """Keeps one IMAP connection in IDLE and catches up whenever the server says so.

    The mail-room loop: catch up, IDLE, catch up again; IDLE is renewed every
    IDLE_RENEW seconds (servers drop idlers after 30 minutes; imapclient's docs ask for
    10 at most); any socket or protocol error ends the session and a new one starts
    after a capped exponential backoff. ``stop`` ends it within about a second.
    Without IDLE on the server, ``no_idle`` is called and the watcher ends, leaving the
    mailbox to interval polling.
    """

    IDLE_RENEW = 9 * 60
    BACKOFF_CAP = 300.0

    LEADER_RETRY = 5.0

    def __init__(self, poller: ImapPoller, stop: threading.Event,
                 no_idle: Callable[[], None], engine: Engine | None = None) -> None:
        self.poller = poller
        self.stop = stop
        self.no_idle = no_idle
        self.engine = engine

    def run(self) -> None:
        """Watch while this instance holds the mailbox (see ``_leadership``)."""
        while not self.stop.is_set():
            with self._leadership() as leading:
                if leading:
                    self._watch()
                    return
            self.stop.wait(self.LEADER_RETRY)

    @contextmanager
    def _leadership(self) -> Iterator[bool]:
        """On PostgreSQL, one instance watches a mailbox at a time: the holder of a
        session advisory lock, which the server frees when that instance dies, so
        another takes over. SQLite serves one host: always the leader."""
        if self.engine is None or self.engine.dialect.name != "postgresql":
            yield True
            return
        key = f"mailcase imap {self.poller.mailbox.address}"
        with self.engine.connect() as connection:
            held = connection.execute(
                text("SELECT pg_try_advisory_lock(hashtextextended(:key, 0))"), {"key": key}
            ).scalar()
            connection.commit()
            try:
                yield bool(held)
            finally:
                if held:
                    connection.execute(
                        text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))"),
                        {"key": key},
                    )
                    connection.commit()

    def _watch(self) -> None:
        delay = 1.0
        while not self.stop.is_set():
            try:
                if not self._session():
                    self.no_idle()
                    return
                delay = 1.0
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect after a pause
                self.poller.failed(exc)
                self.stop.wait(delay)
                delay = min(delay * 2, self.BACKOFF_CAP)

    def _session(self) -> bool:
        """One connection's life; False when the server has no IDLE."""
        with self.poller.session() as client:
            if b"IDLE" not in client.capabilities():
                return False
            client.select_folder(self.poller.settings.folder)
            while not self.stop.is_set():
                self.poller.catch_up(client)
                self._idle(client)
        return True

    def _idle(self, client: IMAPClient) -> None:
        client.idle()
        renew_at = time.monotonic() + self.IDLE_RENEW
        try:
            while not self.stop.is_set() and time.monotonic() < renew_at:
                if client.idle_check(timeout=1):
                    return  # something changed in the folder: catch up
        finally:
            client.idle_done()


def _password(imap: ImapSettings) -> str:
    try:
        return imap.password_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise PollError(f"password_file {imap.password_file}: {exc.strerror}") from None
