"""Printing for the CLI: aligned tables for people, JSON for scripts, nothing a terminal obeys.

Subjects, names and bodies come from strangers' mail. Printed as they are, their control
characters would drive the operator's terminal: clear the screen, move the cursor over
what was printed, set the clipboard (OSC 52), plant links (OSC 8), or reorder text with
bidirectional overrides. Every string printed here shows such characters as visible
escapes instead (``\\x1b``, ``\\u202e``); JSON writes them as ``\\uXXXX``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from typing import Any, TextIO

# C0 controls but tab and newline, DEL, C1 controls, the line and paragraph separators
# (str.splitlines would break on them) and the bidirectional embeddings and isolates.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_IN_LINE = re.compile(f"{_UNSAFE.pattern[:-1]}\n]")


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: str, *, lines: bool = True) -> str:
    """``text`` with every character a terminal would act on made visible; newlines stay
    when ``lines`` (a body), and are escaped too in a table cell."""
    return (_UNSAFE if lines else _UNSAFE_IN_LINE).sub(_escape, text)


def emit_json(value: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    text = json.dumps(value, indent=2, ensure_ascii=False)
    # json escapes C0 controls itself; the rest become \uXXXX, still the same JSON string.
    out.write(_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text) + "\n")


def table(
    rows: Sequence[Sequence[Any]], headers: Sequence[str], out: TextIO | None = None
) -> None:
    """Columns padded to their widest cell; the last column is never padded."""
    out = out or sys.stdout
    cells = [[str(h) for h in headers]] + [
        ["-" if v is None else shown(str(v), lines=False) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        padded = [c.ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True)] + [row[-1]]
        out.write("  ".join(padded).rstrip() + "\n")


def indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line if line else "" for line in text.splitlines())


def capped(rows: list[Any], limit: int, what: str) -> list[Any]:
    """The first ``limit`` of ``rows``, which were fetched with one row beyond the limit;
    when that row exists, stderr says the list is cut (stdout stays clean for scripts)."""
    if len(rows) > limit:
        tell_more(limit, what)
    return rows[:limit]


def tell_more(limit: int, what: str, order: str = "newest") -> None:
    """Say on stderr that a list shows only its first ``limit`` (stdout stays clean)."""
    print(f"mailcase: showing the {order} {limit} {what}; there are more "
          "(--limit N shows more)", file=sys.stderr)


def minute(when: str | None) -> str:
    """An ISO time to the minute, as tables show it ("" for none)."""
    return (when or "")[:16].replace("T", " ")
