"""Walk a message's MIME tree into its body texts and its attachments.

Bodies: the inline text/plain and text/html parts (in multipart/alternative, each
kind once). Attachments: every other leaf, with its exact decoded bytes; an attached
mail (message/rfc822) is kept whole as one .eml file; a TNEF ``winmail.dat`` is
unpacked into the files it carries. The walk is iterative and stops descending past
MAX_DEPTH, so hostile nesting cannot exhaust the stack; what it did not reach stays
in the raw message, and the notes say so.
"""

from __future__ import annotations

import binascii
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message

from mailcase.reading.charsets import decode_text
from mailcase.reading.headers import decode_words, raw_header

log = logging.getLogger(__name__)

MAX_DEPTH = 40
MAX_PARTS = 1000  # real mail has a few dozen; thousands only come from a hostile sender
# binascii's decoders read an ASCII str as it is: no bytes copy of the part first.
ASCII_DECODERS: dict[str, Callable[[str], bytes]] = {
    "base64": binascii.a2b_base64,
    "quoted-printable": binascii.a2b_qp,
}
ATTACHED_MAIL = frozenset({"message/rfc822", "message/global"})
TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})


@dataclass(frozen=True)
class Part:
    """A leaf that is a file: its name as given, its type, its bytes, its Content-ID."""

    filename: str | None
    content_type: str
    content: bytes
    content_id: str | None = None


@dataclass
class Walked:
    """What the walk found."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    files: list[Part] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def walk(message: Message) -> Walked:
    """Sort every part of ``message`` into body text or file."""
    found = Walked()
    stack: list[tuple[Message, int]] = [(message, 0)]
    leaves = 0
    while stack:
        part, depth = stack.pop()
        leaves += 1
        if leaves > MAX_PARTS:
            found.notes.append(f"more than {MAX_PARTS} MIME parts; the rest not read")
            break
        if part.is_multipart() and part.get_content_type() not in ATTACHED_MAIL:
            if depth >= MAX_DEPTH:
                found.notes.append(f"MIME nesting deeper than {MAX_DEPTH} levels not read")
                continue
            children = [c for c in part.get_payload() if isinstance(c, Message)]
            stack.extend((child, depth + 1) for child in reversed(children))
        else:
            _leaf(part, found)
    return found


def _leaf(part: Message, found: Walked) -> None:
    kind = part.get_content_type()
    if kind.startswith("multipart/"):
        kind = "text/plain"  # a multipart the parser could not split (no boundary): its text
    # raw_header: with 8-bit bytes in it the parser hands over a Header object, not a str
    # (two real mails with a Cyrillic filename in raw UTF-8 crashed processing here).
    disposition = raw_header(part.get("content-disposition") or "").split(";", 1)[0]
    disposition = disposition.strip().lower()
    filename = _filename(part)
    if kind in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        text = decode_text(_payload(part), part.get_content_charset())
        (found.plain if kind == "text/plain" else found.html).append(text)
        return
    if kind in ATTACHED_MAIL:
        found.files.append(Part(filename or _attached_mail_name(part), kind, _attached(part)))
        return
    content = _payload(part)
    if kind in TNEF_TYPES or (filename or "").lower() == "winmail.dat":
        unpacked = _unpack_tnef(content, found)
        if unpacked is not None:
            found.files.extend(unpacked)
            return
    content_id = str(part.get("content-id") or "").strip().strip("<>") or None
    found.files.append(Part(filename, kind, content, content_id))


def _payload(part: Message) -> bytes:
    """The part's content with its transfer encoding undone, as get_payload(decode=True)."""
    decoded = _decode_ascii(part)
    if decoded is not None:
        return decoded
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    return str(part.get_payload() or "").encode("utf-8", "surrogateescape")


def _decode_ascii(part: Message) -> bytes | None:
    """The decoded content of a base64 or quoted-printable part whose text is ASCII, else
    None (the standard library then decodes it, repairing what it can).

    For base64, get_payload(decode=True) holds the part's text, an ASCII bytes copy, that
    copy's lines and their join at once: about four times the part. binascii decodes the
    text as it stands; where it succeeds the result is the standard library's, which
    ends in the same call after dropping the line breaks that binascii skips anyway.
    """
    payload = part.get_payload()
    decode = ASCII_DECODERS.get(str(part.get("content-transfer-encoding", "")).lower())
    if decode is None or not isinstance(payload, str) or not payload.isascii():
        return None
    try:
        return decode(payload)
    except (binascii.Error, ValueError):
        return None


def _filename(part: Message) -> str | None:
    # The parameters are read from the headers as text (8-bit bytes decoded as UTF-8,
    # else Windows-1252): the parser would read 8-bit bytes as replacement characters.
    view = Message()
    for header in ("content-disposition", "content-type"):
        value = part.get(header)
        if value is not None:
            view[header] = raw_header(value)
    try:
        name = view.get_filename()
    except (ValueError, LookupError, UnicodeError):  # a broken RFC 2231 parameter
        return None
    if not name:
        return None
    return decode_words(raw_header(name))


def _attached(part: Message) -> bytes:
    """The attached mail's bytes (re-serialized by the parser, content unchanged)."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        try:
            return payload[0].as_bytes()
        except (ValueError, LookupError, UnicodeError):
            return str(payload[0]).encode("utf-8", "surrogateescape")
    return _payload(part)


def _attached_mail_name(part: Message) -> str:
    payload = part.get_payload()
    subject = ""
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        subject = raw_header(payload[0].get("subject") or "")
    return (decode_words(subject)[:100] or "attached message") + ".eml"


def _unpack_tnef(content: bytes, found: Walked) -> list[Part] | None:
    """The files inside an Outlook winmail.dat, or None to keep it as it is."""
    try:
        from tnefparse import TNEF  # noqa: PLC0415 - only loaded when Outlook sends TNEF

        tnef = TNEF(content)
    except Exception as exc:  # noqa: BLE001 - tnefparse raises many kinds on bad input
        found.notes.append(f"winmail.dat could not be unpacked ({exc}); kept as it is")
        return None
    files = []
    for attachment in tnef.attachments:
        data = attachment.data if isinstance(attachment.data, bytes) else b""
        name = attachment.long_filename() or attachment.name or "attachment"
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        files.append(Part(str(name).rstrip("\x00"), "application/octet-stream", data))
    if tnef.htmlbody and not found.html:
        html = tnef.htmlbody
        found.html.append(html.decode("utf-8", "replace") if isinstance(html, bytes) else html)
    return files
