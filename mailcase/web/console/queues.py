"""The console's lists of cases: an agent's views of the work (theirs, unassigned, a
queue's, escalated, due soon, recently updated, everything), sortable by each column and
a page at a time, and the search box's results.

Each view is a CaseFilter and a Sort handed to ``Desk.list``, the query ``cases list``
and the API's ``GET /cases`` run, so the console shows the same cases the other doors
do. Pages are numbered (an offset): an agent reads "page 3", and the default order —
newest first — keeps a page stable apart from cases arriving at its top.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from mailcase.app import App
from mailcase.cases.book import parse_number
from mailcase.cases.errors import BadValue
from mailcase.cases.finder import SORT_KEYS, CaseFilter, Sort
from mailcase.cases.searchtext import MARK
from mailcase.cases.staff import Staff
from mailcase.web.console.render import Pages
from mailcase.web.console.signin import Visitor, signed_in

PAGE_SIZE = 50
SEARCH_PAGE_SIZE = 25


@dataclass(frozen=True)
class View:
    """One of the lists an agent picks from: its title, its order, and the columns it
    may be sorted by. Open cases are few beside closed ones and sort by anything; the
    lists of every case sort only by what an index keeps in order (a million cases
    sorted by subject for one page would be read whole)."""

    name: str
    title: str
    sort: Sort
    sortable: tuple[str, ...] = SORT_KEYS


VIEWS = {view.name: view for view in (
    View("mine", "My open cases", Sort()),
    View("unassigned", "Unassigned", Sort()),
    View("queue", "Queue", Sort()),
    View("due", "Due soon", Sort("due", descending=False)),
    View("escalated", "Escalated", Sort()),
    View("recent", "Recently updated", Sort("updated"), ("number", "updated")),
    View("all", "All cases", Sort(), ("number", "updated")),
)}
# The way a column sorts at its first click: names A to Z, due soonest, the rest newest
# or highest first.
ASCENDING_FIRST = ("subject", "contact", "status", "owner", "due")
COLUMNS = (("number", "Number"), ("subject", "Subject"), ("contact", "Contact"),
           ("status", "Status"), ("priority", "Priority"), ("owner", "Owner"),
           ("due", "Due"), ("updated", "Updated"))
assert tuple(key for key, _ in COLUMNS) == SORT_KEYS


class ListQuery(BaseModel):
    """What a list page asks for: a view (a queue's, by its name), a column to sort by
    and which way, and the page."""

    view: str = "mine"
    queue: str | None = None
    sort: str | None = None
    order: str | None = None  # asc or desc
    page: int = Field(1, ge=1, le=10_000)


def marked(snippet: str) -> list[tuple[str, bool]]:
    """A search snippet in pieces, each with whether it is a matching word (the page
    marks those; every piece is escaped as text)."""
    parts: list[tuple[str, bool]] = []
    rest = snippet
    while MARK[0] in rest:
        before, _, after = rest.partition(MARK[0])
        word, found, rest = after.partition(MARK[1])
        if not found:  # a lone opening mark: the snippet's own text
            parts.append((before + MARK[0] + word, False))
            rest = ""
            break
        parts += [(before, False), (word, True)]
    parts.append((rest, False))
    return [(text, hit) for text, hit in parts if text]


def case_filter(view: str, visitor: Visitor, queue: str | None) -> CaseFilter:
    """The cases ``view`` holds for ``visitor``; BadValue for a view that is not one."""
    if view == "mine":
        return CaseFilter(owner=visitor.email, open_only=True)
    if view == "unassigned":
        return CaseFilter(unassigned=True, open_only=True)
    if view == "queue":
        if not queue:
            raise BadValue("pick a queue")
        return CaseFilter(queue=queue, open_only=True)
    if view == "due":
        return CaseFilter(clock="due", open_only=True)
    if view == "escalated":
        return CaseFilter(clock="escalated", open_only=True)
    if view in ("recent", "all"):
        return CaseFilter()
    raise BadValue(f"there is no view {view!r}")


def _case_number(text: str) -> int | None:
    """``text`` as a case number (``1000``, ``00001000``, ``#00001000``), if it is one."""
    try:
        return parse_number(text)
    except BadValue:
        return None


def routes(current: Callable[[], App], pages: Pages) -> APIRouter:
    """``GET /`` (the lists) and ``GET /search``."""
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse)
    def cases(request: Request, visitor: Annotated[Visitor, Depends(signed_in)],
              asked: Annotated[ListQuery, Query()]) -> Response:
        app = current()
        queue, sort, order, page = asked.queue, asked.sort, asked.order, asked.page
        wanted = case_filter(asked.view, visitor, queue)
        chosen = VIEWS[asked.view]
        ordering = chosen.sort
        if sort in chosen.sortable:
            first = "asc" if sort in ASCENDING_FIRST else "desc"
            ordering = Sort(sort, descending=(order or first) != "asc")
        rows = app.desk().list(wanted, PAGE_SIZE + 1, sort=ordering,
                               offset=(page - 1) * PAGE_SIZE)
        with app.readers() as session:
            queues = [q.name for q in Staff(session).queues()]

        def link(**changes: Any) -> str:
            asked = {"view": chosen.name, "queue": queue, "sort": ordering.key,
                     "order": "desc" if ordering.descending else "asc", "page": page}
            asked.update(changes)
            return "/?" + urlencode({k: v for k, v in asked.items() if v not in (None, "")})

        def heading(key: str, label: str) -> dict[str, Any]:
            current = ordering.key == key
            if current:  # a second click: the other way
                flipped = "asc" if ordering.descending else "desc"
            else:
                flipped = "asc" if key in ASCENDING_FIRST else "desc"
            return {"key": key, "label": label,
                    "sorted": ("descending" if ordering.descending else "ascending")
                    if current else None,
                    "href": link(sort=key, page=1, order=flipped)
                    if key in chosen.sortable else None}

        headers = [heading(key, label) for key, label in COLUMNS]
        return pages.render(
            "cases.html.j2", request, visitor=visitor, views=VIEWS.values(),
            view=chosen, queue=queue, queues=queues, rows=rows[:PAGE_SIZE],
            columns=headers, page=page,
            previous=link(page=page - 1) if page > 1 else None,
            next=link(page=page + 1) if len(rows) > PAGE_SIZE else None)

    @router.get("/search", response_class=HTMLResponse)
    def search(request: Request, visitor: Annotated[Visitor, Depends(signed_in)],
               q: str = "", cursor: str | None = None, open: bool = False) -> Response:
        text = q.strip()
        number = _case_number(text)
        if number is not None and current().desk().exists(number):  # straight to it
            return RedirectResponse(f"/cases/{number}", status_code=303)
        results = current().desk().search(text, limit=SEARCH_PAGE_SIZE, cursor=cursor,
                                          open_only=open) if text else None
        more = None
        if results is not None and results.next_cursor:
            more = "/search?" + urlencode({"q": text, "cursor": results.next_cursor,
                                           **({"open": "true"} if open else {})})
        rows = [{**row, "parts": marked(row["snippet"])}
                for row in (results.rows if results else [])]
        return pages.render("search.html.j2", request, visitor=visitor, q=text,
                            open=open, rows=rows, searched=bool(text), next=more,
                            limited=bool(results and results.limited))

    return router
