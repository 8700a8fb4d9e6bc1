"""Commands written on their own lines of a reply: ``/cc``, ``/uncc``, ``/unsubscribe``, and
for agents ``/internal``, ``/close``, ``/status``, ``/hold``, ``/priority``, ``/assign``,
``/merge``.

This module only reads them; the pipeline decides who may use which. A command line is
removed from the comment text whether or not it is allowed, so a refused command never
reaches the other people on the case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import getaddresses

PEOPLE = frozenset({"cc", "uncc", "unsubscribe"})
AGENTS = frozenset({"internal", "close", "status", "hold", "priority", "assign", "merge"})
# The commands that decide a case's status themselves: a reply giving one is not also put
# on hold by its mailbox's hold_on_reply.
STATUS = frozenset({"close", "status", "hold", "merge"})
_LINE = re.compile(
    rf"^\s*/({'|'.join(sorted(PEOPLE | AGENTS))})\b[ \t]*(.*?)\s*$", re.IGNORECASE
)


# A plain addr-spec: a dot-atom local part and a domain of labels (IDN letters allowed).
_ADDR_SPEC = re.compile(r"^[\w.!#$%&'*+/=?^`{|}~-]+@(?:[\w-]+\.)+[\w-]{2,}$")


@dataclass(frozen=True)
class Command:
    """One command line: its name (lower case) and the rest of the line."""

    name: str
    argument: str


def single_address(text: str) -> str | None:
    """The one plain address in ``text`` (lower case), or None: lists, quotes, spaces and
    control characters are refused rather than guessed at, so an address can never
    smuggle a second recipient into a collaborator list."""
    found = getaddresses([text.strip()])
    if len(found) != 1 or found[0][0]:
        return None
    address = found[0][1].strip().lower()
    return address if _ADDR_SPEC.match(address) else None


def extract(text: str) -> tuple[str, list[Command]]:
    """The text without its command lines, and the commands in order."""
    kept, found = [], []
    for line in text.split("\n"):
        match = _LINE.match(line)
        if match is None:
            kept.append(line)
            continue
        found.append(Command(match.group(1).lower(), match.group(2)))
    return "\n".join(kept).strip(), found
