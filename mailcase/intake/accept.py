"""Accept a mail durably: store raw bytes and envelope, commit, and only then say yes.

Every way in (SMTP, IMAP, ``ingest``, ``import``) calls ``Intake.accept``. When it
returns, the mail is committed and may be acknowledged; when it raises, nothing was
stored and the caller must answer with a temporary failure so the sender retries.
A mail seen before (same Message-ID, or same bytes when it has none) is stored once.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailcase.logs import about
from mailcase.reading.parsing import message_ids
from mailcase.reading.rawmail import header_end
from mailcase.store.db import WriterGate, insert_or_nothing
from mailcase.store.models import MESSAGE_ID_MAX, InboundMail

log = logging.getLogger(__name__)


class TooLarge(Exception):
    """The mail is larger than ``smtp.max_message_size``: a permanent refusal."""


@dataclass(frozen=True)
class Incoming:
    """A mail as it arrives: raw bytes and envelope (None: the sender is unknown)."""

    raw: bytes
    mail_from: str | None
    rcpt_to: list[str]


@dataclass(frozen=True)
class Accepted:
    """A committed inbound mail; ``duplicate`` when it had been accepted before."""

    id: int
    duplicate: bool
    message_id: str | None


KEYED_HEADERS = ("message-id", "from", "date", "subject")


HEAD_PARSED = 256 * 1024
"""Octets of the header block read for the keyed headers."""
BODY_SLICE = 1 << 20
"""Octets of the body read at a time for the key: the whole mail is never copied."""


def idempotency_key(raw: bytes) -> tuple[str, str | None]:
    """The key that makes a re-delivered mail a duplicate, and the mail's Message-ID.

    The same mail delivered twice, by SMTP and IMAP, or to two of our addresses in
    separate transactions, has the same Message-ID, From, Date, Subject and body, while
    its transport headers (Received, Delivered-To) differ: with a Message-ID, those five
    make the key. A different mail that reuses a Message-ID (a broken client, a list's
    copy with a footer, a forgery) gets a key of its own and is stored; it is never
    thrown away after its 250. Without a Message-ID nothing claims two mails are one, so
    every byte counts but the transport headers on top: two mails whose bytes differ
    anywhere else are two mails. The body is what a mail parser would take for one,
    also when no blank line ends the headers.
    """
    head_end, body_start = header_end(raw)
    head = raw[:head_end].replace(b"\r\n", b"\n")
    if head_end < len(raw) and head.endswith(b"\r"):
        head = head[:-1]  # the CR of the CRLF that ends the last header line
    # The keyed headers are read from the first HEAD_PARSED octets only: a header block
    # of a million lines would otherwise cost seconds and hundreds of MB before the 250.
    # One whose Message-ID stands further down is keyed by its bytes, which is safe.
    parsed = head if len(head) <= HEAD_PARSED else head[:head.rfind(b"\n", 0, HEAD_PARSED)]
    headers = BytesHeaderParser(policy=compat32).parsebytes(parsed + b"\n\n")
    ids = message_ids(str(headers.get("message-id") or ""))
    digest = hashlib.sha256()
    if not ids:
        digest.update(b"no message-id\0" + _without_trace(head) + b"\0")
        last = b"\n"
        for chunk in _body_slices(raw, body_start):  # every byte, CRLF counted as LF
            digest.update(chunk.replace(b"\r\n", b"\n"))
            last = chunk[-1:]
        if last != b"\n":
            digest.update(b"\n")
        return digest.hexdigest(), None
    for name in KEYED_HEADERS:
        digest.update(" ".join(str(headers.get(name) or "").split()).encode("utf-8", "replace"))
        digest.update(b"\0")
    # The lines right-stripped and joined by LF, blank lines at the end left out; done a
    # slice at a time by regular expression (a Python loop over a MIME bomb's eight
    # million lines held its 250 back for seconds).
    newlines = 0
    for chunk in _body_slices(raw, body_start):
        kept = _LINE_END_SPACE.sub(b"\n", chunk.replace(b"\r\n", b"\n"))
        if kept.endswith((b" ", b"\t", b"\r", b"\x0b", b"\x0c")):
            kept = kept.rstrip(b" \t\r\x0b\x0c")  # the last line, without its LF
        text = kept.rstrip(b"\n")
        if text:
            digest.update(b"\n" * newlines + text)
            newlines = len(kept) - len(text)
        else:
            newlines += len(kept)
    return digest.hexdigest(), ids[0]


# Whitespace at the end of a line, with the line's end (after CRLF became LF, so that
# ordinary lines do not match at all).
_LINE_END_SPACE = re.compile(rb"[ \t\r\x0b\x0c]+\n")


# Headers that transports add on top of a mail, which differ between two deliveries.
_TRACE = re.compile(rb"(?:received|return-path|delivered-to|x-original-to|x-envelope-(?:from|to)"
                    rb")[ \t]*:", re.IGNORECASE)


def _without_trace(head: bytes) -> bytes:
    """The header block (LF line ends) less the transport headers on top of it."""
    start = 0
    while _TRACE.match(head, start):
        start = _next_field(head, start)
    return head[start:]


def _next_field(head: bytes, start: int) -> int:
    """Where the header field after the one at ``start`` begins (folded lines skipped)."""
    while True:
        end = head.find(b"\n", start)
        if end < 0:
            return len(head)
        start = end + 1
        if head[start:start + 1] not in (b" ", b"\t"):
            return start


def _body_slices(raw: bytes, start: int) -> Iterator[bytes]:
    """The body a line-aligned slice at a time (never a CRLF split between two)."""
    while start < len(raw):
        end = raw.find(b"\n", min(start + BODY_SLICE, len(raw)) - 1)
        end = len(raw) if end < 0 else end + 1
        yield raw[start:end]
        start = end


def return_path(raw: bytes) -> str | None:
    """The envelope sender an MDA recorded in Return-Path: "" for <>, None when absent."""
    head = raw.replace(b"\r\n", b"\n").partition(b"\n\n")[0]
    value = BytesHeaderParser(policy=compat32).parsebytes(head + b"\n\n").get("return-path")
    if value is None:
        return None
    return str(value).strip().strip("<>").strip()


class Intake:
    """The one door into mailcase's store."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        max_size: int,
        gate: WriterGate | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.max_size = max_size
        self.gate = gate or WriterGate(None)

    def accept(
        self, raw: bytes, *, mail_from: str | None, rcpt_to: Sequence[str], source: str
    ) -> Accepted:
        """Commit ``raw`` as pending inbound mail; raises if it could not be committed."""
        [result] = self.accept_batch([Incoming(raw, mail_from, list(rcpt_to))], source=source)
        if isinstance(result, Exception):
            raise result
        return result

    def accept_batch(
        self, mails: Sequence[Incoming], *, source: str
    ) -> list[Accepted | Exception]:
        """Commit several mails in one transaction (group commit, imports).

        One result per mail, in order: Accepted (``duplicate`` when it had been stored
        before, or earlier in the same batch), or TooLarge for a mail over the limit,
        which is not stored. When the transaction fails, this raises and none of the
        batch is stored.
        """
        now = self.clock()
        results: list[Accepted | Exception | None] = []
        pending: list[tuple[int, str, str | None, dict[str, Any]]] = []
        for mail in mails:
            if len(mail.raw) > self.max_size:
                results.append(TooLarge(
                    f"message is {len(mail.raw)} bytes, the limit is {self.max_size}"))
                continue
            key, message_id = idempotency_key(mail.raw)
            pending.append((len(results), key, message_id, {
                "idempotency_key": key, "source": source, "mail_from": mail.mail_from,
                "rcpt_to": list(mail.rcpt_to),
                "message_id": message_id[:MESSAGE_ID_MAX] if message_id else None,
                "size": len(mail.raw), "raw": mail.raw, "received_at": now,
                "status": "pending", "attempts": 0, "next_attempt_at": now, "outcome": None,
                "last_error": None, "processed_at": None, "skip_screening": False,
                "case_id": None, "opened_case": False, "quarantined_at": None,
                "released": False,
            }))
            results.append(None)
        if pending:
            with self.gate.first(), self.sessions.begin() as session:
                stored = self._store(session, [values for _, _, _, values in pending])
                for index, key, message_id, _values in pending:
                    stored_id, new = stored[key]
                    stored[key] = (stored_id, False)  # a second copy in the batch is a duplicate
                    results[index] = Accepted(stored_id, not new, message_id)
        for index, _key, message_id, values in pending:
            accepted = results[index]
            assert isinstance(accepted, Accepted)
            log.info("accepted inbound=%s message_id=%s source=%s size=%d%s", accepted.id,
                     message_id, source, values["size"],
                     " (duplicate)" if accepted.duplicate else "",
                     extra=about(accepted.id, message_id))
        return [result for result in results if result is not None]

    def accept_many(
        self, mails: Sequence[tuple[bytes, str | None]], *, source: str
    ) -> tuple[list[int], int]:
        """Commit a batch of (raw, envelope sender) in one transaction, for imports.

        Returns the ids of the mails stored now and how many were already stored; any
        failure stores none of the batch.
        """
        results = self.accept_batch([Incoming(raw, mail_from, []) for raw, mail_from in mails],
                                    source=source)
        for result in results:
            if isinstance(result, Exception):
                raise result  # the importer leaves out mail over the limit beforehand
        stored = [r.id for r in results if isinstance(r, Accepted) and not r.duplicate]
        return stored, len(results) - len(stored)

    def _store(self, session: Session, rows: list[dict[str, Any]]) -> dict[str, tuple[int, bool]]:
        """Insert the rows whose key is not stored yet, in one statement; returns each
        key's row id and whether it was stored now."""
        keys = list(dict.fromkeys(row["idempotency_key"] for row in rows))
        found = {key: (row_id, False) for key, row_id in session.execute(
            select(InboundMail.idempotency_key, InboundMail.id)
            .where(InboundMail.idempotency_key.in_(keys))
        ).all()}
        fresh = {row["idempotency_key"]: row for row in rows
                 if row["idempotency_key"] not in found}
        if fresh:
            # ON CONFLICT DO NOTHING: another instance may store the same mail right now;
            # its key is then looked up below like any mail stored before.
            inserted = session.execute(
                insert_or_nothing(session, InboundMail, None, ["idempotency_key"])
                .returning(InboundMail.idempotency_key, InboundMail.id),
                list(fresh.values()),
            ).all()
            found.update((key, (row_id, True)) for key, row_id in inserted)
        for key in keys:
            if key not in found:
                found[key] = (self._existing(session, key), False)
        return found

    @staticmethod
    def _existing(session: Session, key: str) -> int:
        found = session.scalar(select(InboundMail.id).where(InboundMail.idempotency_key == key))
        if found is None:  # skipped as a duplicate, yet gone: not stored
            raise RuntimeError(f"inbound mail with key {key} could not be stored")
        return found
