"""What every subcommand shares: exit codes, loading settings and the wired App."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.exc import OperationalError

from mailcase import config, migrate
from mailcase.app import App
from mailcase.config import Settings

EXIT_USER = 1
EXIT_TEMPFAIL = 75  # sysexits.h EX_TEMPFAIL: the MTA keeps the mail and retries
EXIT_DATAERR = 65  # sysexits.h EX_DATAERR: the MTA bounces the mail
EXIT_CONFIG = 78  # sysexits.h EX_CONFIG


class UserError(Exception):
    """A mistake in what the user asked for; the message says what to do instead."""


def settings_of(args: argparse.Namespace) -> Settings:
    return config.load(config.config_path(args.config))


def open_app(args: argparse.Namespace) -> App:
    """The App for a command that works on an existing, current database."""
    app = App.build(settings_of(args))
    try:
        revision = migrate.current(app.engine)
    except OperationalError as exc:
        app.close()
        raise UserError(f"database {_where(app)} cannot be reached: {exc.orig}") from None
    if revision is None:
        app.close()
        raise UserError(
            f"database {_where(app)} is empty: run 'mailcase db upgrade' or start 'mailcase serve'"
        )
    try:
        app.ensure_schema()
    except migrate.SchemaBehind:
        app.close()
        raise
    return app


@contextmanager
def opened(args: argparse.Namespace) -> Iterator[App]:
    """``open_app`` for the length of a ``with`` block."""
    app = open_app(args)
    try:
        yield app
    finally:
        app.close()


def _where(app: App) -> str:
    return app.engine.url.render_as_string(hide_password=True)


def read_text_arg(text: str | None, file: str | None) -> str:
    """The text of ``--body`` or ``--body-file`` (``-`` for stdin)."""
    if file is not None:
        try:
            return sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read {file}: {exc}") from None
    if text is None:
        raise UserError("give the text with --body TEXT or --body-file PATH")
    return text
