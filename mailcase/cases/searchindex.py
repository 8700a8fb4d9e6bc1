"""The index's side of a search: each term's queries on either engine (FTS5 on SQLite, a
``tsvector`` with a GIN index on PostgreSQL; migration 0008) — how many documents hold
it (up to a cap), all of them, its newest ones (a *window*), or those among given
documents. cases.search decides which to read, and ranks and groups what they return.

**Why a window.** A word in a large share of all texts (a common word, a short prefix)
matches hundreds of thousands of documents; ranking them all (``bm25``, ``ts_rank``)
before the best page is known took seconds at a million cases. The newest matches are
cheap to take on both engines: FTS5 keeps each word's documents in rowid order and stops
after ``ORDER BY rowid LIMIT n``; PostgreSQL walks the primary key from the newest
document and stops, or reads the GIN index and sorts what it found. A document is minus
its case's id for the case's own text (the newest case is the most negative) and the
comment's id for a comment (the newest is the largest), so the newest of each are taken
separately: case texts counting up from the newest case, comments counting down from
the newest comment, both from the bounds the first page saw, so that every page of a
search reads the same window. A window also looks back over ``REACH`` ids at most: the
planner guesses how many texts hold a phrase from its words alone, and a phrase of two
common words that is itself rare would otherwise have PostgreSQL walk millions of rows
for matches that are not there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, literal_column, select, table
from sqlalchemy import column as sql_column

from mailcase.cases.searchtext import Term

WHOLE = 5000  # a term in fewer texts is read whole; a term in more, only in windows
CANDIDATES = 2000  # the newest case texts, and as many comments, a window holds at most
REACH = 100_000  # ids of cases, and of comments, a window looks back over at most
CONFIG = "mailcase_search"  # PostgreSQL's text search configuration (migration 0008)
SUBJECT_WEIGHT = 2.0  # bm25 weight of the subject against the text and the sender
HALVES = ("cases", "comments")  # the two runs of documents, each read newest first

_index = table("search_index", sql_column("rowid"), sql_column("doc"), sql_column("vector"))


@dataclass(frozen=True)
class Arm:
    """One index query of a term: its words in the text, or its sender word in the
    sender column (``field``), as the engine's match expression."""

    term: int  # the term's place in the query
    field: str  # "text" or "sender"
    query: Any  # an FTS5 query string, or a tsquery expression


@dataclass(frozen=True)
class Index:
    """The search index of one engine (a dialect name: ``sqlite`` or ``postgresql``)."""

    dialect: str

    @property
    def sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def doc(self) -> ColumnElement[Any]:
        return _index.c.rowid if self.sqlite else _index.c.doc

    def arms(self, number: int, term: Term) -> list[Arm]:
        """The term's queries. Only letters and digits are ever inside FTS5's quotes;
        PostgreSQL gets ``phraseto_tsquery`` of the words (``to_tsquery`` of letters and
        digits joined by ``<->`` for a prefix), the sender word as weight D."""
        phrase: Any
        sender: Any
        if self.sqlite:
            phrase = ('"' + " ".join(term.words).replace('"', '""') + '"'
                      + (" *" if term.prefix else ""))
            sender = f'sender : "{term.sender}"'
        else:
            config: ColumnElement[Any] = literal_column(f"'{CONFIG}'::regconfig")
            phrase = (func.to_tsquery(config, " <-> ".join(term.words) + ":*") if term.prefix
                      else func.phraseto_tsquery(config, " ".join(term.words)))
            sender = func.to_tsquery(config, f"{term.sender}:D")
        found = [Arm(number, "text", phrase)]
        if term.sender is not None:
            found.append(Arm(number, "sender", sender))
        return found

    def window(self, arm: Arm, half: str, newest: tuple[int, int]) -> Select[Any]:
        """The arm's newest ``CANDIDATES`` documents of one half, ranked: rows of term,
        field, doc and score (higher is better)."""
        if self.sqlite:
            # bm25() is computed by FTS5 for the rows it returns, inside its own query.
            inner = self._newest(self._ranked(arm), half, newest).subquery()
            return select(*inner.c)
        # ts_rank() over the rows the limit kept, not every row a GIN scan found.
        inner = self._newest(select(self.doc.label("doc"), _index.c.vector)
                             .where(self._match(arm)), half, newest).subquery()
        return select(*_labels(arm), inner.c.doc,
                      func.ts_rank(inner.c.vector, arm.query, 1).label("score"))

    def count(self, arm: Arm, newest: tuple[int, int]) -> Any:
        """How many of the arm's documents at the ``newest`` bounds there are, counted
        up to ``WHOLE``. Unordered, so PostgreSQL stops at the ``WHOLE``-th it finds,
        in whatever order it reads them."""
        found = self.docs(arm, newest).limit(WHOLE).subquery()
        return select(func.count()).select_from(found).scalar_subquery()

    def docs(self, arm: Arm, newest: tuple[int, int]) -> Select[Any]:
        """The arm's documents at the ``newest`` bounds, unranked: one column, doc."""
        return select(self.doc.label("doc")).where(self._match(arm), *self._bounds(newest))

    def every(self, arm: Arm, newest: tuple[int, int]) -> Select[Any]:
        """All the arm's documents at the ``newest`` bounds, ranked: for an arm in fewer
        than ``WHOLE`` texts. Unordered, so PostgreSQL reads them from the GIN index
        instead of walking the newest documents for matches that are not there."""
        return self._ranked(arm).where(*self._bounds(newest))

    def among(self, arm: Arm, docs: Any) -> Select[Any]:
        """The arm's documents among ``docs`` (a one-column selectable), ranked."""
        if self.sqlite:
            # "+ 0" keeps the filter from FTS5: as its constraint, FTS5 would run the query
            # again for each document, and bm25 would count the whole index each time.
            return self._ranked(arm).where((self.doc + 0).in_(docs))
        return self._ranked(arm).where(self.doc.in_(docs))

    def _bounds(self, newest: tuple[int, int]) -> tuple[ColumnElement[bool], ...]:
        """Documents no newer than the newest case and comment the first page saw."""
        return self.doc >= -newest[0], self.doc <= newest[1]

    def _match(self, arm: Arm) -> ColumnElement[bool]:
        if self.sqlite:
            return literal_column("search_index").op("MATCH")(arm.query)
        return _index.c.vector.op("@@")(arm.query)

    def _ranked(self, arm: Arm) -> Select[Any]:
        """Every document of the arm, ranked."""
        score: ColumnElement[Any]
        if self.sqlite:
            score = -func.bm25(literal_column("search_index"), SUBJECT_WEIGHT, 1.0, 1.0)
        else:
            score = func.ts_rank(_index.c.vector, arm.query, 1)
        return select(*_labels(arm), self.doc.label("doc"), score.label("score")).where(
            self._match(arm))

    def _newest(self, query: Select[Any], half: str, newest: tuple[int, int]) -> Select[Any]:
        """``query`` limited to its newest ``CANDIDATES`` documents of ``half`` among
        the newest ``REACH`` ids at the ``newest`` bounds (the newest case's id, the
        newest comment's)."""
        doc = self.doc
        if half == "cases":
            oldest = max(1, newest[0] - REACH + 1)
            query = query.where(doc >= -newest[0], doc <= -oldest).order_by(doc.asc())
        else:
            oldest = max(1, newest[1] - REACH + 1)
            query = query.where(doc >= oldest, doc <= newest[1]).order_by(doc.desc())
        return query.limit(CANDIDATES)


def _labels(arm: Arm) -> Sequence[ColumnElement[Any]]:
    return literal(arm.term).label("term"), literal(arm.field).label("field")
