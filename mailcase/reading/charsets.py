"""Turn the bytes of a text part into text, whatever its label says.

The declared charset first (with the aliases real mail needs: gb2312 that is really
GBK, Korean and Hebrew labels), then ISO-2022-JP when the bytes carry its escape
sequences without a label, then UTF-8, Windows-1252 and finally Latin-1, which
cannot fail. Each step is strict, so a wrong label falls through to the next
instead of producing replacement characters.
"""

from __future__ import annotations

import codecs

# Labels seen in the wild that name a charset too narrowly or by a non-standard name.
ALIASES = {
    "gb2312": "gb18030",  # mail labelled gb2312 is routinely GBK; GB18030 is a superset of both
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",  # Outlook's label for Korean
    "euc-kr": "cp949",
    "iso-8859-8-i": "iso-8859-8",  # logical-order Hebrew, same bytes
    "x-mac-roman": "mac_roman",
    "shift-jis": "cp932",  # Windows' superset
    "shift_jis": "cp932",
    "us-ascii": "utf-8",  # "ascii" mail with 8-bit bytes is nearly always UTF-8
    "ascii": "utf-8",
    # The WHATWG Encoding Standard reads these labels as Windows-1252, as mail clients
    # do: Latin-1 mail routinely carries its curly quotes, dashes and euro sign.
    "iso-8859-1": "windows-1252",
    "iso8859-1": "windows-1252",
    "latin1": "windows-1252",
    "latin-1": "windows-1252",
    "iso_8859-1": "windows-1252",
    # ISO-2022-JP as Japanese Windows writes it (NEC and IBM extensions, e.g. ①).
    "iso-2022-jp": "iso2022_jp_ext",
    "unknown-8bit": "",
    "x-unknown": "",
}
FALLBACKS = ("utf-8", "windows-1252")
_ISO_2022_JP_ESCAPES = (b"\x1b$B", b"\x1b$@", b"\x1b(J", b"\x1b(B")
_JAPANESE_7BIT = ("iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_3", "iso2022_jp")
# Single-byte labels that UTF-8 bytes are often sent under by mistake.
_SINGLE_BYTE = frozenset({"cp1252", "latin_1", "iso8859_15", "cp1250", "iso8859_2"})


def codec_for(label: str | None) -> str | None:
    """The Python codec for a MIME charset label, or None when it names none we know."""
    if not label:
        return None
    name = ALIASES.get(label.strip().strip('"').lower(), label.strip().strip('"').lower())
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_text(raw: bytes, declared: str | None) -> str:
    """Text from ``raw``: the declared charset if it fits, else the fallback chain."""
    if b"\x1b" in raw and any(escape in raw for escape in _ISO_2022_JP_ESCAPES):
        # Escape sequences say ISO-2022-JP whatever the label; never read them as UTF-8.
        for japanese in _JAPANESE_7BIT:
            try:
                return raw.decode(japanese)
            except UnicodeDecodeError:
                continue
        return _jis_via_cp932(raw)
    candidates: list[str] = []
    label = codec_for(declared)
    if label in _SINGLE_BYTE and not raw.isascii() and _is_utf8(raw):
        label = "utf-8"  # a single-byte label always "fits"; valid UTF-8 is the better bet
    if label:
        candidates.append(label)
    candidates += [c for c in FALLBACKS if c not in candidates]
    for candidate in candidates:
        try:
            return raw.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    return raw.decode("latin-1")


def _jis_via_cp932(raw: bytes) -> str:
    """ISO-2022-JP read the way Windows does (CP50220): its JIS X 0208 pairs turned into
    Shift_JIS and decoded as CP932, which has the NEC and IBM extensions (①, ㈱, …)."""
    out = bytearray()
    double = False
    index = 0
    while index < len(raw):
        if raw[index] == 0x1B and index + 2 < len(raw):
            sequence = raw[index + 1 : index + 3]
            double = sequence in (b"$B", b"$@")
            index += 3
            continue
        if double and index + 1 < len(raw) and raw[index] > 0x20:
            first, second = raw[index], raw[index + 1]
            lead = (first - 0x21) // 2 + 0x81
            lead += 0x40 if lead > 0x9F else 0
            trail = second + (0x1F if first % 2 else 0x7E)
            trail += 1 if first % 2 and trail >= 0x7F else 0
            out += bytes((lead & 0xFF, trail & 0xFF))
            index += 2
            continue
        out.append(raw[index])
        index += 1
    return bytes(out).decode("cp932", errors="replace")


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
