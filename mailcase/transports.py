"""Ways mail leaves mailcase: an SMTP smarthost, or a local Maildir for trying things out.

A transport delivers a batch and reports one Result per mail, classified the way the
outbox needs it: sent, temporary (retry later) or permanent (give up, keep the reason).
"""

from __future__ import annotations

import mailbox
import smtplib
from collections.abc import Sequence
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
    """Delivers a batch of mails; never raises for a delivery problem, reports it instead."""

    def deliver(self, batch: Sequence[Envelope]) -> list[Result]: ...


class MaildirTransport:
    """Drops each mail into a Maildir's ``new/`` folder, as a local delivery agent would."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def deliver(self, batch: Sequence[Envelope]) -> list[Result]:
        try:
            box = mailbox.Maildir(self.path, create=True)
        except OSError as exc:
            return [Result(e.id, "temporary", f"maildir {self.path}: {exc}") for e in batch]
        results = []
        for envelope in batch:
            header = f"Return-Path: <{envelope.mail_from}>\r\nDelivered-To: {envelope.rcpt_to}\r\n"
            try:
                key = box.add(header.encode() + envelope.raw)
            except OSError as exc:
                results.append(Result(envelope.id, "temporary", f"maildir: {exc}"))
            else:
                results.append(Result(envelope.id, "sent", f"maildir {key}"))
        return results


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

    def deliver(self, batch: Sequence[Envelope]) -> list[Result]:
        results: list[Result] = []
        try:
            client = smtplib.SMTP(
                self.host, self.port, timeout=self.timeout, local_hostname=self.local_hostname
            )
        except (OSError, smtplib.SMTPException) as exc:
            return [Result(e.id, "temporary", f"connect {self.host}:{self.port}: {exc}")
                    for e in batch]
        try:
            for index, envelope in enumerate(batch):
                result = self._send_one(client, envelope)
                results.append(result)
                if result.verdict == "temporary" and not _connected(client):
                    rest = batch[index + 1:]
                    results += [Result(e.id, "temporary", "connection lost") for e in rest]
                    break
        finally:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()
        return results

    @staticmethod
    def _send_one(client: smtplib.SMTP, envelope: Envelope) -> Result:
        try:
            refused = client.sendmail(envelope.mail_from, [envelope.rcpt_to], envelope.raw)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return _classified(envelope.id, code, text)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            _reset(client)
            return _classified(envelope.id, exc.smtp_code, exc.smtp_error)
        except smtplib.SMTPResponseException as exc:
            _reset(client)
            return _classified(envelope.id, exc.smtp_code, exc.smtp_error)
        except (TimeoutError, OSError, smtplib.SMTPException) as exc:
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
