"""Full-text search over cases: subjects, descriptions, comments (public and internal
notes) and sender addresses, ranked, a page at a time — behind ``cases search`` and the
API's search.

**Kept by triggers, not by the case rules.** The index (migration 0008: FTS5 on SQLite,
``tsvector`` with a GIN index on PostgreSQL) is written by triggers on ``cases`` and
``comments``, in the transaction of the change. CaseBook writes every comment today,
but not every change to the text goes through one of its methods: a merge moves a case's
comments with one bulk UPDATE (cases.links), and issue 24 will write comments with bulk
Core inserts. Writes from the case rules would have to be repeated in each of those
places and would fall out of step with the first one forgotten; a trigger sees every
write, whoever makes it, and a rolled-back change takes its index rows with it. The
index holds one row per case and per comment, keyed by the comment's id (minus the
case's id for the case's own text) and without a case id: a comment's case is found
through ``comments.case_id``, so a moved comment is found on its new case at once.

**Reading a query.** ``searchtext.parse`` turns any text into terms of letters and
digits; here each term becomes one or two *arms* — its words as an FTS5 phrase
(``"on fire"``) or a ``tsquery`` built by ``phraseto_tsquery``, and for an address or
domain its sender word restricted to the sender column (weight D on PostgreSQL). No
user text reaches either engine's query syntax except as a quoted word.

**Matching and rank.** A case matches when every term is found somewhere in it: in its
subject or description, in one of its comments, or as its sender or a commenter. Its
score is the sum, over the terms, of the best rank one of its texts has for that term
(``bm25`` on SQLite, ``ts_rank`` on PostgreSQL; the subject weighs most); results come
best first, then newest. Pages are an offset in an opaque cursor that also holds the
newest case and comment at the first page: later pages leave out what was written
since, so a new case never pushes a result onto the next page twice. (SQLite's bm25
weighs words by how rare they are in the whole index, so new text can still reorder
results that rank almost alike.)

**Bounded work.** Ranking every text that holds a common word took seconds at a million
cases, so no term reads more than a bounded set (cases.searchindex): first each term's
texts are counted, up to ``WHOLE`` (5,000). A term in fewer texts is read whole, and
when a query has such a term, every other term is looked for only in that term's cases,
in all their texts, old or new: the result is exact, as it always was. A query whose
every term is in more texts reads each term's *window* — its newest ``CANDIDATES``
(2,000) case texts and as many comments, among the newest ``REACH`` (100,000) cases and
comments — and the page says it is ``limited``: an older case holding only such words is
not found. A rarer word, an address or an order number beside them finds it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    and_,
    case,
    func,
    or_,
    select,
    union_all,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from mailcase.cases import searchindex
from mailcase.cases.errors import BadValue
from mailcase.cases.searchindex import HALVES, Arm, Index
from mailcase.cases.searchtext import Term, matches, parse, snippet
from mailcase.cases.targets import next_due_query
from mailcase.cases.views import SUMMARY_LOADS, case_summary
from mailcase.store.models import Case, Comment

MAX_LIMIT = 200  # results on one page

_comments = Comment.__table__


@dataclass(frozen=True)
class SearchPage:
    """One page of results, best first: rows shaped like ``cases list``'s with a
    ``snippet`` and ``matched`` (where the words were found: ``subject``,
    ``description``, ``comment``, ``internal note``, ``sender``), and the cursor of the
    next page (None on the last). ``limited``: every term is in more texts than a
    search reads, so only the newest were searched (see above)."""

    rows: list[dict[str, Any]]
    next_cursor: str | None
    limited: bool = False


def search(session: Session, text: str, *, limit: int = 20, cursor: str | None = None,
           open_only: bool = False, internal: bool = True) -> SearchPage:
    """The cases matching ``text`` (see ``searchtext`` for what it may say), ``limit``
    at a time from ``cursor`` (None: the first page). ``open_only`` leaves out closed
    cases; ``internal=False`` leaves out internal notes, for a door customers use.
    BadValue for an empty or overlong query, a limit out of range, or a cursor that is
    not this search's."""
    if not 1 <= limit <= MAX_LIMIT:
        raise BadValue(f"the limit must be between 1 and {MAX_LIMIT}, not {limit}")
    terms = parse(text)
    if not terms:
        return SearchPage([], None)
    fingerprint = _fingerprint(terms, open_only, internal)
    offset, newest = (_read(cursor, fingerprint) if cursor is not None
                      else (0, _newest(session)))
    index = Index(session.get_bind().dialect.name)
    if not index.sqlite:
        # The best plan depends on how common the words are (walk the newest documents,
        # or read the GIN index): never a generic plan made for other words, which
        # psycopg's prepared statements would get after a few searches.
        session.execute(sql_text("SET LOCAL plan_cache_mode = force_custom_plan"))
    plan = _plan(session, index, terms, newest)
    ranked = _ranked(index, plan, len(terms), internal, newest)
    query = (select(Case, ranked.c.score, ranked.c.best, ranked.c.in_case,
                    ranked.c.in_comment, ranked.c.in_note, ranked.c.by_sender)
             .join(ranked, ranked.c.case_id == Case.id).options(*SUMMARY_LOADS)
             .order_by(ranked.c.score.desc(), Case.created_at.desc(), Case.id.desc())
             .offset(offset).limit(limit + 1))
    if open_only:
        query = query.where(Case.is_closed.is_(False))
    found = session.execute(query).all()
    more = len(found) > limit
    rows = _rows(session, found[:limit], terms)
    return SearchPage(rows, _write(offset + limit, newest, fingerprint) if more else None,
                      plan.limited)


# -- the query ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """What a search reads: every term's arms, and the terms in fewer than ``WHOLE``
    texts, fewest first; the first of them is the *anchor* (every result is one of its
    cases). None of them: the search is limited to each term's windows."""

    arms: list[Arm]
    complete: list[int]  # terms read whole, fewest texts first

    @property
    def limited(self) -> bool:
        return not self.complete


def _plan(session: Session, index: Index, terms: tuple[Term, ...],
          newest: tuple[int, int]) -> _Plan:
    """Count each arm's documents, up to ``WHOLE``, to see which terms are read whole.
    (Unranked, and the count stops there: cheap on both engines.)"""
    arms = [arm for number, term in enumerate(terms) for arm in index.arms(number, term)]
    counts = session.execute(select(*(index.count(arm, newest) for arm in arms))).one()
    held = dict.fromkeys(range(len(terms)), 0)
    for arm, count in zip(arms, counts, strict=True):
        held[arm.term] += count
    return _Plan(arms, sorted((term for term, count in held.items()
                               if count < searchindex.WHOLE), key=held.__getitem__))


def _hits(index: Index, plan: _Plan, newest: tuple[int, int]) -> Any:
    """Every term's ranked documents: term, field, doc, score. With a term held whole
    (the anchor), the other terms are looked for in the anchor's cases only, so the
    result is exact; without one, each term's windows are all there is."""
    docs = None if plan.limited else _docs_of_cases(union_all(*(
        index.docs(arm, newest) for arm in plan.arms if arm.term == plan.complete[0])))
    selects: list[Select[Any]] = []
    for arm in plan.arms:
        if arm.term in plan.complete:
            selects.append(index.every(arm, newest))
        elif docs is None:
            selects += [index.window(arm, half, newest) for half in HALVES]
        else:
            selects.append(index.among(arm, docs))
    return union_all(*selects)


def _docs_of_cases(hits: Any) -> CompoundSelect[Any]:
    """Every document of the cases that ``hits`` (documents) belong to: their own texts
    and all their comments."""
    found = hits.cte("anchor_hits")
    cases = (select(case((found.c.doc < 0, -found.c.doc), else_=_comments.c.case_id)
                    .label("case_id"))
             .select_from(found.outerjoin(_comments, _comments.c.id == found.c.doc))
             .cte("anchor_cases"))
    return union_all(select((-cases.c.case_id).label("doc")),
                     select(_comments.c.id).where(_comments.c.case_id.in_(
                         select(cases.c.case_id))))


def _ranked(index: Index, plan: _Plan, terms: int, internal: bool,
            newest: tuple[int, int]) -> Any:
    """Per matching case: its score, its best document and where the terms matched."""
    hits = _hits(index, plan, newest).cte("hits")
    if index.sqlite:
        # Computed as written: folded into the aggregates, bm25() would run outside the
        # FTS5 query that gives it a row ("unable to use function bm25").
        hits = hits.prefix_with("MATERIALIZED")
    doc, score = hits.c.doc, hits.c.score
    owner = case((doc < 0, -doc), else_=_comments.c.case_id)
    joined = (
        select(owner.label("case_id"), hits.c.term, hits.c.field, doc, score,
               _comments.c.public)
        .select_from(hits.outerjoin(_comments, and_(doc > 0, _comments.c.id == doc)))
        .where(or_(doc < 0, _comments.c.id.is_not(None)),  # a comment deleted meanwhile
               or_(doc < 0, doc <= newest[1]))
    )
    if not internal:
        joined = joined.where(or_(doc < 0, _comments.c.public.is_(True)))
    rows = joined.subquery("joined")
    text = rows.c.field == "text"
    places = {
        "in_case": and_(text, rows.c.doc < 0),
        "in_comment": and_(text, rows.c.doc > 0, rows.c.public.is_(True)),
        "in_note": and_(text, rows.c.doc > 0, rows.c.public.is_(False)),
        "by_sender": rows.c.field == "sender",
    }
    per_term = (
        select(rows.c.case_id, func.max(rows.c.score).label("score"),
               _best(index.dialect, rows.c.doc, rows.c.score).label("best"),
               *(func.sum(case((where, 1), else_=0)).label(name)
                 for name, where in places.items()))
        .where(rows.c.case_id <= newest[0])
        .group_by(rows.c.case_id, rows.c.term).subquery("per_term")
    )
    return (
        select(per_term.c.case_id, func.sum(per_term.c.score).label("score"),
               func.max(per_term.c.score).label("top"),  # the one max() _best needs
               _best(index.dialect, per_term.c.best, per_term.c.score).label("best"),
               *(func.sum(per_term.c[name]).label(name) for name in places))
        .group_by(per_term.c.case_id)
        .having(func.count() == terms).subquery("ranked")
    )


def _best(dialect: str, doc: Any, score: Any) -> ColumnElement[Any]:
    """The document with the highest score in a group. SQLite: a bare column beside the
    query's one max() of the score takes its value from the row holding that max
    (documented: "bare columns in an aggregate query"); PostgreSQL: the first of the
    group by score."""
    if dialect == "sqlite":
        return doc  # type: ignore[no-any-return]
    return func.array_agg(aggregate_order_by(doc, score.desc(), doc))[1]


# -- the page ----------------------------------------------------------------------


def _rows(session: Session, found: Sequence[Any], terms: tuple[Term, ...]) -> list[dict[str, Any]]:
    """The page's rows: each case's summary, with the snippet of its best document and
    the places where the terms matched."""
    cases = [row.Case for row in found]
    due: dict[int, datetime] = dict(session.execute(
        select(next_due_query(cases=[c.id for c in cases]))).all())
    best = [row.best for row in found if row.best > 0]
    comments = dict(session.execute(
        select(Comment.id, Comment.body).where(Comment.id.in_(best))).all())
    rows = []
    for row in found:
        subject, description = row.Case.subject, row.Case.description
        in_subject = bool(row.in_case) and matches(subject, terms)
        # A case's text matched but not in its subject: in the description, then.
        in_description = bool(row.in_case) and (not in_subject or matches(description, terms))
        places = [place for place, hit in (
            ("subject", in_subject), ("description", in_description),
            ("comment", row.in_comment), ("internal note", row.in_note),
            ("sender", row.by_sender)) if hit]
        if row.best > 0:
            source = comments.get(row.best, "")
        else:
            source = subject if in_subject and not in_description else description
        rows.append({**case_summary(row.Case, due.get(row.Case.id)),
                     "snippet": snippet(source or subject, terms), "matched": places})
    return rows


def _newest(session: Session) -> tuple[int, int]:
    """The newest case's and comment's ids: the first page's view of the store."""
    cases = session.scalar(select(func.max(Case.id))) or 0
    comments = session.scalar(select(func.max(Comment.id))) or 0
    return int(cases), int(comments)


def _fingerprint(terms: tuple[Term, ...], open_only: bool, internal: bool) -> str:
    asked = repr(([(t.folded, t.prefix, t.sender) for t in terms], open_only, internal))
    return hashlib.sha256(asked.encode()).hexdigest()[:12]


def _write(offset: int, newest: tuple[int, int], fingerprint: str) -> str:
    text = f"{offset}:{newest[0]}:{newest[1]}:{fingerprint}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _read(cursor: str, fingerprint: str) -> tuple[int, tuple[int, int]]:
    """The offset and store view of a cursor; BadValue for one this search did not give."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        offset, cases, comments, made_for = text.split(":")
        position = (int(offset), (int(cases), int(comments)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadValue(f"{cursor[:40]!r} is not a search cursor") from None
    if made_for != fingerprint:
        raise BadValue("the cursor belongs to another search; start again without it")
    return position
