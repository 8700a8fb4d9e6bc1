"""Recognise the lines around a quoted mail: attributions, header blocks, separators,
forward markers, quoted lines, signatures and mobile footers.

The patterns are built from the per-language tables of replymarkers; the shapes are here,
once for every language:

* an attribution ends with its verb ("On <date>, Name <addr> wrote:", "… пользователь X
  написал:", "---- On … wrote ----"), or names the writer after the verb with an address
  or a quoted name ("Am <date> schrieb Name <addr>:", "Name <addr> wrote on <date>:"), or
  starts with a date and ends with the writer's address ("2014-10-17 11:28 GMT+03:00 Name
  <addr>:", "26.06.2014, 14:41, "Name" <addr>:", "2011/4/7 Name <addr>"); it may be
  wrapped over up to five lines and must name a date or an address, or be followed by
  quoted lines ("sent" and "said" need the address: sentences use them too);
* a header block is three header fields or more within a few lines, one of them the
  sender ("From:/Sent:/To:", "De :/Envoyé le :/À :", "Message du :/De :/A :", with or
  without Outlook's stars);
* a separator is a dashed "Original Message" title in any of the table's languages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from mailcase.reading import replymarkers as markers

ATTRIBUTION_LINES = 5
HEADER_WINDOW = 8
HEADER_FIELDS_NEEDED = 3
SIGNATURE_LINES = 10
WRAP_WIDTH = 50


def _words(tables: Iterable[dict[str, tuple[str, ...]]]) -> str:
    """One alternation of every word of ``tables``, longest first, escaped."""
    words = {word for table in tables for entries in table.values() for word in entries}
    return "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))


def _verbs() -> str:
    """The verbs as one alternation, lower case; Latin and Cyrillic ones start a word."""
    tables = (markers.VERBS, markers.WEAK_VERBS)
    words = sorted({word.lower() for table in tables for entries in table.values()
                    for word in entries}, key=len, reverse=True)
    cjk = [re.escape(word) for word in words if ord(word[0]) >= 0x2E80]
    alphabetic = [re.escape(word) for word in words if ord(word[0]) < 0x2E80]
    return rf"(?<!\w)(?:{'|'.join(alphabetic)})|(?:{'|'.join(cjk)})"


_LEAD = r"^[\s>*|-]*"
_OPENERS = _words([markers.OPENERS])
_OPENER = re.compile(rf"{_LEAD}(?:{_OPENERS})\s", re.IGNORECASE)
# Searched in lower-cased text: much faster than IGNORECASE over sixty alternatives.
_VERB = re.compile(rf"(?:{_verbs()})(?:\s?\([a\u0430]\))?")  # "(a)", Latin or Cyrillic
_WEAK_VERBS = {word for entries in markers.WEAK_VERBS.values() for word in entries}
_ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
# What may follow an attribution's closing verb: a colon, Zoho's dashes, Gmail's ">".
_CLOSING = re.compile(r"\s*(?P<colon>[:：]?)[\s.*>-]*$")
_WROTE_ON = re.compile(r"(?<!\w)(?:wrote|schrieb)\s+(?:on|am)\b", re.IGNORECASE)
_DATE_FIRST = re.compile(
    rf"{_LEAD}\d{{4}}[-/]\d{{1,2}}[-/]\d{{1,2}}\s"  # 2011/4/7 Name <addr>
    rf"|{_LEAD}\d{{4}}年\d{{1,2}}月\d{{1,2}}日"  # Gmail in Japanese and Chinese
)
_ISO_DATE_NAME = re.compile(r"[\s>]*\d{4}-\d\d-\d\d \d{1,2}:\d\d GMT[+-]\d\d:\d\d [\w .'-]+$")
# An attribution sharing its line with the end of the writer's sentence.
_SHARED = re.compile(rf"(?<=\S[.!?])\s+(?=(?:{_OPENERS})\s)")
# Attributions are short: longer text is the writer's, and is not searched.
ATTRIBUTION_CHARS = 500
_FIELD_NAMES = {
    "from": _words([markers.FROM_FIELDS]),
    "date": _words([markers.DATE_FIELDS]),
    "other": _words([markers.OTHER_FIELDS]),
}
_FIELDS = {
    role: re.compile(rf"^[\s*]*(?:{names})[\s*]*[:：]", re.IGNORECASE)
    for role, names in _FIELD_NAMES.items()
}
_SEPARATOR = re.compile(
    rf"^[\s*]*-{{2,}}\s*(?:{_words([markers.ORIGINAL_MESSAGE])})\s*-{{2,}}[\s*]*$",
    re.IGNORECASE,
)
_FORWARD = re.compile(
    rf"^[\s>*]*-{{2,}}\s*(?:{_words([markers.FORWARDED])})\s*-{{2,}}[\s*]*$"
    rf"|^[\s>*]*(?:{_words([markers.FORWARD_LINES])})\s*$",
    re.IGNORECASE,
)
_FOOTER = re.compile(
    "^\\s*(?:{})\\s*$".format(
        "|".join(p for entries in markers.MOBILE_FOOTERS.values() for p in entries)),
    re.IGNORECASE,
)
_MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")
DELIMITER = re.compile(r"^[\s\-_,=+~#*ᐧ—]+$")
_NAME_SIGNATURE = re.compile(r"^-\w[\w.' ]{0,40}$")
_PROMPT = re.compile(r">>> \S")


def is_forward_marker(line: str) -> bool:
    """Whether ``line`` introduces a forwarded mail ("---------- Forwarded message ---")."""
    return bool(_FORWARD.match(line))


def is_quoted(line: str, python_prompts_quote: bool) -> bool:
    """Whether ``line`` is quoted with ``>``; a ``>>> `` prompt only when the mail has
    other quoted lines (a writer's Python session is not a quote)."""
    stripped = line.lstrip()
    if not stripped.startswith(">"):
        return False
    return python_prompts_quote or not _PROMPT.match(stripped)


def has_quote(lines: Sequence[str]) -> bool:
    """Whether some line is quoted other than with a ``>>> `` prompt."""
    return any(line.lstrip().startswith(">") and not _PROMPT.match(line.lstrip())
               for line in lines)


def is_wrapped_quote(lines: Sequence[str], index: int) -> bool:
    """Whether the unquoted line at ``index`` is the wrapped end of a long quoted line
    (a client that wraps after quoting): quoted lines directly before and after it."""
    if index == 0 or index + 1 >= len(lines) or not lines[index].strip():
        return False
    before, after = lines[index - 1].lstrip(), lines[index + 1].lstrip()
    return before.startswith(">") and after.startswith(">") and len(before) >= WRAP_WIDTH


def history_marker(lines: Sequence[str], index: int) -> int:
    """How many lines the attribution, header block or separator at ``index`` spans (0
    when none starts there). A header block or separator counts as one line: what
    follows it is the quoted mail."""
    line = lines[index]
    if not line.strip():
        return 0
    if _SEPARATOR.match(line) or header_block_at(lines, index):
        return 1
    return attribution_at(lines, index)


def header_block_at(lines: Sequence[str], index: int) -> bool:
    """Whether a header block of the quoted mail starts at ``index``: at least three
    header fields within a few lines, the sender's among them ("From: … To: …" alone,
    as on a shipping label, is no header block)."""
    roles: list[str] = []
    for line in lines[index : index + HEADER_WINDOW]:
        role = next((name for name, field in _FIELDS.items() if field.match(line)), None)
        if role is None and not roles:
            return False
        if role is not None:
            roles.append(role)
    return "from" in roles and len(roles) >= HEADER_FIELDS_NEEDED and len(set(roles)) >= 2


def attribution_at(lines: Sequence[str], index: int) -> int:
    """How many lines the attribution at ``index`` spans (0 when none starts there).

    A wrapped attribution's first line names a date, an address or starts like one
    ("On", "Le", "Am" …). The attribution starts further down when the window read from
    a later line is one too and that line starts like one (with an opener or a date)
    while the first line does not or ends a sentence, or names a writer ("Name <addr>")
    while the first line does not start like one.
    """
    first = lines[index]
    if not re.search(r"[0-9@<]", first) and not _OPENER.match(first):
        return 0
    window: list[str] = []
    for count in range(1, ATTRIBUTION_LINES + 1):
        if index + count > len(lines):
            break
        line = lines[index + count - 1]
        if not line.strip():
            continue
        window.append(line.strip())
        if sum(map(len, window)) > ATTRIBUTION_CHARS:
            break
        follows = lambda: quote_follows(lines, index + count)  # noqa: E731, B023
        if is_attribution(_joined(window), follows):
            weak = not _starts_strongly(window[0])
            ended = weak or window[0].endswith((".", "!", "?"))
            later = any(
                ((ended and _starts_strongly(window[k])) or (weak and _names_writer(window[k])))
                and is_attribution(_joined(window[k:]), follows)
                for k in range(1, len(window)))
            return 0 if later else count
    return 0


def _starts_strongly(line: str) -> bool:
    """Whether ``line`` starts like an attribution: with an opener ("On", "Am" …) or a date."""
    return bool(_OPENER.match(line) or re.match(r"[\s>*-]*\d", line))


def _names_writer(line: str) -> bool:
    """Whether ``line`` starts with a name and an address ("Name <addr> schrieb …")."""
    return bool(re.match(r"\s*[^\s<>@][^<>@]*<[^>]*@", line))


def shared_attribution(line: str) -> str | None:
    """The writer's text before an attribution that shares ``line`` with it, or None."""
    # An attribution is short: only the end of a long line can hold one.
    for match in _SHARED.finditer(line, max(0, len(line) - 2 * ATTRIBUTION_CHARS)):
        rest = line[match.end():]
        if re.search(r"[0-9@]", rest) and is_attribution(rest, lambda: False):
            return line[: match.start()]
    return None


def is_attribution(text: str, quote_follows: Callable[[], bool]) -> bool:
    """Whether ``text`` (one attribution, joined) introduces a quoted mail.

    ``quote_follows`` is called when the text names no date or address: "on Monday,
    Support wrote:" is one when quoted lines follow it, the same words in the writer's
    own text are not.
    """
    text = text.strip()
    if len(text) > ATTRIBUTION_CHARS or not text:
        return False
    if _dated_address(text) or _ISO_DATE_NAME.match(text):
        return True
    lower = text.lower()
    verbs = list(_VERB.finditer(lower if len(lower) == len(text) else text))
    if verbs and verbs[-1][0] in _WEAK_VERBS and "@" not in text:
        return False  # "… and I sent:" is the writer's sentence
    if any(_names_writer_after(text, verb) for verb in verbs if verb[0] not in _WEAK_VERBS):
        return True
    return bool(verbs) and _ends_with_verb(text, verbs[-1], quote_follows)


def _ends_with_verb(text: str, verb: re.Match[str], quote_follows: Callable[[], bool]) -> bool:
    """Whether ``text`` ends with its ``verb``: "On <date>, Name <addr> wrote:", "…
    пользователь X написал:", "---- On … <addr> wrote ----"."""
    closing = _CLOSING.match(text, verb.end())
    if closing is None or not text[: verb.start()].strip(" >*|-"):
        return False
    if not closing["colon"]:  # no colon: only with an address ("… <a@b.org> wrote ----")
        return "@" in text or text.endswith("--")
    return bool(re.search(r"[0-9@]", text)) or quote_follows()


def _names_writer_after(text: str, verb: re.Match[str]) -> bool:
    """Whether ``text`` names the writer after its ``verb`` and ends with a colon: "Am
    <date> schrieb Name <addr>:", "Op <date> schreef "Name":", "Name wrote on <date>:"."""
    if not text.endswith((":", "：")):
        return False
    head, tail = text[: verb.start()], text[verb.end():]
    if not tail.strip(" :："):
        return False
    if re.search(r"[0-9@]", head) and re.search(r"[@\"]", tail):
        return True
    if _OPENER.match(head) and re.search(r"\d", head):
        return True
    return bool(_WROTE_ON.match(text, verb.start()))


def _dated_address(text: str) -> bool:
    """Whether ``text`` starts with a date and ends with the writer's address: with a
    colon ("2014-10-17 11:28 GMT+03:00 Name <addr>:", "26.06.2014, 14:41, "Name"
    <addr>:", "… от Name <addr>:"), or without one after a numeric date ("2011/4/7 Name
    <addr>")."""
    colon = text.endswith((":", "："))
    if colon and _DATE_FIRST.match(text):
        return True
    body = text.rstrip(":： ")
    if body.endswith(">"):
        address = body[body.rfind("<") + 1 : -1]
        before = body[: body.rfind("<")]
    else:
        address = body.rsplit(None, 1)[-1] if body.split() else ""
        before = body[: len(body) - len(address)]
    if not _ADDRESS.fullmatch(address.strip("()")) or not re.search(r"\d", before):
        return False
    return colon or bool(_DATE_FIRST.match(text))


def quote_follows(lines: Sequence[str], index: int) -> bool:
    """Whether the next non-blank line from ``index`` is quoted."""
    following = next((lines[i] for i in range(index, len(lines)) if lines[i].strip()), "")
    return following.lstrip().startswith(">")


def _joined(window: list[str]) -> str:
    """The lines of a wrapped attribution as one line ("<\\naddr\\n>:" → "<addr>:")."""
    text = " ".join(window)
    return re.sub(r"\s+>", ">", re.sub(r"<\s+", "<", text))


def signature_starts(lines: Sequence[str]) -> int:
    """The index where the writer's signature or mobile footer begins (len(lines) when
    there is none): ``-- `` (RFC 3676 4.3), a bare ``--`` or an underscore rule above a
    few short lines, a lone "-Name" at the end, or a footer such as "Sent from my iPhone"
    (everything under a footer is the client's quoted mail or more footers)."""
    cut = next((index for index, line in enumerate(lines)
                if line == "-- " or _FOOTER.match(_MARKDOWN_LINK.sub(r"\1", line))
                or _is_rule_above_signature(lines, index)), len(lines))
    last = max((i for i, line in enumerate(lines[:cut]) if line.strip()), default=0)
    if last and not lines[last - 1].strip() and _NAME_SIGNATURE.match(lines[last].strip()):
        return last
    return cut


def _is_rule_above_signature(lines: Sequence[str], index: int) -> bool:
    """Whether a bare ``--`` or an underscore rule at ``index`` starts a signature: a
    few lines follow it, and for ``--`` a blank line precedes it or at most four follow."""
    rule = lines[index].strip()
    if rule != "--" and not re.fullmatch(r"_{2,}", rule):
        return False
    rest = [line for line in lines[index + 1 :] if line.strip()]
    if not rest or len(rest) > SIGNATURE_LINES:
        return False
    blank_before = index == 0 or not lines[index - 1].strip()
    return rule != "--" or blank_before or len(rest) <= 4
