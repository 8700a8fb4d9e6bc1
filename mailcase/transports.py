"""Ways mail leaves mailcase: an SMTP smarthost, or a local Maildir for trying things out.

A transport delivers a batch and reports one Result per mail, classified the way the
outbox needs it: sent, temporary (retry later) or permanent (give up, keep the reason).
"""

from __future__ import annotations

import mailbox
import smtplib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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


class SmtpTransport:
    """Sends through a smarthost over one connection per batch; classifies each reply.

    2xx is sent, 4xx (and any connection trouble) is temporary, 5xx is permanent.
    """

    def __init__(
        self, host: str, port: int, timeout: float, local_hostname: str | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.local_hostname = local_hostname

    def deliver(self, batch: Sequence[Envelope]) -> Iterator[Result]:
        try:
            client = smtplib.SMTP(
                self.host, self.port, timeout=self.timeout, local_hostname=self.local_hostname
            )
        except (OSError, smtplib.SMTPException) as exc:
            reason = f"connect {self.host}:{self.port}: {exc}"
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

    @staticmethod
    def _send_one(client: smtplib.SMTP, envelope: Envelope) -> Result:
        # An address outside ASCII needs the relay's SMTPUTF8 (RFC 6531).
        options = [] if (envelope.mail_from + envelope.rcpt_to).isascii() else ["SMTPUTF8"]
        try:
            refused = client.sendmail(envelope.mail_from, [envelope.rcpt_to], envelope.raw,
                                      mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, …
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
    words = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    verdict: Verdict = "permanent" if 500 <= code < 600 else "temporary"
    return Result(mail_id, verdict, f"{code} {words}")


def _reset(client: smtplib.SMTP) -> None:
    try:
        client.rset()
    except (OSError, smtplib.SMTPException):
        client.close()


def _connected(client: smtplib.SMTP) -> bool:
    return getattr(client, "sock", None) is not None
