"""Outbound MIME, built with the standard library's compat32 classes.

``EmailMessage`` with a modern policy parses every header it is given into header
objects; for mail we write ourselves from known-good parts that costs about a
millisecond a mail, most of the composing time. These builders produce the same
structure — text, text with an HTML alternative, attachments in multipart/mixed —
with RFC 2047 for non-ASCII subjects and names, RFC 2231 for non-ASCII filenames,
quoted-printable for non-ASCII text, base64 for files, and CRLF line ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from typing import Any
from urllib.parse import quote

WIRE = compat32.clone(linesep="\r\n")


LINE_MAX = 78  # RFC 5322's "should"; longer lines (up to its 998 "must") go as QP
PARAM_CHUNK = 40


def _charset(text: str) -> Charset | str:
    if text.isascii() and all(len(line) <= LINE_MAX for line in text.splitlines()):
        return "us-ascii"
    utf8 = Charset("utf-8")
    utf8.body_encoding = QP
    return utf8


def _text(body: str, subtype: str) -> MIMEText:
    return MIMEText(body, subtype, _charset(body))  # type: ignore[arg-type]


def _file(filename: str, content_type: str, content: bytes) -> MIMEBase:
    maintype, _, subtype = content_type.partition("/")
    if maintype == "application" or not maintype:
        part: MIMEBase = MIMEApplication(content, subtype or "octet-stream")
    else:
        part = MIMEApplication(content)
        part.replace_header("Content-Type", f"{maintype}/{subtype or 'octet-stream'}")
    part["Content-Disposition"] = _disposition(filename)
    return part


def _disposition(filename: str) -> str:
    """``attachment`` with the filename; RFC 2231 percent-encoding, in continuation
    pieces the header folding can break between, when it is not short plain ASCII."""
    plain = filename.isascii() and filename.isprintable() and not set(filename) & set('"\\')
    if plain and len(filename) <= PARAM_CHUNK:
        return f'attachment; filename="{filename}"'
    tokens = _percent_tokens(filename)
    pieces, current = [], "utf-8''"
    for token in tokens:
        if len(current) + len(token) > PARAM_CHUNK and current.strip("utf-8'"):
            pieces.append(current)
            current = ""
        current += token
    pieces.append(current)
    return "attachment; " + "; ".join(f"filename*{n}*={piece}" for n, piece in enumerate(pieces))


def _percent_tokens(text: str) -> list[str]:
    """``text`` percent-encoded as UTF-8, one token per character (never split a %XX)."""
    return [quote(char, safe="") for char in text]


def build(headers: Sequence[tuple[str, str]], text: str, html: str | None = None,
          files: Sequence[tuple[str, str, bytes]] = ()) -> bytes:
    """A complete mail as bytes; header values are given unencoded (ASCII addresses,
    names already RFC 2047-encoded by ``formataddr``; any other text is encoded here)."""
    body: Message = _text(text, "plain")
    if html is not None:
        alternative = MIMEMultipart("alternative")
        alternative.attach(body)
        alternative.attach(_text(html, "html"))
        body = alternative
    if files:
        mixed = MIMEMultipart("mixed")
        mixed.attach(body)
        for filename, content_type, content in files:
            mixed.attach(_file(filename, content_type, content))
        body = mixed
    for part in body.walk():
        if part is not body:
            del part["MIME-Version"]  # only the top level carries it
    mail = body
    content_headers = list(mail.items())
    for name in ("Content-Type", "MIME-Version", "Content-Transfer-Encoding"):
        del mail[name]
    for name, value in headers:
        # compat32 takes a Header where it takes a str (the stubs do not say so).
        encoded: Any = value if value.isascii() else Header(value, "utf-8", header_name=name)
        mail[name] = encoded
    mail["MIME-Version"] = "1.0"
    for name, value in content_headers:
        if name != "MIME-Version":
            mail[name] = value
    return mail.as_bytes(policy=WIRE)
