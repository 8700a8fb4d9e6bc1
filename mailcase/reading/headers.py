"""Header values as text: RFC 2047 encoded words, raw 8-bit bytes, folding.

The compat32 parser hands 8-bit header bytes over as surrogate escapes or as Header
objects; RFC 6532 says they are UTF-8, and older clients mean their local charset
(nearly always Windows-1252 in practice).
"""

from __future__ import annotations

import re
from email.header import Header, decode_header

from mailcase.reading.charsets import decode_text

_FOLD = re.compile(r"\r?\n[ \t]+")


# Control characters have no place in a one-line value (a subject, a name, a filename):
# a NUL or an escape sequence decoded from an encoded word would travel into the store,
# the operator's terminal and the Subject of mail we send. Those str.split() takes for
# whitespace become a space with the rest of it; the others go.
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")


def one_line(value: str) -> str:
    """Whitespace runs (folding included) as single spaces, other control characters gone."""
    return " ".join(_CONTROLS.sub("", value).split())


def raw_header(value: object) -> str:
    """A header value as the parser gave it, with 8-bit bytes turned into characters."""
    if isinstance(value, Header):
        return "".join(
            part if isinstance(part, str) else eight_bit(part, charset)
            for part, charset in decode_header(value)
        )
    text = str(value)
    if text.isascii() or not any("\udc80" <= c <= "\udcff" for c in text):
        return text
    return eight_bit(text.encode("utf-8", "surrogateescape"), None)


def eight_bit(raw: bytes, charset: str | None) -> str:
    """Undeclared 8-bit header bytes: UTF-8 (RFC 6532) if they are, else Windows-1252."""
    candidates = [charset] if charset and charset != "unknown-8bit" else []
    for candidate in (*candidates, "utf-8", "windows-1252"):
        try:
            return raw.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    return raw.decode("latin-1")


def decode_words(value: str) -> str:
    """RFC 2047 encoded words decoded (also when folded across lines), on one line.

    Each word is decoded on its own through the same charset chain as bodies, so a
    mislabelled word (gb2312 that is GBK) reads right and a broken one spoils only
    itself.
    """
    unfolded = _FOLD.sub(" ", value)
    if "=?" not in unfolded:
        return one_line(unfolded)
    try:
        parts = decode_header(unfolded)
    except (ValueError, LookupError, UnicodeError, AssertionError):
        return one_line(unfolded)
    text = "".join(
        part if isinstance(part, str) else decode_text(part, charset)
        for part, charset in parts
    )
    return one_line(text)
