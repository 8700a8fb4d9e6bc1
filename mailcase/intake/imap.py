"""The IMAP poller: fetch new mail from a hosted mailbox, store it, then mark it.

By UID, never by sequence number; fetched with ``BODY.PEEK[]`` so the server sets no
``\\Seen`` on its own; handed to the intake, and only after the commit marked as the
mailbox says (a keyword by default, or ``\\Seen``, a move, a delete). A failure before
the commit leaves the mail untouched on the server for the next pass; a crash between
the commit and the mark makes the next pass find it again, where the intake knows it as
a duplicate and it is only marked. The same content key makes a UIDVALIDITY change
harmless: renumbered mail is recognised, not imported twice. Every pass is recorded
(``PollRecord``) for health checks; parked mail may be copied to a quarantine folder.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from mailcase.config import ImapSettings, MailboxSettings
from mailcase.intake.accept import Intake, return_path
from mailcase.intake.imapauth import Connector, Credentials
from mailcase.intake.polls import PollRecord
from mailcase.store.db import one_instance

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

    def __init__(self, mailbox: MailboxSettings, intake: Intake, record: PollRecord,
                 on_stored: Callable[[], None] = lambda: None) -> None:
        assert mailbox.imap is not None
        self.mailbox = mailbox
        self.settings: ImapSettings = mailbox.imap
        self.intake = intake
        self.record = record
        self.on_stored = on_stored
        self.connector = Connector(mailbox.imap)
        self.failures = 0
        self.processed_ready = False

    def poll(self) -> PollResult:
        """One pass over the folder on a connection of its own."""
        try:
            with self.session() as client:
                self.open_folder(client)
                return self.catch_up(client)
        except Exception as exc:  # any failure is a failed pass, counted
            raise self.failed(exc) from exc

    def failed(self, exc: BaseException) -> PollError:
        """Count, record and log a failed pass loudly; the error to raise."""
        self.failures += 1
        reason = str(exc) or type(exc).__name__
        try:
            self.record.failed(self.mailbox.address, reason)
        except Exception as db_error:  # noqa: BLE001 - the database may be what failed
            log.error("could not record the failed IMAP poll of %s: %s",
                      self.mailbox.address, db_error)
        log.error("IMAP poll of %s failed (%d in a row; mail stays on the server): %s",
                  self.mailbox.address, self.failures, reason)
        return PollError(reason)

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
        try:
            self.record.succeeded(self.mailbox.address)
        except SQLAlchemyError as exc:  # the mail is safe; only the health record is late
            log.error("could not record the IMAP poll of %s: %s", self.mailbox.address, exc)
        self._quarantine(client)
        return PollResult(len(uids), stored, duplicates)

    def open_folder(self, client: IMAPClient) -> None:
        """Select the watched folder, first creating the folder mail is moved to when it
        is missing (checked once per poller): a COPY into a folder that does not exist
        fails with [TRYCREATE], and would fail every pass after storing the mail."""
        folder = self.settings.processed_folder
        if self.settings.acknowledge == "move" and folder and not self.processed_ready:
            if not client.folder_exists(folder):
                client.create_folder(folder)
                log.warning("created the IMAP folder %r of %s, where stored mail is moved",
                            folder, self.mailbox.address)
            self.processed_ready = True
        client.select_folder(self.settings.folder)

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

    def _quarantine(self, client: IMAPClient) -> None:
        """Copy parked mail to the quarantine folder, once each (a crash between the
        copy and its record may leave a second copy there, never none)."""
        folder = self.settings.quarantine_folder
        if folder is None:
            return
        copied = 0
        try:
            for mail in self.record.to_quarantine(self.mailbox.address):
                if not copied and not client.folder_exists(folder):
                    client.create_folder(folder)
                client.append(folder, mail.raw, flags=(), msg_time=mail.received_at)
                self.record.quarantined(mail.id)
                copied += 1
        except (IMAPClientError, OSError, SQLAlchemyError) as exc:
            # Never fails the pass: the mail is stored and parked; the next pass retries.
            log.error("IMAP: could not copy parked mail of %s to %s: %s",
                      self.mailbox.address, folder, exc)
        if copied:
            log.warning("IMAP: %d parked mail of %s copied to %s", copied,
                        self.mailbox.address, folder)

    def session(self) -> AbstractContextManager[IMAPClient]:
        """A logged-in connection, TLS as configured, closed however the pass ends."""
        return self.connector.session()

    @property
    def credentials(self) -> Credentials:
        return self.connector.credentials

    @property
    def logged_in_at(self) -> float:
        """When the current session logged in (monotonic)."""
        return self.connector.logged_in_at


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
        """Watch while this instance holds the mailbox (see ``mailbox_lock``)."""
        while not self.stop.is_set():
            with mailbox_lock(self.engine, self.poller.mailbox.address) as leading:
                if leading:
                    self._watch()
                    return
            self.stop.wait(self.LEADER_RETRY)

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
            self.poller.open_folder(client)
            ends = self.poller.credentials.session_ends(self.poller.logged_in_at)
            while not self.stop.is_set() and time.monotonic() < ends:
                self.poller.catch_up(client)
                self._idle(client, min(ends, time.monotonic() + self.IDLE_RENEW))
        return True

    def _idle(self, client: IMAPClient, until: float) -> None:
        """IDLE until the server reports a change, ``until`` (monotonic), or stop."""
        client.idle()
        try:
            while not self.stop.is_set() and time.monotonic() < until:
                if client.idle_check(timeout=1):
                    return  # something changed in the folder: catch up
                if _hung_up(client.socket()):
                    # imapclient's idle_check swallows an EOF and would return nothing,
                    # at once, forever: a server that died must end the session here.
                    raise ConnectionError("the IMAP server closed the connection")
        finally:
            client.idle_done()


def _hung_up(sock: socket.socket) -> bool:
    """Whether the peer closed the connection (or it broke), without reading from it."""
    poller = select.poll()
    poller.register(sock, getattr(select, "POLLRDHUP", 0) | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(0))


def mailbox_lock(engine: Engine | None, address: str) -> AbstractContextManager[bool]:
    """Whether this instance may poll ``address`` now, held for the block: on
    PostgreSQL one instance polls a mailbox at a time (see store.db.one_instance)."""
    return one_instance(engine, f"mailcase imap {address}")


def poll_once(poller: ImapPoller, engine: Engine | None) -> PollResult | None:
    """One scheduled pass for a server without IDLE, unless another instance holds the
    mailbox; a failure is logged (by the poller) and the next pass tries again."""
    try:
        with mailbox_lock(engine, poller.mailbox.address) as leading:
            return poller.poll() if leading else None
    except PollError:
        return None  # counted, recorded and logged by the poller
    except Exception as exc:  # noqa: BLE001 - the lock's database is down: a failed pass
        poller.failed(exc)
        return None
