"""Raw mail for tests, byte by byte, for the shapes a MIME library will not write for us."""

from __future__ import annotations

import struct


def raw_mail(body: bytes, content_type: bytes = b"text/plain", *, headers: bytes = b"",
             cte: bytes = b"8bit", message_id: bytes = b"<raw@customer.org>") -> bytes:
    """A single-part mail with ``body`` exactly as given."""
    return (b"From: Ann Customer <ann@customer.org>\r\nTo: support@example.com\r\n"
            b"Subject: raw\r\nMessage-ID: " + message_id + b"\r\nMIME-Version: 1.0\r\n"
            + headers + b"Content-Type: " + content_type + b"\r\n"
            b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n" + body)


def _tnef_attribute(level: int, attribute: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BII", level, attribute, len(data)) + data + struct.pack("<H", checksum)


def winmail_dat(files: dict[str, bytes]) -> bytes:
    """A minimal TNEF stream as Outlook writes it, carrying ``files``."""
    rend_data, title, data = 0x00069002, 0x00018010, 0x0006800F
    stream = struct.pack("<IH", 0x223E9F78, 0x0001)
    for name, content in files.items():
        stream += _tnef_attribute(2, rend_data, b"\x00" * 14)
        stream += _tnef_attribute(2, title, name.encode() + b"\x00")
        stream += _tnef_attribute(2, data, content)
    return stream
