"""What ``mailcase check-config`` checks: everything a start would need, before the start.

A start can fail on things the config file alone does not show: a template that does
not render, a secret file the service user cannot read, a port another process holds,
a database that does not answer or needs ``db upgrade``. Each check returns problems
as single lines that name the key or file, so ``check-config`` can list them all at
once instead of failing on the first one as a start would.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailcase.cases.staff import Staff
from mailcase.config import Settings
from mailcase.identity.tokens import SecretError, load_secrets
from mailcase.intake.listener import tls_context
from mailcase.intake.smtpauth import AuthFileError, load_users
from mailcase.outbound.templates import Templates
from mailcase.store import db, migrate


@dataclass(frozen=True)
class Findings:
    """The problems found, and what was learnt on the way for the summary line."""

    problems: tuple[str, ...]
    database_state: str


def check(settings: Settings, *, ports: bool = True) -> Findings:
    """Run every check; ``ports=False`` leaves out the listening ports (for a reload,
    where the running daemon holds them)."""
    state, problems = _database(settings)
    if state == "current":
        problems += _owners(settings)
    problems += template_problems(settings)
    problems += _secret_files(settings, new_database=state.startswith("new"))
    if ports:
        problems += _ports(settings)
    return Findings(tuple(problems), state)


def template_problems(settings: Settings) -> list[str]:
    """Every template set the settings need, rendered with sample data."""
    rule_sets = [rule.template for box in settings.mailbox for rule in box.auto_response_rule
                 if rule.template]
    return Templates(settings.templates.dir).check(rule_sets)


def _readable(key: str, path: Path | None) -> list[str]:
    if path is None:
        return []
    try:
        with path.open("rb"):
            return []
    except OSError as exc:
        return [f"{key} {path} cannot be read: {exc.strerror}"]


def _secret_files(settings: Settings, *, new_database: bool) -> list[str]:
    """Every file holding a secret or a certificate, read as the start would read it.
    The token secret is made on the first start only: a database with cases needs
    the secret that signed their reply addresses."""
    problems: list[str] = []
    secret_file = settings.tokens.secret_file
    if secret_file.exists() or not new_database:
        problems += _guarded(lambda: load_secrets(secret_file, create=False))
    elif not _creatable(secret_file):
        problems.append(f"tokens.secret_file {secret_file} does not exist and its folder "
                        "is not writable, so it cannot be created")
    problems += _readable("outbound.password_file", settings.outbound.password_file)
    for index, box in enumerate(settings.mailbox):
        if box.imap is not None:
            prefix = f"mailbox[{index}].imap"
            problems += _readable(f"{prefix}.password_file", box.imap.password_file)
            problems += _readable(f"{prefix}.token_file", box.imap.token_file)
            problems += _readable(f"{prefix}.ca_file", box.imap.ca_file)
    smtp = settings.smtp
    if smtp.tls_cert_file is not None:
        problems += _guarded(lambda: tls_context(settings), "smtp.tls_cert_file/tls_key_file")
    if smtp.auth_file is not None:
        auth_file = smtp.auth_file
        problems += _guarded(lambda: load_users(auth_file))
    return problems


def _guarded(action: Callable[[], object], what: str = "") -> list[str]:
    """Run ``action``; its failure as a problem line."""
    try:
        action()
    except (SecretError, AuthFileError) as exc:
        return [str(exc)]
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror or str(exc)
        return [f"{what}: {reason}" if what else reason]
    return []


def _creatable(path: Path) -> bool:
    """Whether ``path`` (and the folders above it) can be made by this user."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def _ports(settings: Settings) -> list[str]:
    wanted = []
    if settings.smtp.enabled:
        wanted.append(("smtp", settings.smtp.host, settings.smtp.port))
    if settings.http.enabled:
        wanted.append(("http", settings.http.host, settings.http.port))
    if settings.api.enabled:
        wanted.append(("api", settings.api.host, settings.api.port))
    if settings.web_to_case.enabled:
        wanted.append(("web_to_case", settings.web_to_case.host, settings.web_to_case.port))
    if settings.console.enabled:
        wanted.append(("console", settings.console.host, settings.console.port))
    return [problem for key, host, port in wanted if (problem := _port_free(key, host, port))]


def _port_free(key: str, host: str, port: int) -> str | None:
    """None when ``host:port`` can be bound now (as the listener binds it)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"{key}.host {host!r} cannot be resolved: {exc.strerror}"
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                hint = (" (is mailcase already running?)" if exc.errno == errno.EADDRINUSE
                        else " (ports below 1024 need root or systemd's mailcase.socket)"
                        if exc.errno == errno.EACCES else "")
                return f"{key}: cannot listen on {host}:{port}: {exc.strerror}{hint}"
    return None


def _owners(settings: Settings) -> list[str]:
    """Agents and queues that rules, mailboxes or the default owner name but the store
    lacks (a new database has none: its start refuses such rules, after the schema)."""
    engine = db.create(settings.database.url)
    try:
        with db.reader_factory(engine)() as session:
            return Staff(session).problems(settings)
    finally:
        engine.dispose()


def _database(settings: Settings) -> tuple[str, list[str]]:
    """The schema's state ("new", "current") and any problem reaching or reading it."""
    try:
        revision = migrate.revision_of(settings.database.url)
    except migrate.StoreUnreachable as exc:
        return "unreachable", [str(exc)]
    if revision is None:
        return "new (created on first start)", []
    if revision != migrate.head():
        return "behind", [migrate.behind_message(revision)]
    return "current", []
