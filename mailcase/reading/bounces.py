"""Read bounces: which recipient of which outbound mail failed, how, and for good or not.

RFC 3464 delivery status notifications, and their RFC 6533 form for internationalized
mail (``message/global-delivery-status``, UTF-8 fields), are read field by field
(recipient, action, status, diagnostic); the many non-standard formats of older MTAs (Exim, qmail,
Exchange, …) are left to flufl.bounce, GNU Mailman's bounce library. The mail a bounce
is about is found by its VERP return path first, then by the Message-ID of the
original it quotes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

from flufl.bounce import all_failures

from mailcase.reading.bouncetext import message_ids_in, text_failures
from mailcase.reading.headers import eight_bit
from mailcase.reading.parsing import ParsedMail, message_ids
from mailcase.reading.rawmail import read_message
from mailcase.reading.screen import daemon_without_address

REPORT_PARTS = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers",
                "message/global", "message/global-headers")  # the last two: RFC 6533
STATUS_PARTS = ("message/delivery-status", "message/global-delivery-status")


@dataclass(frozen=True)
class Failure:
    """One recipient a bounce reports: permanent (5.x.x, failed) or temporary."""

    recipient: str
    permanent: bool
    status: str | None = None
    diagnostic: str | None = None
    original: str | None = None  # the address as first sent, before alias expansion
    from_prose: bool = False  # read from a report's text, not from its fields


@dataclass(frozen=True)
class Report:
    """What a bounce says."""

    failures: tuple[Failure, ...]
    original_message_id: str | None


def looks_like_bounce(mail: ParsedMail, mail_from: str | None) -> bool:
    """Worth reading as a bounce: a report, or automatic mail from the null sender or a
    mail daemon (cheap checks; the full read only happens for these)."""
    if mail.content_type == "multipart/report":
        return True
    sender = (mail.sender.email if mail.sender else "").partition("@")[0]
    return (mail_from == "" or sender in ("mailer-daemon", "postmaster")
            or daemon_without_address(mail) is not None)


def read(raw: bytes) -> Report:
    """Every failure the bounce in ``raw`` reports, and the original's Message-ID."""
    message = read_message((raw,))
    failures = _plausible(_dsn_failures(message))
    if not failures:
        ids = message_ids_in(message)  # flufl.bounce takes a Message-ID for an address
        failures = [f for f in _plausible(_other_failures(message)) if f.recipient not in ids]
    failures = failures or _plausible(_prose_failures(message))
    return Report(tuple(failures), _original_id(message))


# What a failed recipient must look like to be taken for one: local@domain (a quoted
# local part allowed), no space, pipe, path, source route or JSON (bounce texts put all
# of these where an address was).
_NOT_IN = r"\s@<>|\"(),;:\\\[\]{}"
_PLAUSIBLE = re.compile(
    rf'^(?:"[^"\\\r\n]+"|[^{_NOT_IN}/][^{_NOT_IN}]*)@[^{_NOT_IN}/.][^{_NOT_IN}/]*$')


def _plausible(failures: list[Failure]) -> list[Failure]:
    """The failures whose recipient looks like an address; when a reader finds none
    (a DSN naming ``@host`` only), the next reader is asked."""
    return [f for f in failures if _PLAUSIBLE.match(f.recipient)]


def _dsn_failures(message: Message) -> list[Failure]:
    """RFC 3464: the per-recipient field groups of message/delivery-status."""
    found = []
    for part in message.walk():
        if part.get_content_type() not in STATUS_PARTS:
            continue
        for group in _recipient_groups(part):
            original = _address(group.get("original-recipient"))
            recipient = _address(group.get("final-recipient")) or original
            action = str(group.get("action") or "").strip().lower()
            if not recipient or action not in ("failed", "delayed"):
                continue
            status = str(group.get("status") or "").strip() or None
            found.append(Failure(
                recipient=recipient,
                permanent=action == "failed" and not (status or "").startswith("4"),
                status=status,
                diagnostic=" ".join(str(group.get("diagnostic-code") or "").split()) or None,
                original=original,
            ))
    return found


def _recipient_groups(part: Message) -> list[Message]:
    """The per-recipient field groups of a delivery-status part. The standard library
    splits message/delivery-status into them; message/global-delivery-status it reads
    as one message whose headers are the per-message group and whose body holds the
    rest, which are split here (UTF-8 fields, RFC 6533 3)."""
    groups = part.get_payload()
    if not isinstance(groups, list):
        return []
    if part.get_content_type() == "message/delivery-status":
        return [g for g in groups[1:] if isinstance(g, Message)]
    inner = groups[0] if groups and isinstance(groups[0], Message) else None
    data = inner.get_payload(decode=True) if inner is not None else None
    if not isinstance(data, bytes):
        return []
    blocks = re.split(r"\r?\n[ \t]*\r?\n", eight_bit(data, "utf-8"))
    return [HeaderParser(policy=compat32).parsestr(block.strip("\r\n") + "\n\n")
            for block in blocks if block.strip()]


def _other_failures(message: Message) -> list[Failure]:
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # noqa: BLE001 - a detector tripping on odd mail is no bounce
        return []
    return [Failure(_text(a), True) for a in sorted(permanent)] + [
        Failure(_text(a), False) for a in sorted(temporary - permanent)
    ]


def _prose_failures(message: Message) -> list[Failure]:
    return [Failure(found.recipient, found.permanent, from_prose=True)
            for found in text_failures(message)]


def _original_id(message: Message) -> str | None:
    for part in message.walk():
        if part.get_content_type() in REPORT_PARTS:
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if not isinstance(inner, Message):
                body = part.get_payload(decode=True)
                inner = read_message((body if isinstance(body, bytes) else b"",))
            ids = message_ids(str(inner.get("message-id") or ""))
            if ids:
                return ids[0]
    return None


def _address(value: object) -> str | None:
    """The address of a DSN recipient field such as ``rfc822; ann@customer.org``."""
    if value is None:
        return None
    address = str(value).partition(";")[2].strip() or str(value).strip()
    address = address.strip("<>").lower()
    return address if "@" in address else None


def _text(value: bytes | str) -> str:
    return (value.decode("utf-8", "replace") if isinstance(value, bytes) else value).lower()
