"""Running the daemon: serve, work, check-config, and hash-password for SMTP AUTH users."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

from mailcase import config, logs
from mailcase.app import App
from mailcase.cli.common import (
    EXIT_CONFIG,
    EXIT_UNAVAILABLE,
    UsageError,
    UserError,
    new_password,
    schema_revision,
    settings_of,
)
from mailcase.config import ConfigError, Settings
from mailcase.intake.smtpauth import hash_password
from mailcase.outbound.templates import BUILT_IN, REQUIRED_SETS, Templates
from mailcase.service import preflight, probes
from mailcase.service.daemon import Daemon, ListenError
from mailcase.service.systemd import ServiceManager, passed_sockets
from mailcase.service.worker import WorkerProcess, read_settings

MIN_PASSWORD = 12


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the daemon (SMTP listener and workers)")
    serve.set_defaults(handler=cmd_serve)

    work = commands.add_parser(
        "work", help="process and send mail only, no listener (serve starts one itself)")
    work.add_argument("--wake-fd", type=int, help=argparse.SUPPRESS)
    work.add_argument("--settings-fd", type=int, help=argparse.SUPPRESS)
    work.add_argument("--nice", type=int, default=0, help="lower the CPU priority by N")
    work.set_defaults(handler=cmd_work)

    check = commands.add_parser(
        "check-config", help="check what a start needs: config, templates, secret files, "
                             "ports, database and schema; and whether the smarthost and "
                             "the IMAP servers answer")
    check.add_argument("--no-ports", action="store_true",
                       help="leave out the listening ports (while the daemon runs)")
    check.add_argument("--offline", action="store_true",
                       help="leave out the smarthost and IMAP servers (for systemd's "
                            "ExecReload/ExecStartPre: a start waits for them anyway)")
    check.set_defaults(handler=cmd_check_config)

    hashing = commands.add_parser(
        "hash-password", help="print a user:hash line for smtp.auth_file (password on stdin "
                              "or asked for)")
    hashing.add_argument("user", help="the SMTP AUTH user name")
    hashing.set_defaults(handler=cmd_hash_password)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    redactor = logs.configure(settings)
    first_start = schema_revision(settings) is None
    app = App.build(settings, create_secret=first_start)
    if first_start:
        redactor.add(*logs.secrets_of(settings))  # the token secret may have just been made
    try:
        app.ensure_schema()
        if problems := app.owner_problems():
            raise ConfigError("; ".join(problems))
        # Taken out of the environment before the processing child starts: it must
        # neither claim the sockets nor answer the service manager.
        manager = ServiceManager.from_environment(os.environ)
        sockets = passed_sockets(os.environ)
        path = config.config_path(args.config).resolve()
        child = (WorkerProcess(path, settings) if settings.processing.worker_process
                 else None)
        daemon = Daemon(app, workers=child is None, worker_process=child, manager=manager,
                        sockets=sockets, config_path=path)
        asyncio.run(daemon.serve_forever())
    except ListenError as exc:
        raise UserError(str(exc)) from None
    finally:
        app.close()
    return 0


def cmd_work(args: argparse.Namespace) -> int:
    """The processor and the outbox sender without a listener: the child ``serve``
    starts (woken through ``--wake-fd``, its settings from ``--settings-fd``), or a
    processing-only instance on PostgreSQL (which reads its config file, and again on
    SIGHUP)."""
    # serve's child never reloads by itself: serve replaces it with one that has the new
    # settings. SIGHUP's default would end it.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if args.nice:
        os.nice(args.nice)
    child = args.settings_fd is not None
    settings = read_settings(args.settings_fd) if child else settings_of(args)
    logs.configure(settings)
    app = App.build(settings)
    try:
        app.ensure_schema()
        path = None if child else config.config_path(args.config).resolve()
        daemon = Daemon(app, listen=False, config_path=path)
        asyncio.run(daemon.serve_forever(wake_fd=args.wake_fd))
    finally:
        app.close()
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """78 for a problem in the config or what it names (a start would fail), else 69 when
    a server does not answer or refuses the login (a start would work, and wait for it),
    else 0. Each server's answer is one line: on stdout when OK, on stderr when not."""
    settings = settings_of(args)
    findings = preflight.check(settings, ports=not args.no_ports)
    for problem in findings.problems:
        print(f"mailcase: {problem}", file=sys.stderr)
    if not findings.problems:
        boxes = ", ".join(m.address for m in settings.mailbox)
        listening = (f"{settings.smtp.protocol.upper()} on {settings.smtp.host}:"
                     f"{settings.smtp.port}" if settings.smtp.enabled else "no listener")
        for name, door in (("API", settings.api), ("Web-to-Case", settings.web_to_case),
                           ("console", settings.console)):
            if door.enabled:
                listening += f"; {name} on {door.host}:{door.port}"
        print(f"config OK: mailboxes {boxes}; {listening}; database "
              f"{findings.database_state}; outbound via {settings.outbound.transport}; "
              f"{_template_sources(settings)}")
    answers = [] if args.offline else probes.run(settings)
    for answer in answers:
        print(answer.line() if answer.ok else f"mailcase: {answer.line()}",
              file=sys.stdout if answer.ok else sys.stderr)
    if findings.problems:
        return EXIT_CONFIG
    return EXIT_UNAVAILABLE if any(not answer.ok for answer in answers) else 0


def _template_sources(settings: Settings) -> str:
    """Which template sets are the operator's own, which built in."""
    templates = Templates(settings.templates.dir)
    own = [name for name in REQUIRED_SETS if templates.source(name) != BUILT_IN]
    if not own:
        return "templates built in"
    return f"templates {', '.join(own)} from {settings.templates.dir}, the rest built in"


def cmd_hash_password(args: argparse.Namespace) -> int:
    if ":" in args.user or not args.user.strip():
        raise UsageError("a user name must not be empty or hold ':'")
    password = new_password(args.user, from_stdin=not sys.stdin.isatty())
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    print(f"{args.user}:{hash_password(password)}")
    return 0
