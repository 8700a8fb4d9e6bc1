"""Raw mail bytes into the standard library's message tree, with the work bounded.

The first step of reading: where the header block ends (as the standard library's own
parser sees it, so that intake's idempotency key and the parser agree), and the compat32
parse fed a slice at a time, which stops building at PARSE_PARTS_MAX MIME entities and
reads at most HEADERS_READ octets of header lines, so that one hostile mail (millions of
empty parts, a million header lines) costs milliseconds and megabytes, not minutes and
gigabytes. What is not read stays in the raw mail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from email.errors import MessageDefect
from email.feedparser import BytesFeedParser
from email.message import Message
from email.policy import compat32
from typing import Any

from mailcase.reading import mime

# What email.parser.Parser hands its FeedParser per read: fed the same way, the parse is
# the same, without message_from_bytes's whole-mail str and its StringIO copy (four
# bytes per character) of it.
FEED_CHUNK = 8192
PARSE_PARTS_MAX = 4 * mime.MAX_PARTS
"""MIME entities the parser builds before it stops reading (the walk uses MAX_PARTS)."""


# A line that ends the header block: a blank one (the separator), or one that is neither
# a header field nor the continuation of one, where the standard library's parser starts
# the body (noting MissingHeaderBodySeparatorDefect); its own test for a header line is
# email.feedparser.headerRE, mirrored here so that whoever uses this agrees with it.
_HEADER_END = re.compile(rb"^(?:\r?(?:\n|\Z)|(?!From |[!-9;-~]*:|[ \t]))", re.MULTILINE)
HEADERS_READ = 1 << 20
"""Octets of a header block the parser reads; header lines past them are skipped."""


def header_end(raw: bytes) -> tuple[int, int]:
    """Where the header block of ``raw`` ends (before the LF that ends its last line) and
    the body starts: after the blank line, or at the first line that is not a header."""
    found = _HEADER_END.search(raw)
    if found is None:
        return len(raw), len(raw)
    start = found.start()
    if found.group(0) == b"":  # a line that is not a header: the body starts with it
        return max(start - 1, 0), start
    return max(start - 1, 0), found.end()


def _bounded_head(slices: Iterable[bytes], notes: list[str]) -> Iterator[bytes]:
    """The mail's slices as they are, unless its header block is longer than HEADERS_READ
    (a million header lines cost the parser seconds and half a GB): then the block is
    cut at a line end there, and its remaining lines are skipped up to the body."""
    pieces = iter(slices)
    head, body_start = b"", 0
    for piece in pieces:
        head += piece
        body_start = header_end(head)[1]
        if body_start < len(head) or len(head) > HEADERS_READ:
            break
    if body_start <= HEADERS_READ:  # the block ends within the limit
        yield head
        yield from pieces
        return
    cut = head.rfind(b"\n", 0, HEADERS_READ) + 1
    notes.append(f"header block over {HEADERS_READ} octets; the rest of its lines not read")
    yield head[:cut] + b"\r\n"
    rest = head[cut:]
    while True:
        complete = rest[:rest.rfind(b"\n") + 1]  # whole lines only: \Z is no blank line
        found = _HEADER_END.search(complete)
        if found is not None and found.start() < len(complete):
            yield rest[found.end() if found.group(0) else found.start():]
            yield from pieces
            return
        more = next(pieces, None)
        if more is None:
            return
        rest = rest[len(complete):] + more


def read_message(slices: Iterable[bytes], notes: list[str] | None = None) -> Message:
    """``email.message_from_bytes(raw, policy=compat32)``, in a fraction of the memory.

    message_from_bytes decodes the whole mail to one str and wraps that in a StringIO,
    which stores four bytes per character: a 25 MB mail cost about 120 MB before the
    parser read a line. Fed in slices, the parser only ever holds a slice besides what
    it builds, and the result is the same (ASCII with surrogateescape maps each byte to
    one character, so the slices match the ones Parser.parse feeds).
    """
    built = 0

    def counted(*args: Any, **kwargs: Any) -> Message:
        nonlocal built
        built += 1
        return Message(*args, **kwargs)

    parser = BytesFeedParser(counted, policy=compat32)
    for piece in _bounded_head(slices, notes if notes is not None else []):
        for start in range(0, len(piece), FEED_CHUNK):
            parser.feed(piece[start:start + FEED_CHUNK])
            if built > PARSE_PARTS_MAX:
                # A MIME bomb (millions of empty parts): stop building while reading,
                # not after a tree of millions of objects exists. What was read stays
                # a well-formed tree; the raw mail keeps the rest.
                message = parser.close()
                message.defects.append(PartsLimit(
                    f"more than {PARSE_PARTS_MAX} MIME parts; the rest not read"))
                return message
    return parser.close()


class PartsLimit(MessageDefect):
    """The parser stopped at PARSE_PARTS_MAX MIME entities."""


