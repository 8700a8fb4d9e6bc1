"""Parse raw mail bytes into a frozen ParsedMail: the first stage of processing.

Built on the standard library's ``email`` package with the lenient compat32 policy
(the parser mail-parser wraps), because a gateway needs what mail-parser does not
give: bodies decoded through a charset fallback chain instead of replacement marks,
attachments as their exact bytes rather than re-encoded strings, attached mails kept
whole, TNEF unpacked, and a bounded walk of the MIME tree. It never raises on bad
input: what cannot be read is left empty or noted, and the raw bytes stay stored.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

from mailcase.reading import mime
from mailcase.reading.headers import decode_words, one_line, raw_header
from mailcase.reading.htmltext import html_to_text
from mailcase.reading.rawmail import PartsLimit, read_message

# Message-IDs are clamped to this length as they are read: RFC 5322 allows 998-character
# lines, but the store indexes them and a PostgreSQL B-tree entry must stay under ~2.7 kB.
# The store's columns are exactly this wide (its own MESSAGE_ID_MAX; a test holds the two
# equal), so reading needs no database code to know it.
MESSAGE_ID_MAX = 500

_MSGID = re.compile(r"<[^<>\s]+>")
_UNSAFE_FILENAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")
NAME_MAX = 255  # octets in one filename (Linux, most filesystems)


@dataclass(frozen=True)
class Address:
    """One mailbox from a header: a lower-cased address and its display name."""

    email: str
    name: str = ""


@dataclass(frozen=True)
class ParsedAttachment:
    """A file carried by the mail, with a filename that is safe to show and to store."""

    filename: str
    content_type: str
    content: bytes
    content_id: str | None = None


@dataclass(frozen=True)
class ParsedMail:
    """What processing needs to know about one mail; the raw bytes remain the truth."""

    message_id: str | None
    subject: str
    sender: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    delivered_to: tuple[str, ...]
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    attachments: tuple[ParsedAttachment, ...]
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    content_type: str = "text/plain"
    html: str | None = None
    text_from_html: bool = False
    date: datetime | None = None
    notes: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), if present."""
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this mail answers: In-Reply-To first, then References newest first."""
        ordered = list(self.in_reply_to) + list(reversed(self.references))
        return tuple(dict.fromkeys(ordered))


def message_ids(value: str | None) -> tuple[str, ...]:
    """The ``<id>`` tokens of a header; some clients separate them by commas, not spaces."""
    if not value:
        return ()
    found = _MSGID.findall(value)
    if not found:
        found = [f"<{v.strip('<>')}>" for v in re.split(r"[\s,]+", value) if v.strip("<>")]
    return tuple(m[:MESSAGE_ID_MAX] for m in found)


def parse(raw: bytes | Callable[[], Iterable[bytes]]) -> ParsedMail:
    """Parse a mail leniently into a ParsedMail: ``raw`` is its bytes, or a function that
    gives them a slice at a time (for a large mail read straight from the store)."""
    slices = (lambda: _slices(raw)) if isinstance(raw, bytes) else raw
    read_notes: list[str] = []
    try:
        message = read_message(slices(), read_notes)
        walked = mime.walk(message)
    except RecursionError:  # the standard parser recurses once per nesting level
        message = _read_headers(slices())
        walked = mime.Walked(notes=["MIME structure nested too deep to read; "
                                    "the raw mail keeps it"])
    notes = [*read_notes, *(str(d) for d in message.defects if isinstance(d, PartsLimit)),
             *walked.notes]
    html = "\n".join(walked.html) or None
    text = "\n".join(p for p in walked.plain if p.strip()).replace("\r\n", "\n").strip()
    text_from_html = not text and html is not None
    if text_from_html and html is not None:
        text = html_to_text(html)
    senders = _addresses(message, "from") or _addresses(message, "sender")
    ids = message_ids(_header_text(message, "message-id"))
    return ParsedMail(
        message_id=ids[0] if ids else None,
        subject=decode_words(_header_text(message, "subject") or ""),
        sender=senders[0] if senders else None,
        to=_addresses(message, "to"),
        cc=_addresses(message, "cc"),
        delivered_to=tuple(a.email for a in _addresses(message, "delivered-to")),
        in_reply_to=message_ids(_header_text(message, "in-reply-to")),
        references=message_ids(_header_text(message, "references")),
        text=text,
        attachments=tuple(
            ParsedAttachment(
                safe_filename(f.filename, _fallback_name(f.content_type)), f.content_type,
                f.content, f.content_id,
            )
            for f in walked.files
        ),
        headers=_header_map(message),
        content_type=message.get_content_type(),
        html=html,
        text_from_html=text_from_html,
        date=_date(_header_text(message, "date")),
        notes=tuple(notes),
    )


def _read_headers(slices: Iterable[bytes]) -> Message:
    """The header block alone (for a mail whose body cannot be walked)."""
    head = bytearray()
    for piece in slices:
        head += piece
        if b"\r\n\r\n" in head or b"\n\n" in head:
            break
    return BytesHeaderParser(policy=compat32).parsebytes(bytes(head))


def _slices(raw: bytes) -> Iterator[bytes]:
    yield raw


def _header_text(message: Message, name: str) -> str | None:
    values = message.get_all(name)
    return " ".join(raw_header(v) for v in values) if values else None


def _header_map(message: Message) -> dict[str, tuple[str, ...]]:
    result: dict[str, list[str]] = {}
    for key, value in message.items():
        result.setdefault(key.lower(), []).append(one_line(raw_header(value)))
    return {k: tuple(v) for k, v in result.items()}


# An RFC 2047 encoded word, which may stand in a display name but whose text is no syntax.
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_MASKED = re.compile("\ue000([0-9]+)\ue001")


def _addresses(message: Message, name: str) -> tuple[Address, ...]:
    """The mailboxes of an address header. Encoded words are set aside as quoted strings
    before the address list is split, so that what they decode to (a colon, a comma, an
    @, a CRLF) can never make up a group, a second address or an addr-spec:
    ``=?utf-8?q?Ann=0D=0ABcc:_v1@evil.test?= <n1@x>`` is n1@x, named "Ann Bcc: v1@…"."""
    words: list[str] = []

    def mask(found: re.Match[str]) -> str:
        words.append(found.group(0))
        return f'"\ue000{len(words) - 1}\ue001"'

    values = [_ENCODED_WORD.sub(mask, raw_header(v)) for v in message.get_all(name) or []]
    found = []
    for display, address in getaddresses(values):
        email = address.strip().lower()
        if "@" in email and "\ue000" not in email:
            name = _MASKED.sub(lambda m: words[int(m.group(1))], display)
            found.append(Address(email=email, name=decode_words(name)))
    return tuple(found)


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else None


def _fallback_name(content_type: str) -> str:
    """A name for a part that has none: "attachment" with its type's extension."""
    extension = mimetypes.guess_extension(content_type) or ""
    return f"attachment{extension}"


def safe_filename(name: str | None, fallback: str = "attachment") -> str:
    """A filename with no folders, control or shell-special characters, at most 255 bytes
    in UTF-8 (NAME_MAX on Linux filesystems, so it can be written as it is)."""
    name = unicodedata.normalize("NFC", name or "")
    # Control and format characters (C1 controls, bidi overrides that disguise
    # "invoice\u202efdp.exe", zero-width spaces) never belong in a name.
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf"))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_FILENAME.sub("_", name).strip(" .")
    if not name.strip("_"):
        return fallback
    if len(name.encode()) > NAME_MAX:
        stem, dot, ext = name.rpartition(".")
        if dot and len(ext) < 16:  # an extension worth keeping: cut the stem instead
            name = _clipped(stem, NAME_MAX - len(ext.encode()) - 1) + dot + ext
        else:
            name = _clipped(name, NAME_MAX).rstrip(" .")
    return name


def _clipped(text: str, octets: int) -> str:
    """The longest start of ``text`` that is at most ``octets`` long in UTF-8."""
    return text.encode()[:octets].decode("utf-8", "ignore")
