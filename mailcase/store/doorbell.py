"""Waking a running daemon when another process commits work for it.

The database is the queue: the daemon finds new inbound and outbound mail by looking,
every ``processing.poll_seconds``, and at once when its own listener commits mail. An
agent's ``mailcase cases reply`` (or ``outbox retry``, ``inbound replay``, ``ingest``)
commits from another process, and without a word the answer would wait for the next
look. After such a commit the command rings the doorbell:

* On SQLite, a datagram to a Unix socket beside the database file
  (``mailcase.db-wake``), which the daemon binds. Permissions are the file system's,
  as for the database itself; nobody listening is not an error.
* On PostgreSQL, ``NOTIFY mailcase_work``: every daemon on the database (one per host)
  LISTENs on a connection of its own, so the instance that is free sends the mail.

A ring carries nothing but "look now"; losing one costs at most one poll interval.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from mailcase.store import db

log = logging.getLogger(__name__)

CHANNEL = "mailcase_work"
SOCKET_SUFFIX = "-wake"
SUN_PATH_MAX = 107  # sockaddr_un.sun_path less its terminating NUL, on Linux
LISTEN_TIMEOUT = 1.0  # how often a listening thread looks whether it should stop
RECONNECT_SECONDS = 5.0

Rung = Callable[[], None]


class Listening:
    """A daemon's open ear; ``close`` stops it (within about LISTEN_TIMEOUT)."""

    def __init__(self, thread: threading.Thread | None, stop: threading.Event) -> None:
        self.thread = thread
        self.stop = stop

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(LISTEN_TIMEOUT * 3)


class Doorbell:
    """No daemon can be woken (an in-memory database): ringing and listening do nothing."""

    def ring(self) -> None:
        """Tell a running daemon there is work; never fails the caller."""

    def listen(self, rung: Rung) -> Listening:
        """Call ``rung`` (from a thread of its own) whenever another process rings."""
        return Listening(None, threading.Event())

    @staticmethod
    def for_engine(engine: Engine) -> Doorbell:
        """The doorbell of the database ``engine`` opens."""
        if db.is_postgresql(engine):
            return NotifyDoorbell(engine)
        path = db.sqlite_file(engine.url.render_as_string(hide_password=False))
        if path is None:
            return Doorbell()
        return SocketDoorbell(path.with_name(path.name + SOCKET_SUFFIX))


class SocketDoorbell(Doorbell):
    """SQLite: a Unix datagram socket beside the database file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _address(self) -> str | None:
        address = os.fspath(self.path.absolute())
        return address if len(address.encode()) <= SUN_PATH_MAX else None

    def ring(self) -> None:
        address = self._address()
        if address is None:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            try:
                sock.sendto(b".", address)
            except (FileNotFoundError, ConnectionRefusedError, BlockingIOError):
                pass  # no daemon running, or it has been told already
            except OSError as exc:
                log.warning("cannot wake the daemon through %s (%s); it will look within "
                            "processing.poll_seconds", self.path, exc.strerror)

    def listen(self, rung: Rung) -> Listening:
        stop = threading.Event()
        address = self._address()
        if address is None:
            log.warning("the wake socket path %s is longer than a Unix socket allows; "
                        "changes from the command line are picked up within "
                        "processing.poll_seconds", self.path)
            return Listening(None, stop)
        if _answers(address):
            log.warning("another daemon listens on the wake socket %s; this one is not "
                        "woken by the command line (two daemons on one SQLite file?)",
                        self.path)
            return Listening(None, stop)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            _unlink_stale(self.path)
            sock.bind(address)
            bound = self.path.stat()
            _align(self.path, self.path.with_name(self.path.name.removesuffix(SOCKET_SUFFIX)))
        except OSError as exc:
            sock.close()
            log.warning("cannot listen on the wake socket %s (%s); changes from the command "
                        "line are picked up within processing.poll_seconds",
                        self.path, exc.strerror)
            return Listening(None, stop)
        sock.settimeout(LISTEN_TIMEOUT)

        def run() -> None:
            with sock:
                while not stop.is_set():
                    try:
                        sock.recv(64)
                    except TimeoutError:
                        continue
                    rung()
            with contextlib.suppress(OSError):  # only our own, not a successor's
                now = self.path.stat()
                if (now.st_ino, now.st_dev) == (bound.st_ino, bound.st_dev):
                    self.path.unlink()

        thread = threading.Thread(target=run, daemon=True, name="wake socket")
        thread.start()
        return Listening(thread, stop)


class NotifyDoorbell(Doorbell):
    """PostgreSQL: NOTIFY and LISTEN on one channel."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ring(self) -> None:
        try:
            with self.engine.connect() as connection:
                connection.execute(text(f"NOTIFY {CHANNEL}"))
                connection.commit()
        except SQLAlchemyError as exc:  # the work is committed; waking is a courtesy
            log.warning("cannot wake the daemons (NOTIFY failed: %s); they will look "
                        "within processing.poll_seconds", exc)

    def listen(self, rung: Rung) -> Listening:
        stop = threading.Event()
        url = self.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False)

        def run() -> None:
            while not stop.is_set():
                try:
                    with psycopg.connect(url, autocommit=True) as connection:
                        connection.execute(f"LISTEN {CHANNEL}")
                        rung()  # whatever was rung while we were not listening
                        while not stop.is_set():
                            for _ in connection.notifies(timeout=LISTEN_TIMEOUT):
                                rung()
                except psycopg.Error as exc:
                    log.warning("listening for wake-ups failed (%s); again in %s s",
                                exc, RECONNECT_SECONDS)
                    stop.wait(RECONNECT_SECONDS)

        thread = threading.Thread(target=run, daemon=True, name="wake listener")
        thread.start()
        return Listening(thread, stop)


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.lstat().st_mode)
    except FileNotFoundError:
        return False


def _answers(address: str) -> bool:
    """Whether a live socket is bound at ``address`` (a stale file refuses)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(address)
        except OSError:
            return False
    return True


def _unlink_stale(path: Path) -> None:
    """Remove a socket left by a daemon that did not stop cleanly (never another file)."""
    if _is_socket(path):
        path.unlink()


def _align(path: Path, database: Path) -> None:
    """The socket takes the database file's mode and owner, so whoever may write the
    database may ring (a socket needs write permission to be sent to)."""
    with contextlib.suppress(OSError):
        existing = database.stat()
        os.chmod(path, existing.st_mode & 0o666)
        os.chown(path, existing.st_uid, existing.st_gid)
