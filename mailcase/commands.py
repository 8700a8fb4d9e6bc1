"""Commands written on their own lines of a reply: ``/cc``, ``/uncc``, ``/unsubscribe``, and
for agents ``/internal``, ``/close``, ``/status``, ``/priority``, ``/assign``.

This module only reads them; the pipeline decides who may use which. A command line is
removed from the comment text whether or not it is allowed, so a refused command never
reaches the other people on the case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PEOPLE = frozenset({"cc", "uncc", "unsubscribe"})
AGENTS = frozenset({"internal", "close", "status", "priority", "assign"})
_LINE = re.compile(
    rf"^\s*/({'|'.join(sorted(PEOPLE | AGENTS))})\b[ \t]*(.*?)\s*$", re.IGNORECASE
)


@dataclass(frozen=True)
class Command:
    """One command line: its name (lower case) and the rest of the line."""

    name: str
    argument: str


def extract(text: str) -> tuple[str, list[Command]]:
    """The text without its command lines, and the commands in order.

    ``/internal`` counts only on the first line, where a note is declared.
    """
    kept, found = [], []
    for number, line in enumerate(text.split("\n")):
        match = _LINE.match(line)
        if match is None or (match.group(1).lower() == "internal" and number > 0):
            kept.append(line)
            continue
        found.append(Command(match.group(1).lower(), match.group(2)))
    return "\n".join(kept).strip(), found
