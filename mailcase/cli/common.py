"""What every subcommand shares: exit codes, loading settings and the wired App."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from mailcase import config
from mailcase.app import App
from mailcase.config import Settings
from mailcase.store import migrate

INT_MAX = 2**31 - 1  # the widest integer column of the store
EXIT_USER = 1  # a well-formed request that failed or was refused (no such case, say)
EXIT_USAGE = 2  # a mistake in the command line, as argparse's own
EXIT_TEMPFAIL = 75  # sysexits.h EX_TEMPFAIL: the MTA keeps the mail and retries
EXIT_DATAERR = 65  # sysexits.h EX_DATAERR: the MTA bounces the mail
EXIT_CONFIG = 78  # sysexits.h EX_CONFIG
EXIT_UNAVAILABLE = 69  # sysexits.h EX_UNAVAILABLE: check-config found a server not answering
EXIT_SOFTWARE = 70  # sysexits.h EX_SOFTWARE: a bug, not the user's mistake
EXIT_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool whose reader went away


class UserError(Exception):
    """A request that cannot be done as asked; the message says what to do instead."""


class UsageError(Exception):
    """A mistake in the command line itself that argparse cannot see (options that go
    together or exclude each other, a value of the wrong form): exit 2, as argparse's."""


def usage_line(prog: str, message: str) -> str:
    """How a usage mistake is told: one line naming the command, as argparse does."""
    return f"{prog}: {message} (see '{prog} --help')\n"


def settings_of(args: argparse.Namespace) -> Settings:
    return config.load(config.config_path(args.config))


def schema_revision(settings: Settings) -> str | None:
    """The configured database's schema revision (None when empty), or one clear error."""
    try:
        return migrate.revision_of(settings.database.url)
    except migrate.StoreUnreachable as exc:
        raise UserError(str(exc)) from None


def open_app(args: argparse.Namespace) -> App:
    """The App for a command that works on an existing database at the current schema."""
    settings = settings_of(args)
    revision = schema_revision(settings)
    if revision is None:
        raise UserError(
            f"database {make_url(settings.database.url).render_as_string(hide_password=True)} "
            "is empty: run 'mailcase db upgrade' or start 'mailcase serve'"
        )
    if revision != migrate.head():
        raise migrate.SchemaBehind(migrate.behind_message(revision))
    return App.build(settings)


@contextmanager
def opened(args: argparse.Namespace) -> Iterator[App]:
    """``open_app`` for the length of a ``with`` block."""
    app = open_app(args)
    try:
        yield app
    finally:
        app.close()


@contextmanager
def changing(args: argparse.Namespace) -> Iterator[tuple[App, Session]]:
    """One transaction on the opened App; once it has committed, a running daemon is
    woken (store.doorbell) to send or process what it queued now, not at its next look."""
    with opened(args) as app:
        with app.sessions.begin() as session:
            yield app, session
        app.doorbell.ring()


def positive_int(text: str) -> int:
    """An argparse type for counts such as --limit."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= INT_MAX:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and {INT_MAX}")
    return value


def read_text_arg(text: str | None, file: str | None) -> str:
    """The text of ``--body`` or ``--body-file`` (``-`` for stdin)."""
    if file is not None:
        try:
            return sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read {file}: {exc}") from None
    if text is None:
        raise UsageError("give the text with --body TEXT or --body-file PATH")
    return text


def new_password(who: str, *, from_stdin: bool) -> str:
    """A new password for ``who``: one line of stdin (for scripts), else asked for twice
    on the terminal without echo."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass(f"password for {who}: ")
    if getpass.getpass("again: ") != password:
        raise UserError("the two passwords differ")
    return password
