"""Whether the new text of a reply says nothing but thanks: read on a reply to a closed case,
which then joins the case as a comment without reopening it.

The text is what replytext keeps (no quoted mail, no signature). It is read as a short run
of the phrases of thankwords, in this order: greetings ("Hi Anna,"), then thanks, what they
are for and short confirmations ("Danke, hat geklappt!"), then closings ("Best,"). A name
of up to three capitalised words may follow a greeting, an addressee ("Frau"), a thanks or
a closing, or stand on the last line. The text must thank, its thanks and confirmations
must be short (MAX_WORDS, MAX_CHARS, MAX_LINES), and it must hold no question mark of any
script, no link and no word of thankvetoes ("but", "still", "again", "please", every
"not"). Punctuation and a few glad emoji are allowed; anything else (a word of no table, a
digit, another symbol) makes the answer False. A wrong False costs a reopened case, a wrong
True a customer nobody answers.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from mailcase.reading import thankvetoes as vetoes
from mailcase.reading import thankwords as words

# Of the thanks and its confirmations: greetings, addressees, closings and names not counted.
MAX_WORDS = 12
MAX_CHARS = 100
MAX_LINES = 2
MAX_NAME_WORDS = 3
# A reply of more words is more than thanks, whatever they are; this also bounds the search.
MAX_TOKENS = 40

# Question marks of every script. NFKC turns the Greek one (U+037E) into a semicolon, and
# Greek keyboards type the semicolon itself, so every semicolon counts as one.
_QUESTION = re.compile("[?;\u00bf\u061f\u2e2e\u203d]")
_LINK = re.compile(r"://|www\.|@|\w\.[^\W\d_]{2}")
# Every apostrophe as one; zero-width spaces and byte-order marks gone.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'",
                              "\u00b4": "'", "\u200b": None, "\u2060": None, "\ufeff": None})
_GLAD = ("\U0001f642\U0001f600\U0001f603\U0001f604\U0001f601\U0001f60a\u263a\U0001f609"
         "\U0001f607\U0001f60d\U0001f970\U0001f917\U0001f929\U0001f60e\U0001f44d\U0001f44c"
         "\U0001f64f\U0001f64c\U0001f44f\U0001f4aa\u2764\u2665\U0001f499\U0001f49a\U0001f49b"
         "\U0001f49c\U0001f9e1\U0001f4af\U0001f389\U0001f973\u2705\u2714\u2b50\U0001f31f"
         "\u2728\u2600\U0001f31e")
# Emoji variation selectors, skin tones and the zero-width joiner, after a glad emoji.
_EMOJI_TAIL = "\ufe0e\ufe0f\u200d\U0001f3fb-\U0001f3ff"
_SMILE = re.compile(rf"[{_GLAD}][{_GLAD}{_EMOJI_TAIL}]*|[:=]-?[)D\]]|\(:|\^_?\^|<3")
# Between words of a reply: whitespace and these; anything else is not understood.
_PUNCTUATION = frozenset(".,!:-\u2013\u2014\u2015\u2026'\"\u201c\u201d\u201e\u00ab\u00bb"
                         "\u2039\u203a*~&/\u00a1\u00b7\u3002\u3001")
# Each Chinese or Japanese character is a word: those scripts put no space between words.
_HAN = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAN_CHAR = re.compile(f"[{_HAN}]")
_WORD = re.compile(rf"[{_HAN}]|(?:(?![{_HAN}])[^\W\d_])+")
# What may stand between two words of one segment: spaces, or the apostrophe or hyphen
# inside a word ("that's", "pouvez-vous"). Anything else starts a new segment.
_JOIN = re.compile(r"[^\S\n]*|'|-")

_TABLES = {
    "greeting": words.GREETINGS, "addressee": words.ADDRESSEES, "thanks": words.THANKS,
    "reason": words.REASONS, "confirmation": words.CONFIRMATIONS, "and": words.AND,
    "closing": words.CLOSINGS,
}
_VETO_TABLES = (vetoes.NEGATIONS, vetoes.CONTRASTS, vetoes.REQUESTS, vetoes.TROUBLE)
# Greetings come first and closings last; the thanks, its reasons and confirmations between.
# Addressees and names take the stage of what they follow.
_STAGES = {"greeting": 0, "thanks": 1, "reason": 1, "confirmation": 1, "and": 1,
           "closing": 2}
# The kinds a name or an addressee may follow ("Hi Anna", "Thanks guys", "Best, Bob").
_NAMED = frozenset({"greeting", "addressee", "thanks", "closing"})
# The kinds that are the message itself, and count towards its length.
_SAID = frozenset({"thanks", "reason", "confirmation", "and"})


@dataclass(frozen=True)
class _Token:
    """One word of a reply: case folded, as written, its line and its segment (the words
    between two punctuation marks or line ends)."""

    word: str
    written: str
    line: int
    segment: int
    han: bool


@dataclass(frozen=True)
class _Reading:
    """How far a reading of the reply has come: its stage, the kind of its last item, and
    the words of its thanks and confirmations."""

    stage: int = 0
    last: str = ""
    said: tuple[_Token, ...] = ()
    thanked: bool = False

    def then(self, kind: str, span: Sequence[_Token]) -> _Reading:
        """This reading followed by ``span``, read as a ``kind``."""
        said = (*self.said, *span) if kind in _SAID else self.said
        stage = _STAGES.get(kind, self.stage)
        return _Reading(stage, kind, said, self.thanked or kind == "thanks")


def only_thanks(text: str) -> bool:
    """True when ``text``, the new text of a customer's reply, says thanks and nothing more.

    Empty text, a question, a link, a veto word, more than a short line of thanks, or any
    word it does not know make it False.
    """
    text = _normal(text)
    if not text or _QUESTION.search(text) or _LINK.search(text):
        return False
    tokens = _tokens(_SMILE.sub(",", text))
    if not tokens or len(tokens) > MAX_TOKENS or _vetoed(tokens):
        return False
    return _reads_as_thanks(tokens, 0, _Reading())


def _normal(text: str) -> str:
    """``text`` in NFKC, with one apostrophe, no zero-width spaces, ``\\n`` line ends."""
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    return "\n".join(line.strip() for line in text.splitlines()).strip()


def _tokens(text: str) -> list[_Token] | None:
    """The words of ``text``; None when anything but words, whitespace and punctuation is
    in it (digits, symbols, emoji that are not glad)."""
    tokens: list[_Token] = []
    line = segment = end = 0
    for match in _WORD.finditer(text):
        gap = text[end:match.start()]
        if not _between_words(gap):
            return None
        line += gap.count("\n")
        segment += not _JOIN.fullmatch(gap)
        written = match.group()
        han = bool(_HAN_CHAR.fullmatch(written))
        tokens.append(_Token(written.casefold(), written, line, segment, han))
        end = match.end()
    return tokens if _between_words(text[end:]) else None


def _between_words(gap: str) -> bool:
    """Whether ``gap`` holds only whitespace and punctuation."""
    return all(char.isspace() or char in _PUNCTUATION for char in gap)


def _phrases(tables: Iterable[dict[str, tuple[str, ...]]]) -> set[tuple[str, ...]]:
    """Every phrase of ``tables`` as the words a reply is split into."""
    found = set()
    for table in tables:
        for phrase in (phrase for entries in table.values() for phrase in entries):
            tokens = _tokens(_normal(phrase))
            if not tokens:
                raise ValueError(f"{phrase!r} in a table of thanks is not words")
            found.add(tuple(token.word for token in tokens))
    return found


def _kinds() -> dict[tuple[str, ...], frozenset[str]]:
    """Each phrase of the tables, and the kinds it is of ("zdravím" greets and closes)."""
    kinds: dict[tuple[str, ...], set[str]] = {}
    for kind, table in _TABLES.items():
        for phrase in _phrases([table]):
            kinds.setdefault(phrase, set()).add(kind)
    return {phrase: frozenset(found) for phrase, found in kinds.items()}


_KINDS = _kinds()
_LONGEST = max(len(phrase) for phrase in _KINDS)
_VETOES = _phrases(_VETO_TABLES)
# A name is none of the tables' words: "Thanks!\nBroken" or "Thanks!\nStill" name no one.
_KNOWN = frozenset(word for phrase in (*_KINDS, *_VETOES) for word in phrase)


def _vetoed(tokens: Sequence[_Token]) -> bool:
    """Whether a veto phrase stands anywhere in ``tokens``, across punctuation too."""
    said = f" {' '.join(token.word for token in tokens)} "
    return any(f" {' '.join(veto)} " in said for veto in _VETOES)


def _reads_as_thanks(tokens: Sequence[_Token], index: int, reading: _Reading) -> bool:
    """Whether ``tokens`` from ``index`` on complete ``reading`` as a short thanks."""
    if index == len(tokens):
        return reading.thanked
    for kind, length in _items(tokens, index, reading):
        following = reading.then(kind, tokens[index:index + length])
        # Length only grows: a reading that is too long already is given up at once.
        if _short(following.said) and _reads_as_thanks(tokens, index + length, following):
            return True
    return False


def _items(tokens: Sequence[_Token], index: int, reading: _Reading) -> Iterator[tuple[str, int]]:
    """The kinds and lengths of what may stand at ``tokens[index]`` after ``reading``:
    phrases within its segment, longest first, then a name."""
    segment = tokens[index].segment
    for length in range(min(_LONGEST, len(tokens) - index), 0, -1):
        span = tokens[index:index + length]
        if span[-1].segment == segment:
            kinds = _KINDS.get(tuple(token.word for token in span), frozenset())
            yield from ((kind, length) for kind in sorted(kinds) if _may_follow(kind, reading))
    for length in range(MAX_NAME_WORDS, 0, -1):
        span = tokens[index:index + length]
        if len(span) == length and all(_name_like(token, segment) for token in span) and (
                _may_follow("name", reading) or _last_line(tokens, index, length)):
            yield "name", length


def _may_follow(kind: str, reading: _Reading) -> bool:
    """Whether a ``kind`` may come next in ``reading``: names and addressees right after
    what they name, the rest in the order of their stages."""
    if kind in _STAGES:
        return _STAGES[kind] >= reading.stage
    return reading.last in _NAMED


def _name_like(token: _Token, segment: int) -> bool:
    """Whether ``token`` may be part of a name begun in ``segment``: capitalised, known to no
    table, in a script with capitals."""
    return (token.segment == segment and token.written[:1].isupper()
            and token.word not in _KNOWN)


def _last_line(tokens: Sequence[_Token], index: int, length: int) -> bool:
    """Whether ``tokens[index:index + length]`` is the whole last line, below another."""
    return (index > 0 and index + length == len(tokens)
            and tokens[index - 1].line < tokens[index].line)


def _short(said: Sequence[_Token]) -> bool:
    """Whether the thanks and confirmations are short: two Chinese characters count as a
    word."""
    han = sum(token.han for token in said)
    count = len(said) - han + (han + 1) // 2
    chars = len(" ".join(token.written for token in said))
    lines = len({token.line for token in said})
    return count <= MAX_WORDS and chars <= MAX_CHARS and lines <= MAX_LINES
