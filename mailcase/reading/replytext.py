"""Keep only what the writer added to a reply: quoted history, signatures and footers go.

A reply is read line by line (the shapes are in replylines, the words per language in
replymarkers):

* An attribution ("On … wrote:", "Am … schrieb …:", "2014-10-17 11:28 GMT+03:00 Name
  <addr>:", …) followed by ``>``-quoted lines introduces a quote: the attribution and
  the quoted lines go, and text after the quote is the writer's again (bottom posting,
  answers between quoted lines). Followed by unquoted text, or an Outlook header block or
  "-----Original Message-----" line, it starts the quoted mail: everything after goes.
* ``>``-quoted lines go wherever they are, with a long quoted line's wrapped end; a
  ``>>>`` prompt stays in a mail that quotes nothing else.
* A forward is kept whole: the forwarded mail is what its writer brings to the case.
  Only the writer's own text above the forward marker loses its signature.
* Then a ``-- `` signature (RFC 3676 4.3; also ``--`` or an underscore rule above a few
  short lines), a lone "-Name" sign-off and mobile footers ("Sent from my iPhone", "Get
  Outlook for Android", …) end the text, and trailing rules and blank lines go.

HTML-only mail is cut at its quote markup first (see htmltext). If nothing would be left,
the whole text is kept; the full original always stays stored with the message.

Why not a library: bench/README.md measures quotequail, mail-parser-reply,
email_reply_parser and talon against these rules on the public reply corpora.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mailcase.reading import replylines
from mailcase.reading.htmltext import html_to_text
from mailcase.reading.parsing import ParsedMail

_FORWARD_SUBJECT = re.compile(r"^\s*(?:Fwd?|WG|TR|RV|ENC|Doorst|I|Fw)\s?:", re.IGNORECASE)
# Where a line was removed: blank lines around it fold into one.
_GAP = None


def comment_text(mail: ParsedMail) -> str:
    """The new text of ``mail``: from its text part, or from its HTML when it has none.

    A forward (by subject or by its marker line) is kept whole: the forwarded mail is
    what its writer brings to the case.
    """
    if _FORWARD_SUBJECT.match(mail.subject):
        return _forward_text(_lines(mail.text)) or mail.text.strip()
    if mail.text_from_html and mail.html:
        text = new_text(html_to_text(mail.html, strip_quotes=True))
        return text or mail.text
    return new_text(mail.text)


def new_text(body: str) -> str:
    """The text the writer added to the quoted mail in ``body``."""
    lines = _lines(body)
    kept, forwarded = _reply_lines(lines)
    text = _without_signature(kept)
    if forwarded:
        text = "\n\n".join(filter(None, (text, _trimmed([*forwarded]))))
    return text or body.strip()


def _lines(body: str) -> list[str]:
    """``body``'s lines, whatever its line ends."""
    return body.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _forward_text(lines: list[str]) -> str:
    """A forward: the writer's note without its signature, then the rest verbatim."""
    start = next((i for i in range(len(lines)) if replylines.is_forward_marker(lines[i])
                  or replylines.history_marker(lines, i)), len(lines))
    note = _without_signature(list(lines[:start]))
    return "\n\n".join(filter(None, (note, _trimmed(list(lines[start:])))))


def _reply_lines(lines: list[str]) -> tuple[list[str | None], list[str]]:
    """The writer's lines (``_GAP`` where history was removed) and, when the mail
    forwards one, the forwarded mail from its marker on."""
    prompts_quote = replylines.has_quote(lines)
    kept: list[str | None] = []
    index, quoted_yet, written = 0, False, False
    while index < len(lines):
        line = lines[index]
        if replylines.is_forward_marker(line) and not quoted_yet:
            return kept, lines[index:]
        if replylines.is_quoted(line, prompts_quote) or replylines.is_wrapped_quote(lines, index):
            kept.append(_GAP)
            quoted_yet, index = True, index + 1
            continue
        reply = replylines.shared_attribution(line)
        if reply is not None:
            kept.append(reply)
        span = 1 if reply is not None else replylines.history_marker(lines, index)
        # Unquoted text after the history's start is the quoted mail (top posting), unless
        # an attribution stands above everything: then the client quoted nothing.
        if span and not replylines.quote_follows(lines, index + span) and (
                written or reply is not None or not replylines.attribution_at(lines, index)):
            break
        kept.extend([_GAP] * span if span else [line])
        written = written or (not span and bool(line.strip()))
        index += span or 1
    return kept, []


def _without_signature(kept: Sequence[str | None]) -> str:
    """The writer's lines up to their signature or footer, gaps folded, trimmed."""
    lines = [line if line == "-- " else line.rstrip() for line in kept if line is not None]
    positions = [i for i, line in enumerate(kept) if line is not None]
    cut = replylines.signature_starts(lines)
    ends = positions[cut] if cut < len(positions) else len(kept)
    return _trimmed(_folded(kept[:ends]))


def _folded(kept: Sequence[str | None]) -> list[str]:
    """``kept`` with each run of blank lines that holds a gap folded into one blank line
    (into none when the run is only removed lines)."""
    out: list[str] = []
    run: list[str | None] = []
    for line in [*kept, "end"]:
        if line is None or not line.strip():
            run.append(line)
            continue
        if _GAP in run:  # blank lines around removed ones fold into one, or none
            out.extend([""] if any(r is not None for r in run) else [])
        else:
            out.extend(r or "" for r in run)
        run = []
        out.append(line)
    return out[:-1]


def _trimmed(lines: list[str]) -> str:
    """``lines`` without trailing blanks, rules and blank lines at either end."""
    while lines and (not lines[-1].strip() or replylines.DELIMITER.match(lines[-1])):
        lines.pop()
    return "\n".join(line.rstrip() for line in lines).strip()
