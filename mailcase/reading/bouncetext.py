"""Read the failed recipients out of a bounce written as prose: the last resort of
:mod:`mailcase.reading.bounces`, for the vendors whose reports neither follow RFC 3464
nor are known to flufl.bounce (DragonFly, OpenSMTPD, old Sendmail, Lotus Notes,
m-FILTER, KDDI, MessageLabs with a broken DSN part, …).

The rules are data: a table of the phrases MTAs put around a failed address, each a
regular expression over one line of the report. Only the report's own text is read,
never the returned original below it (whose To: and Received: lines name the same
addresses for other reasons), and only in mail that says it is a delivery report,
by its sender or its subject. The bounce's own sender and recipient, and the
original's sender, are never taken for failed recipients.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses

from mailcase.reading.charsets import decode_text

# An address as the reports print it: no quotes, spaces or brackets inside.
_ADDRESS = r"(?P<address>[^\s<>()\[\]\"',;:@]+@[A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9])"
_BRACKETED = rf"<?{_ADDRESS}>?"

# One line of a report that names a failed recipient: (what the rule is, pattern).
PHRASES: tuple[tuple[str, str], ...] = (
    ("DSN field, however written", rf"^\s*(?:final|original)-recipient:\s*rfc822;\s*{_BRACKETED}"),
    ("SMTP transcript", rf"\brcpt\s+to:\s*{_BRACKETED}"),
    ("Sendmail/Postfix: <addr>... or <addr>: after an optional reply code",
     rf"^\s*(?:[45]\d\d[ -](?:[45]\.\d{{1,3}}\.\d{{1,3}}\s+)?)?<{_ADDRESS}>"
     r"\s*(?:\.\.\.|:|,|\((?:expanded|unrecoverable|reason))"),
    ("OpenSMTPD, Lotus Notes: addr: reason", rf"^\s*{_ADDRESS}:\s+\S"),
    ("X1, Yahoo: addr [reason]", rf"^\s*{_ADDRESS}\s+\[[^\]]+\]\s*$"),
    ("the address alone on its line", rf"^\s*(?:--\s+)?{_BRACKETED}\s*$"),
    ("a phrase that introduces the failed address",
     r"(?:could not be delivered to|error delivering your mail to|delivery to|"
     r"delivery failed|rejected recipient|returned permanent errors|recipient(?: address)?|"
     r"original address|address)\s*:?\s*" + _BRACKETED),
)
_RULES = tuple(re.compile(pattern, re.IGNORECASE) for _name, pattern in PHRASES)

# Where the returned original (or its headers) begins in a report written as one text.
_ORIGINAL_STARTS = re.compile(
    r"^(?:\s*-*\s*(?:original message|unsent message|message headers follow|"
    r"below is a copy|this is a copy|the original message (?:headers|follows)|"
    r"returned message|original mail info)|From \S+ +\w{3} \w{3}|"
    r"(?:Return-Path|Received|Message-I[Dd]|DKIM-Signature|Delivered-To|"
    r"X-Original-To):\s)",
    re.IGNORECASE,
)
# Subjects and senders of delivery reports: only such mail is read as prose.
_REPORT_SUBJECT = re.compile(
    r"undeliver|delivery (?:status|failure|failed|notification|problem)|"
    r"returned mail|failure notice|mail delivery|non-?delivery|could not be delivered|"
    r"delivery has failed|mail system error|error sending|not delivered",
    re.IGNORECASE,
)
_REPORT_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery|mail administrator",
                            re.IGNORECASE)
_PERMANENT = re.compile(r"\b5\d\d\b|\b5\.\d{1,3}\.\d{1,3}\b|user unknown|no such user|"
                        r"does not exist|unknown user|host unknown", re.IGNORECASE)
_TEMPORARY = re.compile(r"\b4\d\d\b|\b4\.\d{1,3}\.\d{1,3}\b|deferred|will retry|"
                        r"temporar", re.IGNORECASE)
REPORT_TEXT_MAX = 64 * 1024  # a report's prose is short; a long one is not read past this
_QUOTED_ID = re.compile(r"^message-id:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_READ_AS_TEXT = ("text/plain", "message/delivery-status", "message/global-delivery-status")


@dataclass(frozen=True)
class Found:
    """A recipient a report names, and whether its text reads as a permanent failure."""

    recipient: str
    permanent: bool


def text_failures(message: Message) -> list[Found]:
    """The recipients the report's prose names, in order, without repeats; nothing for
    mail that does not say it is a delivery report."""
    if not _says_it_is_a_report(message):
        return []
    excluded = not_failed(message)
    found: dict[str, Found] = {}
    for text in _report_texts(message):
        lines = text.splitlines()
        for number, line in enumerate(lines):
            for rule in _RULES:
                match = rule.search(line)
                if not match:
                    continue
                address = match.group("address").lower().rstrip(".")
                if address not in excluded and address not in found:
                    found[address] = Found(address, _permanent(lines[number:number + 4]))
                break
    return list(found.values())


def _says_it_is_a_report(message: Message) -> bool:
    sender = str(message.get("from") or "")
    return bool(_REPORT_SENDER.search(sender)
                or _REPORT_SUBJECT.search(str(message.get("subject") or "")))


def not_failed(message: Message) -> set[str]:
    """What a report names for other reasons than a failure: the bounce's own sender and
    recipients, the original's sender ("sent by", "for your message to"), and the
    Message-IDs, which look like addresses."""
    messages = _messages(message)
    fields = [str(message.get(name) or "") for name in ("to", "cc", "return-path")]
    fields += [str(m.get(name) or "") for m in messages for name in ("from", "sender")]
    found = {address.lower() for _name, address in getaddresses(fields) if "@" in address}
    return found | message_ids_in(message, messages)


def message_ids_in(message: Message, messages: list[Message] | None = None) -> set[str]:
    """The Message-IDs a report carries, in its headers, the original's (``messages``:
    the report and its originals, when already found), and an original quoted as text:
    each looks like an address and is none."""
    ids = [str(m.get(name) or "") for m in messages or _messages(message)
           for name in ("message-id", "in-reply-to", "references")]
    ids += [match.group(1) for part in message.walk() if part.get_content_maintype() == "text"
            for match in _QUOTED_ID.finditer(str(part.get_payload())[:REPORT_TEXT_MAX])]
    return {i.lower() for value in ids for i in re.findall(r"<([^<>\s]+@[^<>\s]+)>", value)}


def _messages(message: Message) -> list[Message]:
    """The report and the originals attached to it."""
    found = [message]
    for part in message.walk():
        payload = part.get_payload() if part.get_content_type() == "message/rfc822" else None
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            found.append(payload[0])
    return found


def _report_texts(message: Message) -> Iterator[str]:
    """The text parts of the report itself, each cut where the returned original begins;
    attached messages are not entered."""
    stack = [message]
    while stack:
        part = stack.pop()
        if part.get_content_type() == "message/rfc822":
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and part.get_content_type().startswith("multipart/"):
            stack.extend(reversed([p for p in payload if isinstance(p, Message)]))
            continue
        if part.get_content_type() not in _READ_AS_TEXT and part.get_content_maintype() != \
                "multipart":
            # (a multipart left here is one whose boundary never comes, a mistyped one:
            # it is read as one text, its parts all there, only unsplit)
            continue
        yield _cut_at_original(_text_of(part))


def _text_of(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):  # delivery-status, split into field groups by the parser
        return "\n\n".join(p.as_string() for p in payload if isinstance(p, Message))
    data = part.get_payload(decode=True)
    raw = data if isinstance(data, bytes) else str(payload or "").encode("utf-8", "replace")
    return decode_text(raw[:REPORT_TEXT_MAX], part.get_content_charset())


def _cut_at_original(text: str) -> str:
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if _ORIGINAL_STARTS.match(line):
            return "\n".join(lines[:number])
    return text


def _permanent(lines: list[str]) -> bool:
    """Permanent when the address's line or the next few give a 5xx reason and no 4xx
    one; a report whose text says neither counts as temporary (it never stops mail)."""
    said = " ".join(lines)
    return bool(_PERMANENT.search(said)) and not _TEMPORARY.search(said)
