"""The ``mailcase`` command: parse arguments, load the config, run one subcommand.

A user error ends with one line on stderr and a non-zero exit, never a traceback: 2 for
a mistake in the arguments (whether argparse or the command found it), 1 for a
well-formed request that failed or was refused, 78 for the configuration, 70 for a bug.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from sqlalchemy.exc import SQLAlchemyError

from mailcase import __version__
from mailcase.cases.errors import BadValue, CaseError
from mailcase.cli import (
    admin,
    apikeys,
    cases,
    collaborators,
    mailboxes,
    outbox,
    serving,
    staff,
    webhooks,
)
from mailcase.cli.common import (
    EXIT_CONFIG,
    EXIT_PIPE,
    EXIT_SOFTWARE,
    EXIT_USAGE,
    EXIT_USER,
    UsageError,
    UserError,
    usage_line,
)
from mailcase.config import ConfigError
from mailcase.identity.tokens import SecretError
from mailcase.intake.smtpauth import AuthFileError
from mailcase.outbound.templates import TemplateProblem
from mailcase.store.migrate import SchemaBehind

Handler = Callable[[argparse.Namespace], int]
DEBUG_ENV = "MAILCASE_DEBUG"


class Parser(argparse.ArgumentParser):
    """argparse, with usage mistakes told in one line like every other error. Each
    command's parser leaves its name (``mailcase cases list``) in the parsed arguments
    (the innermost one's wins), so a mistake its handler finds is told the same way."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_defaults(prog=self.prog)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, usage_line(self.prog, message))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mailcase", description="Email-to-case gateway: mail in, cases out.")
    parser.add_argument("-c", "--config", metavar="PATH",
                        help="config file (default: $MAILCASE_CONFIG, else ./mailcase.toml)")
    parser.add_argument("--version", action="version", version=f"mailcase {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serving.register(commands)
    admin.register(commands)
    apikeys.register(commands)
    cases.register(commands)
    collaborators.register(commands)
    mailboxes.register(commands)
    outbox.register(commands)
    staff.register(commands)
    webhooks.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return _run(args)
    except BrokenPipeError:
        # `mailcase … | head`: the reader has all it wanted. Stop quietly, as a Unix
        # tool killed by SIGPIPE does, and keep the interpreter's final flush quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE


def _run(args: argparse.Namespace) -> int:
    """The command's handler, its errors turned into one line on stderr and an exit code."""
    handler: Handler = args.handler
    try:
        code = handler(args)
        sys.stdout.flush()  # a reader that went away is found here, not at exit
        return code
    except BrokenPipeError:
        raise
    except (ConfigError, SecretError, TemplateProblem, SchemaBehind, AuthFileError) as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except (UsageError, BadValue) as exc:
        sys.stderr.write(usage_line(args.prog, str(exc)))
        return EXIT_USAGE
    except (CaseError, UserError) as exc:
        return _fail(str(exc), EXIT_USER)
    except SQLAlchemyError as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        return _fail(f"database error: {reason}", EXIT_SOFTWARE)
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        logging.getLogger("mailcase").debug("unexpected error", exc_info=exc)
        reason = " ".join(str(exc).split())
        return _fail(f"unexpected error: {type(exc).__name__}: {reason} "
                     f"(set {DEBUG_ENV}=1 to see where)", EXIT_SOFTWARE)


def _fail(message: str, code: int) -> int:
    print(f"mailcase: {message}", file=sys.stderr)
    return code
