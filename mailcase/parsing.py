"""Parse raw mail bytes into a frozen ParsedMail: the first stage of processing.

mail-parser decodes headers (RFC 2047), bodies and charsets; this module reduces its
result to the few typed fields the later stages need, and never raises on bad input:
whatever cannot be read is left empty, and the raw bytes stay stored either way.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.header import Header, decode_header, make_header
from email.message import Message as EmailMessage
from email.utils import getaddresses
from html.parser import HTMLParser

import mailparser

from mailcase.models import MESSAGE_ID_MAX

_MSGID = re.compile(r"<[^<>\s]+>")
_UNSAFE_FILENAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


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


def parse(raw: bytes) -> ParsedMail:
    """Parse ``raw`` leniently into a ParsedMail."""
    parsed = mailparser.parse_from_bytes(raw)
    message: EmailMessage = parsed.message
    senders = _addresses(message, "from") or _addresses(message, "sender")
    ids = message_ids(_header_text(message, "message-id"))
    return ParsedMail(
        message_id=ids[0] if ids else None,
        subject=_one_line(parsed.subject or ""),
        sender=senders[0] if senders else None,
        to=_addresses(message, "to"),
        cc=_addresses(message, "cc"),
        delivered_to=tuple(a.email for a in _addresses(message, "delivered-to")),
        in_reply_to=message_ids(_header_text(message, "in-reply-to")),
        references=message_ids(_header_text(message, "references")),
        text=_body_text(parsed),
        attachments=tuple(_attachments(parsed)),
        headers=_header_map(message),
        content_type=message.get_content_type(),
    )


def _header_text(message: EmailMessage, name: str) -> str | None:
    values = message.get_all(name)
    return " ".join(_raw_header(v) for v in values) if values else None


def _raw_header(value: object) -> str:
    """A header as text. Raw 8-bit headers (RFC 6532 UTF-8, or a legacy charset) reach us
    as surrogate escapes from the parser: turn them back into the characters meant."""
    if isinstance(value, Header):  # the compat32 parser's wrapper for 8-bit header bytes
        return "".join(
            part if isinstance(part, str) else _eight_bit(part, charset)
            for part, charset in decode_header(value)
        )
    text = str(value)
    if text.isascii() or not any("\udc80" <= c <= "\udcff" for c in text):
        return text
    return _eight_bit(text.encode("utf-8", "surrogateescape"), None)


def _eight_bit(raw: bytes, charset: str | None) -> str:
    """Undeclared 8-bit header bytes: UTF-8 (RFC 6532) if they are, else Windows-1252."""
    candidates = [charset] if charset and charset != "unknown-8bit" else []
    for candidate in (*candidates, "utf-8", "windows-1252"):
        try:
            return raw.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    return raw.decode("latin-1")


def _header_map(message: EmailMessage) -> dict[str, tuple[str, ...]]:
    result: dict[str, list[str]] = {}
    for key, value in message.items():
        result.setdefault(key.lower(), []).append(_one_line(_raw_header(value)))
    return {k: tuple(v) for k, v in result.items()}


def _addresses(message: EmailMessage, name: str) -> tuple[Address, ...]:
    values = [_raw_header(v) for v in message.get_all(name) or []]
    found = []
    for display, address in getaddresses(values):
        email = address.strip().lower()
        if "@" in email:
            found.append(Address(email=email, name=_decode_words(display)))
    return tuple(found)


def _decode_words(value: str) -> str:
    try:
        return _one_line(str(make_header(decode_header(value))))
    except (ValueError, LookupError, UnicodeDecodeError):
        return _one_line(value)


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _body_text(parsed: mailparser.MailParser) -> str:
    plain = [p for p in parsed.text_plain if p.strip()]
    if plain:
        return "\n".join(plain).replace("\r\n", "\n").strip()
    html = "\n".join(parsed.text_html)
    return html_to_text(html) if html else ""


class _TextExtractor(HTMLParser):
    """Collects visible text from HTML; block elements become line breaks."""

    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "blockquote"})
    HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self._hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN and self._hidden:
            self._hidden -= 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Readable plain text from an HTML body (tags dropped, blocks on their own lines)."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = (" ".join(line.split()) for line in "".join(extractor.parts).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def safe_filename(name: str | None, fallback: str = "attachment") -> str:
    """A filename with no folders, control or shell-special characters, at most 255 chars."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_FILENAME.sub("_", name).strip(" .")
    if not name.strip("_"):
        return fallback
    stem, dot, ext = name.rpartition(".")
    if len(name) > 255:
        name = (stem[: 254 - len(ext)] + dot + ext) if dot and len(ext) < 16 else name[:255]
    return name


def _lenient_base64(text: str) -> bytes:
    """Decode base64 the way mail clients do: skip stray characters, forgive a cut-off end."""
    cleaned = re.sub(r"[^A-Za-z0-9+/]", "", text)
    cleaned = cleaned[: len(cleaned) - 1] if len(cleaned) % 4 == 1 else cleaned
    return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))


def _attachments(parsed: mailparser.MailParser) -> list[ParsedAttachment]:
    result = []
    for item in parsed.attachments:
        payload = item.get("payload") or ""
        if item.get("binary"):
            content = _lenient_base64(payload)
        else:
            content = payload.encode(item.get("charset") or "utf-8", errors="replace")
        content_id = (item.get("content-id") or "").strip("<> ") or None
        result.append(
            ParsedAttachment(
                filename=safe_filename(item.get("filename")),
                content_type=item.get("mail_content_type") or "application/octet-stream",
                content=content,
                content_id=content_id,
            )
        )
    return result
