"""Hypothesis strategies for hostile mail: MIME trees, headers, encodings and charsets.

Built from raw bytes, not from the email package's own classes, so that what comes out
is what a hostile or broken sender writes: boundaries that do not match, parts without
headers, base64 that is not, charsets that do not exist, 8-bit bytes where only ASCII
may stand, encoded words cut in half, nesting deeper than any client would.
"""

from __future__ import annotations

import base64
import quopri

from hypothesis import strategies as st

CHARSETS = ["utf-8", "iso-8859-1", "windows-1252", "gb2312", "iso-2022-jp", "koi8-r",
            "x-unknown", "utf-7", "bogus charset", "", "utf-16"]
ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "binary", "x-uuencode", "bogus"]
TYPES = ["text/plain", "text/html", "application/octet-stream", "image/png",
         "message/rfc822", "message/delivery-status", "text/calendar", "application/ms-tnef",
         "multipart/mixed", "bogus", ""]
NAMES = ["../../etc/passwd", "C:\\x.exe", "in\u202evoice.txt", "a\x00b.txt", "",
         "=?utf-8?b?w6TDtsO8LnR4dA==?=", "ФНС_РФ558.zip", "x" * 300]

header_bytes = st.one_of(
    st.text(min_size=0, max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=60),
    st.sampled_from([b"=?utf-8?q?=0D=0ABcc:_x@evil.test?=", b"=?bogus?b?////?=",
                     b"=?utf-8?b?", b"=?iso-2022-jp?b?GyRCJUYlOSVIGyhC?=", b"\x1b[2J",
                     b'"unterminated', b"<>", b"@", b",,,", b"a" * 2000]),
).map(lambda b: b.replace(b"\r", b" ").replace(b"\n", b" "))


@st.composite
def headers(draw: st.DrawFn) -> bytes:
    """A header block: some real fields with hostile values, some junk lines."""
    fields = draw(st.lists(st.sampled_from(
        ["From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To", "References", "Date",
         "Reply-To", "Sender", "Content-Type", "Content-Disposition", "X-Priority",
         "Auto-Submitted", "Return-Path", "Received"]), max_size=8))
    lines = [name.encode() + b": " + draw(header_bytes) for name in fields]
    if draw(st.booleans()):
        lines.append(b"From: " + draw(header_bytes))
    if draw(st.integers(0, 5)) == 0:
        lines.append(draw(header_bytes))  # a line that is no header at all
    return b"\r\n".join(lines)


def _encode(body: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.encodebytes(body)
    if encoding == "quoted-printable":
        return quopri.encodestring(body)
    return body


@st.composite
def leaf(draw: st.DrawFn) -> bytes:
    """A single part: a content type, maybe a charset, a filename, an encoding."""
    kind = draw(st.sampled_from(TYPES))
    encoding = draw(st.sampled_from(ENCODINGS))
    head = [b"Content-Type: " + kind.encode()]
    if draw(st.booleans()):
        head[0] += b"; charset=\"" + draw(st.sampled_from(CHARSETS)).encode() + b"\""
    if draw(st.booleans()):
        name = draw(st.sampled_from(NAMES)).encode("utf-8", "surrogatepass")
        head.append(b"Content-Disposition: attachment; filename=\"" + name + b"\"")
    head.append(b"Content-Transfer-Encoding: " + encoding.encode())
    body = draw(st.one_of(st.binary(max_size=300),
                          st.text(max_size=200).map(lambda t: t.encode("utf-8", "replace"))))
    if draw(st.booleans()):
        body = _encode(body, encoding)
    elif encoding == "base64":
        body = draw(st.sampled_from([b"!!!not base64!!!", b"QUJD", b"=", body]))
    return b"\r\n".join(head) + b"\r\n\r\n" + body


@st.composite
def tree(draw: st.DrawFn, depth: int = 0) -> bytes:
    """A MIME tree up to a few levels, its boundaries sometimes broken on purpose."""
    if depth >= 4 or draw(st.integers(0, 2)) == 0:
        return draw(leaf())
    boundary = draw(st.sampled_from(["b1", "b2", "=_x", "", "--", "b1"])) + str(depth)
    subtype = draw(st.sampled_from(["mixed", "alternative", "related", "report", "digest",
                                    "signed"]))
    children = draw(st.lists(tree(depth + 1), min_size=0, max_size=4))
    parts = [b"--" + boundary.encode() + b"\r\n" + child + b"\r\n" for child in children]
    close = draw(st.sampled_from([b"--" + boundary.encode() + b"--\r\n", b"", b"--wrong--\r\n"]))
    return (b"Content-Type: multipart/" + subtype.encode() + b"; boundary=\""
            + boundary.encode() + b"\"\r\n\r\npreamble\r\n" + b"".join(parts) + close)


@st.composite
def hostile_mail(draw: st.DrawFn) -> bytes:
    """A whole mail: hostile headers over a hostile MIME tree (or just junk bytes)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=500))
    return draw(headers()) + b"\r\n" + draw(tree())
