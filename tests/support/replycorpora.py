"""The public reply corpora kept in tests/data/replies-*: each case is a reply's text and the
new text its writer added, with the cases where mailcase knowingly gives another answer.

Shared by the corpus tests and by bench/replies.py, which measures other extractors on the
same cases. Each corpus folder holds ``emails/NAME.txt``, ``expected/NAME.txt`` and a README
whose "Known differences" table (``| NAME | why |``) lists the cases mailcase does not
match, each with its reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.support.paths import DATA

CORPORA = ("discourse", "crisp", "github")
_KNOWN_ROW = re.compile(r"^\|\s*`([\w.-]+)`\s*\|\s*(.+?)\s*\|\s*$")


@dataclass(frozen=True)
class ReplyCase:
    """One reply of a corpus and the text its writer added."""

    corpus: str
    name: str
    body: str
    expected: str


def normalized(text: str) -> str:
    """``text`` compared as a comment is stored: LF line ends, no trailing blanks, trimmed."""
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def cases(corpus: str) -> list[ReplyCase]:
    """Every case of ``corpus``, by name."""
    folder = DATA / f"replies-{corpus}"
    return [
        ReplyCase(corpus, path.stem, path.read_text(encoding="utf-8"),
                  normalized((folder / "expected" / path.name).read_text(encoding="utf-8")))
        for path in sorted((folder / "emails").glob("*.txt"))
    ]


def known_differences(corpus: str) -> dict[str, str]:
    """The cases of ``corpus`` mailcase answers otherwise, with why (from its README)."""
    readme = (DATA / f"replies-{corpus}" / "README.md").read_text(encoding="utf-8")
    section = readme.partition("## Known differences")[2].partition("\n## ")[0]
    rows = (_KNOWN_ROW.match(line) for line in section.splitlines())
    return {row[1]: row[2] for row in rows if row}
