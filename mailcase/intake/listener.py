"""The SMTP listener (aiosmtpd): refuse what is not ours at RCPT, say 250 only after the commit.

Replies follow RFC 5321 and RFC 3463: 550 5.1.1 for a recipient that is neither a
configured mailbox nor one of its plus-addresses (no open relay), 552 for mail over
``smtp.max_message_size`` (enforced while DATA is read, see smtpserver), 451 4.3.0
for anything that kept the mail from being committed, so the sender retries.
``ListenerFactory`` makes a session per connection from the ``[smtp]`` settings —
SMTP or LMTP, STARTTLS, AUTH, the PROXY protocol — and takes new settings on reload
for the connections that come after.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiosmtpd.proxy_protocol import ProxyData
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailcase.config import Settings
from mailcase.intake.accept import Accepted, TooLarge
from mailcase.intake.sessions import Sessions
from mailcase.intake.smtpauth import Authenticator, load_users
from mailcase.intake.smtpserver import TOO_BIG, GatewayLMTP, GatewaySMTP

log = logging.getLogger(__name__)

OK_RCPT = "250 2.1.5 Recipient OK"
NO_SUCH_USER = "550 5.1.1 No such mailbox here; this server does not relay"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
TRY_LATER = "451 4.3.0 Temporary failure storing the message, please try again later"

AUTH_TRIES = 3
UNLIMITED = 2**62

AcceptFn = Callable[[bytes, str, Sequence[str]], Awaitable[Accepted]]


class IntakeHandler:
    """aiosmtpd handler: each hook returns the SMTP reply line itself."""

    def __init__(
        self, settings: Settings, accept: AcceptFn, on_accepted: Callable[[], None],
        observe: Callable[[float], None] = lambda _seconds: None,
    ) -> None:
        self.settings = settings
        self.accept = accept
        self.on_accepted = on_accepted
        self.observe = observe  # seconds from the end of DATA to the commit

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        """EHLO and LHLO: aiosmtpd reads pipelined commands in order, so say so; RFC 2033
        requires PIPELINING of every LMTP server."""
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= self.settings.smtp.max_recipients:
            return TOO_MANY_RECIPIENTS  # the client sends the rest in another transaction
        if self.settings.mailbox_for(address) is None and not self._postmaster(address):
            log.info("refused RCPT %s from %s", address, session.peer)
            return NO_SUCH_USER
        envelope.rcpt_tos.append(address)
        return OK_RCPT

    def _postmaster(self, address: str) -> bool:
        """RFC 5321 4.5.1: a server must take mail for "postmaster", bare or at any of its
        domains (it is processed as mail to the first mailbox of that domain)."""
        local, _, domain = address.strip().strip("<>").lower().rpartition("@")
        if not local:
            return domain == "postmaster"
        return local == "postmaster" and any(domain == box.domain
                                             for box in self.settings.mailbox)

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        started = time.monotonic()
        try:
            accepted = await self.accept(raw, envelope.mail_from or "", list(envelope.rcpt_tos))
        except TooLarge:
            return TOO_BIG
        except Exception:
            log.exception("could not store a message from %s (answered 451)", session.peer)
            return TRY_LATER
        self.observe(time.monotonic() - started)
        self.on_accepted()
        return f"250 2.0.0 Queued as {accepted.id}"

    async def handle_PROXY(self, server: SMTP, session: Session, envelope: Envelope,
                           proxy_data: ProxyData) -> bool:
        """Behind a load balancer (``smtp.proxy_protocol``): the PROXY header names the
        real client, which is the one counted against ``max_connections_per_client``."""
        assert isinstance(server, GatewaySMTP)
        # PROXY UNKNOWN (or v2 LOCAL, a health check) names nobody: count the balancer.
        client = str(proxy_data.src_addr) if proxy_data.src_addr else server.peer_address
        refusal = server.sessions.identify(server, client)
        if refusal is not None:
            await server.push(refusal)
            return False
        log.debug("PROXY: %s connects through %s", client, session.peer)
        return True

    async def handle_exception(self, error: Exception) -> str:
        """Whatever else goes wrong in a session: a temporary failure, never aiosmtpd's 500."""
        log.error("SMTP session error: %s", error, exc_info=error)
        return "451 4.3.0 Temporary failure, please try again later"


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context for STARTTLS, from ``smtp.tls_cert_file`` and
    ``tls_key_file``; None when no certificate is configured."""
    smtp = settings.smtp
    if smtp.tls_cert_file is None or smtp.tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(smtp.tls_cert_file, smtp.tls_key_file)
    return context


class ListenerFactory:
    """Makes the protocol object for each new connection (``loop.create_server``).

    ``configure`` reads the ``[smtp]`` settings once — the certificate and the auth
    file too — so a reload (new certificate, new users, new size limit) applies to the
    connections that come after it, and sessions under way keep what they began with.
    """

    def __init__(self, settings: Settings, handler: IntakeHandler, sessions: Sessions) -> None:
        self.handler = handler
        self.sessions = sessions
        self._kwargs: dict[str, Any] = {}
        self._protocol: type[GatewaySMTP] = GatewaySMTP
        self.configure(settings)

    def configure(self, settings: Settings) -> None:
        """Take ``settings`` for new connections; raises (OSError, ssl.SSLError,
        AuthFileError) without changing anything when a file cannot be used."""
        smtp = settings.smtp
        context = tls_context(settings)
        authenticator = (Authenticator(load_users(smtp.auth_file),
                                       max_failures=smtp.auth_failures_per_client,
                                       window=smtp.auth_failure_seconds)
                         if smtp.auth_file else None)
        self._kwargs = {
            "data_size_limit": smtp.max_message_size,
            "enable_SMTPUTF8": True,
            "ident": "mailcase ESMTP" if smtp.protocol == "smtp" else "mailcase LMTP",
            # Resolved once here: aiosmtpd would otherwise look up the host's FQDN (a
            # DNS query) for every connection.
            "hostname": smtp.hostname or socket.getfqdn(),
            "tls_context": context,
            "require_starttls": smtp.require_tls,
            "authenticator": authenticator,
            "auth_required": smtp.auth_required,
            "auth_require_tls": True,  # never a password in the clear
            # Without users, AUTH is not offered at all (aiosmtpd would offer it and
            # fail every attempt).
            "auth_exclude_mechanism": () if authenticator else ("LOGIN", "PLAIN"),
            # Each AUTH costs a deliberate slow hash: a few tries a session, then 421.
            # ("*": aiosmtpd would otherwise allow any command only 20 times a session.)
            "command_call_limit": ({"AUTH": AUTH_TRIES, "*": UNLIMITED} if authenticator
                                   else None),
            "proxy_protocol_timeout": smtp.proxy_timeout if smtp.proxy_protocol else None,
            "timeout": smtp.session_timeout,
        }
        self._protocol = GatewayLMTP if smtp.protocol == "lmtp" else GatewaySMTP
        self.handler.settings = settings
        self.sessions.max_total = smtp.max_connections
        self.sessions.max_per_client = smtp.max_connections_per_client

    def __call__(self) -> asyncio.Protocol:
        return self._protocol(self.handler, sessions=self.sessions, **self._kwargs)
