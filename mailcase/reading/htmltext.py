"""Readable plain text from an HTML body, optionally without the quoted history.

Mail clients mark what they quote: Gmail's ``gmail_quote``, Apple Mail's and
Thunderbird's ``<blockquote type="cite">``, Yahoo's ``yahoo_quoted``, and Outlook's
reply header box (``divRplyFwdMsg``, ``appendonsend``), after which everything is
history. With ``strip_quotes`` those containers (and Gmail's and Thunderbird's
signature blocks) are skipped, and an Outlook marker ends the text. A ``-- <br>`` line
stays the ``-- `` signature separator of plain text. Nothing here sanitizes HTML: the
result is text, never markup.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

BLOCKS = frozenset({
    "address", "article", "blockquote", "dd", "div", "dl", "dt", "footer", "h1", "h2", "h3",
    "h4", "h5", "h6", "header", "hr", "li", "ol", "p", "pre", "section", "table", "tr", "ul",
})
HIDDEN = frozenset({"head", "script", "style", "title", "template"})
# Outlook writes the header box of the quoted mail with this top border.
_OUTLOOK_BORDER = re.compile(r"border-top:\s*solid\s+#(E1E1E1|B5C4DF)", re.IGNORECASE)
_QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix", "protonmail_quote",
                  # and the signature blocks of Gmail and Thunderbird
                  "gmail_signature", "moz-signature")
_CUT_IDS = (
    "divrplyfwdmsg", "appendonsend", "stopspelling", "mail-editor-reference-message-container",
)


def _is_quote(tag: str, attrs: dict[str, str]) -> bool:
    classes = attrs.get("class", "").lower().split()
    if any(name in classes for name in _QUOTE_CLASSES):
        return True
    return tag == "blockquote" and attrs.get("type", "").lower() == "cite"


def _is_cut(tag: str, attrs: dict[str, str]) -> bool:
    if attrs.get("id", "").lower() in _CUT_IDS:
        return True
    return tag == "div" and bool(_OUTLOOK_BORDER.search(attrs.get("style", "")))


class _Extractor(HTMLParser):
    """Collects visible text; block elements start new lines."""

    def __init__(self, strip_quotes: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.strip_quotes = strip_quotes
        self.parts: list[str] = []
        self.hidden = 0
        self.pre = 0
        self.skipping: list[str] = []  # tag of the quote container being skipped, per depth
        self.skip_depth = 0
        self.stopped = False
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.stopped:
            return
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skip_depth += 1
            return
        values = {k.lower(): (v or "") for k, v in attrs}
        if self.strip_quotes and _is_cut(tag, values):
            self.stopped = True
            return
        if self.strip_quotes and _is_quote(tag, values):
            self.skipping.append(tag)
            self.skip_depth = 1
            return
        self._open(tag, values)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "hr", "img", "meta", "link", "input"):
            self.handle_endtag(tag)

    def _open(self, tag: str, attrs: dict[str, str] | None = None) -> None:
        if tag == "a" and attrs and attrs.get("href", "").startswith(("http:", "https:")):
            self.links.append(attrs["href"])
        elif tag in ("td", "th") and self.parts and not self.parts[-1].endswith(("\n", " ")):
            self.parts.append(" ")
        if tag in HIDDEN:
            self.hidden += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in BLOCKS:
            self._line()
            if tag == "li":
                self.parts.append("- ")
            elif tag == "pre":
                self.pre += 1

    def handle_endtag(self, tag: str) -> None:
        if self.stopped:
            return
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skip_depth -= 1
                if self.skip_depth == 0:
                    self.skipping.pop()
            return
        if tag == "a" and self.links:
            href = self.links.pop()
            shown = "".join(self.parts[-3:])
            if href not in shown:  # "the log is <here>": keep where "here" points
                self.parts.append(f" <{href}>")
        if tag in HIDDEN and self.hidden:
            self.hidden -= 1
        elif tag in BLOCKS:
            self._line()
            if tag == "pre" and self.pre:
                self.pre -= 1

    def handle_data(self, data: str) -> None:
        if self.stopped or self.skipping or self.hidden:
            return
        self.parts.append(data if self.pre else re.sub(r"[ \t\r\n\f]+", " ", data))

    def _line(self) -> None:
        """Start a new line unless the text already stands at the start of one."""
        if self.parts and not self.parts[-1].endswith("\n"):
            self.parts.append("\n")


def html_to_text(html: str, *, strip_quotes: bool = False) -> str:
    """Plain text of ``html``: one line per block, at most one blank line in a row."""
    extractor = _Extractor(strip_quotes)
    extractor.feed(html)
    extractor.close()
    text = "".join(extractor.parts).replace("\xa0", " ")
    # "-- <br>" is an HTML signature separator: keep it "-- " (RFC 3676 4.3) once stripped.
    lines = ["-- " if line.strip() == "--" else line.strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
