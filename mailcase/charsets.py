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
    "unknown-8bit": "",
    "x-unknown": "",
}
FALLBACKS = ("utf-8", "windows-1252")
_ISO_2022_JP_ESCAPES = (b"\x1b$B", b"\x1b$@", b"\x1b(J", b"\x1b(B")


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
    candidates: list[str] = []
    codec = codec_for(declared)
    if codec:
        candidates.append(codec)
    if b"\x1b" in raw and any(escape in raw for escape in _ISO_2022_JP_ESCAPES):
        candidates.append("iso2022_jp")
    candidates += [c for c in FALLBACKS if c not in candidates]
    for candidate in candidates:
        try:
            return raw.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    return raw.decode("latin-1")
