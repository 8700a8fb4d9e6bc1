"""Whether the servers mailcase talks to answer now: the smarthost and each IMAP server.

``check-config`` runs these after checking the config itself. A probe does what the
daemon does first — connect, TLS, log in, and for IMAP open the folder (read-only,
with EXAMINE) — through the daemon's own code (``SmtpTransport``, the poller's
``Connector``), then leaves without sending, fetching or marking anything. Timeouts are
short: a server that says nothing for PROBE_TIMEOUT seconds is reported as silent, not
waited for as the daemon would.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from imapclient.exceptions import IMAPClientError

from mailcase.app import make_relay
from mailcase.config import MailboxSettings, Settings
from mailcase.identity.tokens import SecretError
from mailcase.intake.imapauth import Connector, CredentialError
from mailcase.outbound.transports import SmtpTransport

PROBE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Probe:
    """One server's answer: which server, whether it did all a start needs, and what it
    agreed to or where it failed."""

    server: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{self.server}: {'OK, ' if self.ok else 'FAILED, '}{self.detail}"


def run(settings: Settings) -> list[Probe]:
    """The smarthost (when mail leaves by SMTP), then every mailbox's IMAP server."""
    probes = [smarthost(settings)] if settings.outbound.transport == "smtp" else []
    return probes + [imap(box) for box in settings.mailbox if box.imap is not None]


def smarthost(settings: Settings) -> Probe:
    """EHLO, STARTTLS and AUTH as configured, then QUIT: no mail is sent."""
    out = settings.outbound
    server = f"smarthost {out.host}:{out.port}"
    timeout = min(out.timeout, PROBE_TIMEOUT)
    try:
        relay = replace(make_relay(settings), timeout=timeout)
        return Probe(server, True, SmtpTransport(relay).probe())
    except SecretError as exc:
        return Probe(server, False, f"not tried: {exc}")
    except (OSError, smtplib.SMTPException) as exc:
        return Probe(server, False, failure(exc, timeout))


def imap(box: MailboxSettings) -> Probe:
    """Connect, TLS and log in as the poller does, then EXAMINE the watched folder."""
    assert box.imap is not None
    timeout = min(box.imap.timeout, PROBE_TIMEOUT)
    settings = box.imap.model_copy(update={"timeout": timeout})
    server = f"IMAP {box.address} ({settings.username} at {settings.host}:{settings.port})"
    try:
        with Connector(settings).session() as client:
            sock = client.socket()
            tls = f"TLS {sock.version()}" if isinstance(sock, ssl.SSLSocket) else "no TLS"
            try:
                folder = client.select_folder(settings.folder, readonly=True)
            except IMAPClientError as exc:
                return Probe(server, False, f"logged in, but folder {settings.folder!r} "
                                            f"cannot be opened: {exc}")
    except CredentialError as exc:
        return Probe(server, False, str(exc))
    except (OSError, IMAPClientError) as exc:
        return Probe(server, False, failure(exc, timeout))
    count = folder.get(b"EXISTS", 0)
    return Probe(server, True, f"{tls}, logged in, {settings.folder} holds {count} mail(s)")


def failure(exc: BaseException, timeout: float) -> str:
    """What went wrong, in the words an operator looks for."""
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        # smtplib turns a greeting that never came into SMTPServerDisconnected.
        return f"no answer within {timeout:g} s"
    for kind, words in _FAILURES:  # the most specific kind first
        if isinstance(exc, kind):
            return words(exc)
    return str(exc) or type(exc).__name__


def _reply(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_text(exc.smtp_error)}"


_FAILURES: tuple[tuple[type[BaseException], Callable[[Any], str]], ...] = (
    (ConnectionRefusedError, lambda exc: "connection refused"),
    (socket.gaierror, lambda exc: f"host not found: {exc.strerror}"),
    (ssl.SSLCertVerificationError, lambda exc: f"TLS failed: certificate not accepted "
                                                    f"({exc.verify_message})"),
    (ssl.SSLError, lambda exc: f"TLS failed: {exc.reason or exc}"),
    (smtplib.SMTPAuthenticationError, lambda exc: f"authentication refused: {_reply(exc)}"),
    (smtplib.SMTPResponseException, lambda exc: f"refused: {_reply(exc)}"),
    (smtplib.SMTPServerDisconnected, lambda exc: f"connection closed by the server: {exc}"),
    (OSError, lambda exc: exc.strerror or str(exc)),
)


def _text(text: bytes | str) -> str:
    return text.decode(errors="replace") if isinstance(text, bytes) else text
