"""Ways mail leaves mailcase: an SMTP smarthost, or a local Maildir for trying things out.

A transport delivers a batch and reports one Result per mail, classified the way the
outbox needs it: sent, temporary (retry later) or permanent (give up, keep the reason).
"""

from __future__ import annotations

import mailbox
import smtplib
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

Verdict = Literal["sent", "temporary", "permanent"]


@dataclass(frozen=True)
class Envelope:
    """One mail to hand to a transport."""

    id: int
    mail_from: str
    rcpt_to: str
    raw: bytes


@dataclass(frozen=True)
class Result:
    """What became of one mail: the verdict and the server's words."""

    id: int
    verdict: Verdict
    detail: str = ""


class Transport(Protocol):
    """Delivers a batch of mails, yielding each result as soon as it is known.

    It never raises for a delivery problem; it reports it. Yielding one result at a
    time lets the outbox record each mail the moment the relay has taken it, so a
    crash mid-batch resends at most the mail in flight.
    """

    def deliver(self, batch: Sequence[Envelope]) -> Iterator[Result]: ...


class MaildirTransport:
    """Drops each mail into a Maildir's ``new/`` folder, as a local delivery agent would."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def deliver(self, batch: Sequence[Envelope]) -> Iterator[Result]:
        try:
            box = mailbox.Maildir(self.path, create=True)
        except OSError as exc:
            yield from (Result(e.id, "temporary", f"maildir {self.path}: {exc}") for e in batch)
            return
        for envelope in batch:
            header = f"Return-Path: <{envelope.mail_from}>\r\nDelivered-To: {envelope.rcpt_to}\r\n"
            try:
                key = box.add(header.encode() + envelope.raw)
            except OSError as exc:
                yield Result(envelope.id, "temporary", f"maildir: {exc}")
            else:
                yield Result(envelope.id, "sent", f"maildir {key}")


@dataclass(frozen=True)
class Relay:
    """How to reach the smarthost: address, TLS mode, and AUTH credentials if any."""

    host: str
    port: int
    timeout: float
    tls: Literal["none", "opportunistic", "starttls", "implicit"] = "opportunistic"
    context: ssl.SSLContext | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line
    local_hostname: str | None = None


class SmtpTransport:
    """Sends through a smarthost over one connection per batch; classifies each reply.

    2xx is sent, 4xx (and any connection trouble) is temporary, 5xx is permanent. TLS is
    implicit (SMTPS), required STARTTLS, opportunistic STARTTLS (used when offered, the
    default), or off; AUTH is used when credentials are configured, never in the clear.
    """

    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    def deliver(self, batch: Sequence[Envelope]) -> Iterator[Result]:
        relay = self.relay
        try:
            client = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            # Trouble with the relay itself (down, TLS, a wrong password) is no verdict on
            # the recipients: the mail waits until the relay or its settings are fixed.
            reason = f"connect {relay.host}:{relay.port}: {exc}"
            yield from (Result(e.id, "temporary", reason) for e in batch)
            return
        try:
            for index, envelope in enumerate(batch):
                result = self._send_one(client, envelope)
                yield result
                if result.verdict == "temporary" and not _connected(client):
                    yield from (Result(e.id, "temporary", "connection lost")
                                for e in batch[index + 1:])
                    return
        finally:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()

    def probe(self) -> str:
        """Connect, greet, TLS and AUTH exactly as a batch would, then QUIT without
        sending: what was agreed (e.g. "STARTTLS TLSv1.3, AUTH as mailcase"). A
        failure is raised as it came (OSError, ssl.SSLError, smtplib.SMTPException)."""
        client = self._connect()
        try:
            sock = client.sock
            done = [f"{'TLS' if self.relay.tls == 'implicit' else 'STARTTLS'} {sock.version()}"
                    if isinstance(sock, ssl.SSLSocket) else "no TLS"]
            if self.relay.username:
                done.append(f"AUTH as {self.relay.username}")
            return ", ".join(done)
        finally:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()

    def _connect(self) -> smtplib.SMTP:
        """A connection ready for MAIL FROM: TLS and AUTH done as configured."""
        relay = self.relay
        context = relay.context or ssl.create_default_context()
        if relay.tls == "opportunistic":
            # RFC 7435: encrypt whenever offered, without insisting on a certificate we
            # could check (a local Postfix's self-signed one is the usual case).
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        client: smtplib.SMTP
        if relay.tls == "implicit":
            client = smtplib.SMTP_SSL(relay.host, relay.port, timeout=relay.timeout,
                                      local_hostname=relay.local_hostname, context=context)
        else:
            client = smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout,
                                  local_hostname=relay.local_hostname)
        try:
            client.ehlo()
            secure = relay.tls == "implicit"
            if relay.tls in ("starttls", "opportunistic") and client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
                secure = True
            elif relay.tls == "starttls":
                raise smtplib.SMTPNotSupportedError("the relay does not offer STARTTLS")
            if relay.username:
                if not secure:
                    raise smtplib.SMTPNotSupportedError("refusing to send AUTH without TLS")
                client.login(relay.username, relay.password or "")
        except BaseException:
            client.close()
            raise
        return client

    @staticmethod
    def _send_one(client: smtplib.SMTP, envelope: Envelope) -> Result:
        # An address outside ASCII needs the relay's SMTPUTF8 (RFC 6531).
        options = [] if (envelope.mail_from + envelope.rcpt_to).isascii() else ["SMTPUTF8"]
        try:
            refused = client.sendmail(envelope.mail_from, [envelope.rcpt_to], envelope.raw,
                                      mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients
        except smtplib.SMTPSenderRefused as exc:
            # Refusing our envelope sender says nothing about the recipient: it is our
            # setup (the relay wants AUTH, or will not send as that address).
            _reset(client)
            return Result(envelope.id, "temporary", f"relay refused the sender: "
                          f"{exc.smtp_code} {_text(exc.smtp_error)}")
        except smtplib.SMTPResponseException as exc:  # data refused, …
            _reset(client)
            return _classified(envelope.id, exc.smtp_code, exc.smtp_error)
        except smtplib.SMTPNotSupportedError as exc:
            return Result(envelope.id, "permanent", f"relay lacks SMTPUTF8: {exc}")
        except (OSError, smtplib.SMTPException) as exc:
            return Result(envelope.id, "temporary", f"{type(exc).__name__}: {exc}")
        if refused:
            code, text = next(iter(refused.values()))
            return _classified(envelope.id, code, text)
        return Result(envelope.id, "sent", "250")


def _classified(mail_id: int, code: int, text: bytes | str) -> Result:
    """5xx is a verdict on the recipient, except "authentication required" (530, 5.7.0),
    which is about us and waits for the settings to be fixed."""
    words = _text(text)
    about_us = code == 530 or words.startswith("5.7.0")
    verdict: Verdict = "permanent" if 500 <= code < 600 and not about_us else "temporary"
    return Result(mail_id, verdict, f"{code} {words}")


def _text(text: bytes | str) -> str:
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def _reset(client: smtplib.SMTP) -> None:
    try:
        client.rset()
    except (OSError, smtplib.SMTPException):
        client.close()


def _connected(client: smtplib.SMTP) -> bool:
    return getattr(client, "sock", None) is not None
