"""Keep only what the writer added to a reply: quoted history and signatures are cut.

A first, deliberately small cut: ``>`` quoting, the "On … wrote:" attribution line,
an Outlook "-----Original Message-----" divider and a ``-- `` signature. If cutting
leaves nothing, the whole text is kept; the full original always stays stored.
"""

from __future__ import annotations

import re

_ATTRIBUTION = re.compile(r"^\s*(On\b.{0,300}\bwrote:|-{2,}\s*Original Message\s*-{2,})\s*$",
                          re.IGNORECASE)
_SIGNATURE = "-- "


def new_text(body: str) -> str:
    """The text the writer added on top of the quoted mail."""
    kept: list[str] = []
    for line in body.splitlines():
        if line == _SIGNATURE or _ATTRIBUTION.match(line):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    text = "\n".join(kept).strip()
    return text or body.strip()
