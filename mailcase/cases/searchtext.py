"""What a search reads in text: the words of a query as the index splits them, and the
snippet that shows a result's words in place.

A query is read, never obeyed: whatever an agent or a program types, only runs of letters
and digits reach the engine, as quoted words (see cases.search), so no text is a syntax
error or an operator. What it may say:

- words, all of which a case must contain (anywhere in it): ``printer toner``;
- ``"a phrase"``: these words next to each other (an unclosed quote runs to the end);
- ``print*``: a word that begins so;
- ``ann@customer.org``, ``@customer.org`` or ``customer.org``: the cases that address
  or domain wrote (opened, or commented on), and those whose text names it.

Anything else — ``-``, parentheses, ``NEAR``, ``OR``, ``:``, SQL — is text: punctuation
separates words, and words that run together with punctuation (``e-mail``, ``v1.2``)
are a phrase of their parts, as the index holds them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from mailcase.cases.errors import BadValue

MAX_LENGTH = 1000  # characters of one query
MAX_TERMS = 16  # words, phrases and addresses of one query

_WORD = re.compile(r"[^\W_]+")  # letters and digits, as FTS5's unicode61 splits text
_QUOTED = re.compile(r'"([^"]*)"?')
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.[^\W\d_]{{2,}}")
_ADDRESS = re.compile(rf"[\w.+'-]+@({_DOMAIN.pattern})")
_EDGES = "<>()[]{},;:!?'\"`."  # around an address in running text: <ann@x.org>,


def fold(word: str) -> str:
    """A word as the index compares it: lower case, without accents."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def words(text: str) -> list[str]:
    """The words of ``text``, as typed (the engines fold them themselves)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text))


def sender_word(address: str, *, domain: bool = False) -> str:
    """The opaque word the index holds for a sender's address or its domain (migration
    0008): ``xa``/``xd`` and the hex of its lower-cased UTF-8."""
    return ("xd" if domain else "xa") + address.lower().encode("utf-8").hex()


@dataclass(frozen=True)
class Term:
    """One thing every result contains: ``words`` next to each other in one text (the
    last one only beginning so, with ``prefix``), or a case written from ``sender``."""

    words: tuple[str, ...]
    prefix: bool = False
    sender: str | None = None  # sender_word() of an address or domain

    @property
    def folded(self) -> tuple[str, ...]:
        return tuple(fold(word) for word in self.words)


def parse(text: str) -> tuple[Term, ...]:
    """The terms of a query; BadValue when there is nothing to search for at all, or
    too much. Text that holds no words (``*``, ``"--"``) gives no terms: no results."""
    if not text.strip():
        raise BadValue("the search is empty: give words to look for")
    if len(text) > MAX_LENGTH:
        raise BadValue(f"the search is longer than {MAX_LENGTH:,} characters")
    terms: list[Term] = []
    position = 0
    for quoted in _QUOTED.finditer(text):
        terms += _loose(text[position:quoted.start()])
        terms.append(Term(tuple(words(quoted.group(1)))))
        position = quoted.end()
    terms += _loose(text[position:])
    distinct: dict[object, Term] = {}  # "Printer printer" asks one thing twice
    for term in terms:
        if term.words:
            distinct.setdefault((term.folded, term.prefix, term.sender), term)
    unique = tuple(distinct.values())
    if len(unique) > MAX_TERMS:
        raise BadValue(f"the search has {len(unique)} words and phrases; at most "
                       f"{MAX_TERMS} are searched together")
    return unique


def _loose(text: str) -> list[Term]:
    """The terms of text outside quotes: one per whitespace-separated piece."""
    return [_term(piece) for piece in text.split()]


def _term(piece: str) -> Term:
    core = piece.strip(_EDGES)
    if _ADDRESS.fullmatch(core):
        return Term(tuple(words(core)), sender=sender_word(core))
    domain = core.removeprefix("@")
    if _DOMAIN.fullmatch(domain):
        return Term(tuple(words(domain)), sender=sender_word(domain, domain=True))
    found = tuple(words(piece))
    return Term(found, prefix=bool(found) and piece.rstrip(_EDGES).endswith(found[-1] + "*"))


# -- snippets ---------------------------------------------------------------------

SNIPPET_WORDS = 24  # words of text around the first match
MARK = ("[", "]")  # around each matching word
EDGE = 3  # characters kept before the first word and after the last
SNIPPET_SCAN = 100_000  # characters of a text looked through for the snippet
_SPACES = re.compile(r"\s+")


def matches(text: str, terms: tuple[Term, ...]) -> bool:
    """Whether ``text`` holds one of the terms' words (as the index would find them)."""
    return bool(_hits(_spans(text), terms))


def snippet(text: str, terms: tuple[Term, ...]) -> str:
    """A short excerpt of ``text`` around its first match, matching words marked; the
    beginning of the text when no word of the terms is in it (a match by sender)."""
    whole = len(text) <= SNIPPET_SCAN
    text = text[:SNIPPET_SCAN]
    spans = _spans(text)
    if not spans:
        return ""
    hits = _hits(spans, terms)
    first = min(hits, default=0)
    start = max(0, min(first - SNIPPET_WORDS // 3, len(spans) - SNIPPET_WORDS))
    end = min(len(spans), start + SNIPPET_WORDS)
    pieces = []
    for index in range(start, end):
        begin, stop, _ = spans[index]
        if index > start:
            pieces.append(_SPACES.sub(" ", text[spans[index - 1][1]:begin]))
        word = text[begin:stop]
        pieces.append(f"{MARK[0]}{word}{MARK[1]}" if index in hits else word)
    # The text's own first and last characters (a quote, a full stop) where it is whole.
    head = text[:spans[0][0]].lstrip()[-EDGE:] if start == 0 else "…"
    tail = text[spans[-1][1]:].rstrip()[:EDGE] if end == len(spans) and whole else "…"
    return _SPACES.sub(" ", head) + "".join(pieces) + _SPACES.sub(" ", tail)


def _spans(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), fold(m.group())) for m in _WORD.finditer(text)]


def _hits(spans: list[tuple[int, int, str]], terms: tuple[Term, ...]) -> set[int]:
    """The indexes of the words in ``spans`` that a term's words match."""
    folded = [word for _, _, word in spans]
    found: set[int] = set()
    for term in terms:
        wanted = term.folded
        for index in range(len(folded) - len(wanted) + 1):
            here = folded[index:index + len(wanted)]
            if here[:-1] == list(wanted[:-1]) and (
                    here[-1].startswith(wanted[-1]) if term.prefix else here[-1] == wanted[-1]):
                found.update(range(index, index + len(wanted)))
    return found
