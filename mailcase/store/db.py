"""The database engine and sessions: SQLite (WAL, durable commits) or PostgreSQL via psycopg 3.

Every stage receives a ``sessionmaker`` from here; nothing else creates engines.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Engine,
    LargeBinary,
    Update,
    column,
    create_engine,
    event,
    func,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000
READ_ONLY = "mailcase_read_only"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite ``url``; None for another engine or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def create(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and write-ahead ``BEGIN IMMEDIATE``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if (path := sqlite_file(url)) is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _tune_sqlite(engine)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _tune_sqlite(engine: Engine) -> None:
    """Make SQLite safe for a mail gateway.

    * WAL lets readers (the CLI's list and show) run beside the daemon's writer.
    * ``synchronous=FULL``: a commit is on disk before we answer 250, so a power cut
      cannot lose mail we acknowledged.
    * ``BEGIN IMMEDIATE``: every writing transaction takes the write lock up front and
      waits for it (busy timeout) instead of failing with "database is locked" when a
      deferred reader tries to upgrade to a writer. Sessions from ``reader_factory``
      begin deferred and never wait for it.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _enter_wal(cursor)
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        reading = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")


def _enter_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, waiting while another connection switches a new
    database at the same moment: SQLite answers that race "database is locked" at once,
    without its busy handler (two instances starting together on an empty file)."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    for pause in itertools.chain((0.001, 0.005, 0.01, 0.05), itertools.repeat(0.1)):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)


class GateTimeout(OperationalError):
    """The writer gate stayed closed as long as SQLite's busy timeout: the caller
    answers as it would to a locked database (SMTP 451, exit 75)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"waiting for {path.name}", None, Exception("writer gate timeout"))


class WriterGate:
    """Lets the intake's commits go ahead of the processor's on SQLite.

    SQLite has one write lock and no queue for it: a processor running transaction
    after transaction would take it again before a waiting SMTP commit's busy handler
    (which sleeps 1, 2, 5, 10… ms between looks) noticed it was free, and senders would
    wait for processing. Two flocks beside the database make the order explicit: the
    intake announces itself on the first, then takes the second for its transaction;
    the processor passes the first (waiting while a commit of new mail is announced)
    and holds the second for each of its transactions. New mail waits for at most the
    one processing transaction already running. No wait lasts longer than SQLite's
    busy timeout (then GateTimeout, a temporary failure). The files take the database
    file's mode and owner, like SQLite's own -wal and -shm; where they cannot be
    opened (another user's files), the gate stays open and SQLite's lock alone
    decides. On PostgreSQL, whose row locks need no help, the gate is open.
    """

    POLL_SECONDS = (0.0002, 0.0005, 0.001, 0.002)

    def __init__(self, database: Path | None,
                 timeout: float = SQLITE_BUSY_TIMEOUT_MS / 1000) -> None:
        self.database = database
        self.timeout = timeout
        # path: the announce lock; None when the gate is open (PostgreSQL, in-memory,
        # or gate files this user cannot open).
        self.path = database.with_name(database.name + "-gate") if database else None
        self.turn_path = database.with_name(database.name + "-gate-turn") if database else None
        self._aligned: set[Path] = set()

    @classmethod
    def for_engine(cls, engine: Engine) -> WriterGate:
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        if not database or database == ":memory:":
            return cls(None)
        return cls(Path(database))

    @contextmanager
    def first(self) -> Iterator[None]:
        """Hold the gate for a commit that must not wait behind the processor."""
        with self._flock(self.path, fcntl.LOCK_EX), self._flock(self.turn_path, fcntl.LOCK_EX):
            yield

    @contextmanager
    def turn(self) -> Iterator[None]:
        """A processing transaction's turn: after any announced commit of new mail."""
        self._wait_until_free(self.path)  # while new mail is announced
        with self._flock(self.turn_path, fcntl.LOCK_EX):
            yield

    def wanted(self) -> bool:
        """Whether a commit of new mail is announced and waiting for the processor's turn
        to end (a processing batch then commits at once)."""
        fd = None if self.path is None else self._open(self.path)
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    @contextmanager
    def _flock(self, path: Path | None, mode: int) -> Iterator[None]:
        fd = None if path is None or self.path is None else self._open(path)
        if fd is None:
            yield
            return
        assert path is not None
        try:
            self._wait(fd, mode, path)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _wait_until_free(self, path: Path | None) -> None:
        """Return once no one holds ``path`` exclusively (taking and dropping a shared
        lock), without keeping it."""
        fd = None if path is None or self.path is None else self._open(path)
        if fd is not None:
            assert path is not None
            try:
                self._wait(fd, fcntl.LOCK_SH, path)
            finally:
                os.close(fd)

    def _open(self, path: Path) -> int | None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except PermissionError:
            log.warning("cannot open %s (another user's file?); SQLite's lock alone orders "
                        "the writers", path)
            self.path = None  # open from now on
            return None
        if path not in self._aligned:  # once per file: the database's mode and owner
            self._align(fd)
            self._aligned.add(path)
        return fd

    def _align(self, fd: int) -> None:
        assert self.database is not None
        try:
            existing = self.database.stat()
        except OSError:
            return
        mine = os.fstat(fd)
        with contextlib.suppress(OSError):  # not ours to change: leave it
            if mine.st_mode & 0o777 != existing.st_mode & 0o666:
                os.fchmod(fd, existing.st_mode & 0o666)
            if (mine.st_uid, mine.st_gid) != (existing.st_uid, existing.st_gid):
                os.fchown(fd, existing.st_uid, existing.st_gid)  # as root only

    def _wait(self, fd: int, mode: int, path: Path) -> None:
        deadline = time.monotonic() + self.timeout
        for attempt in itertools.count():
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise GateTimeout(path) from None
                time.sleep(self.POLL_SECONDS[min(attempt, len(self.POLL_SECONDS) - 1)])


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit, so results can be shown after it."""
    return sessionmaker(engine, expire_on_commit=False)


def reader_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reading only: on SQLite they never wait for the writer's lock."""
    return sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def insert_unless_present(
    session: Session, model: type[Any], values: dict[str, Any], keys: list[str]
) -> Any:
    """Insert a row unless one with the same ``keys`` exists, without failing the transaction.

    Returns the new row's primary key, or None when the row was already there.

    Two instances meeting the same new sender (or attachment) at once would otherwise
    collide on a unique key and roll back a whole message; ON CONFLICT DO NOTHING lets
    both go on and read the one row.
    """
    primary = model.__mapper__.primary_key[0]
    return session.execute(insert_or_nothing(session, model, values, keys)
                           .returning(primary)).scalar()


def insert_or_nothing(
    session: Session, model: type[Any], values: dict[str, Any] | None, keys: list[str]
) -> Any:
    """INSERT … ON CONFLICT (``keys``) DO NOTHING in the session's dialect; add
    ``.returning(model)`` to get the new row as an object in one round trip. Without
    ``values`` the statement takes a list of rows when executed (one multi-row INSERT)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert(model) if dialect == "postgresql" else sqlite_insert(model)
    if values is not None:
        insert = insert.values(**values)
    return insert.on_conflict_do_nothing(index_elements=keys)


BLOB_SLICE = 1 << 20
"""Octets of a large stored mail read at a time (see raw_slices)."""


def raw_slices(session: Session, row_id: int, size: int) -> Iterator[bytes]:
    """The raw bytes of inbound mail ``row_id`` (``size`` octets long) a slice at a time,
    in the session's transaction, so a 25 MB mail is never one 25 MB bytes object here."""
    return _slices(session, "inbound_mail", "raw", column("id") == row_id, size)


def blob_slices(session: Session, sha256: str, size: int) -> Iterator[bytes]:
    """The content of the stored file ``sha256`` (``size`` octets) a slice at a time, as
    ``raw_slices`` reads a mail."""
    return _slices(session, "blobs", "content", column("sha256") == sha256, size)


def _slices(session: Session, table_name: str, column_name: str,
            row: ColumnElement[bool], size: int) -> Iterator[bytes]:
    """Column ``column_name`` of the ``row`` of ``table_name`` a slice at a time.

    SQLite reads through incremental blob I/O (by the row's rowid); PostgreSQL through
    ``substr`` of the bytea. A small value is read in one go.
    """
    source, value = table(table_name), column(column_name, LargeBinary)
    if size <= BLOB_SLICE:
        yield bytes(session.execute(select(value).select_from(source).where(row)).scalar_one())
        return
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        rowid: int = connection.execute(
            select(column("rowid")).select_from(source).where(row)).scalar_one()
        dbapi = connection.connection.dbapi_connection
        assert dbapi is not None
        with dbapi.blobopen(table_name, column_name, rowid, readonly=True) as blob:
            while piece := blob.read(BLOB_SLICE):
                yield piece
        return
    for start in range(1, size + 1, BLOB_SLICE):  # bytea positions count from 1
        piece = select(func.substr(value, start, BLOB_SLICE)).select_from(source).where(row)
        yield bytes(connection.execute(piece).scalar_one())


@contextmanager
def one_instance(engine: Engine | None, key: str) -> Iterator[bool]:
    """Whether this instance may do the job ``key`` names now, held for the block.

    On PostgreSQL, one instance at a time: the holder of a session advisory lock, which
    the server frees when that instance dies, so another takes over. SQLite serves one
    host (and its writers queue for one lock): always yes.
    """
    if engine is None or engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as connection:
        held = connection.execute(
            text("SELECT pg_try_advisory_lock(hashtextextended(:key, 0))"), {"key": key}
        ).scalar()
        connection.commit()
        try:
            yield bool(held)
        finally:
            if held:
                connection.execute(
                    text("SELECT pg_advisory_unlock(hashtextextended(:key, 0))"), {"key": key}
                )
                connection.commit()


def changed_rows(session: Session, statement: Update) -> int:
    """Run an UPDATE in ``session``; how many rows it changed (a conditional UPDATE
    that changed none lost a race, or found nothing left to do)."""
    result = session.execute(statement)
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
