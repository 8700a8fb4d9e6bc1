"""A case in the console: its header, the conversation, its files, people, links and
history, with the forms for everything an agent does to it (the forms post to
``console.actions``).

The page is built from ``Desk.show``, the view ``cases show --json`` and the API give,
so what an agent sees here is what the other doors say. What customers wrote is shown
as the text mailcase extracted from their mail, escaped: their HTML is never rendered
in the console. Their files are downloads; only raster images (PNG, JPEG, GIF, WebP)
are shown inline, served with a policy that lets nothing in them run or load.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response

from mailcase.app import App
from mailcase.cases.book import PRIORITIES, parse_number
from mailcase.cases.replies import holds_by_default
from mailcase.cases.staff import Staff
from mailcase.web.console.render import Pages
from mailcase.web.console.signin import Visitor, signed_in
from mailcase.web.downloads import MAX_ID, file_response

# Shown inline in the page; anything else (SVG included: it can hold script) is a download.
INLINE_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def case_page(current: Callable[[], App], pages: Pages, request: Request, visitor: Visitor,
              number: int, *, error: str | None = None, status: int = 200,
              draft: dict[str, str] | None = None) -> HTMLResponse:
    """The page of case ``number`` (NotFound if there is none), with ``error`` shown
    above the forms and ``draft`` (what the agent had typed) put back in them. Opening
    it marks the case read when the visitor owns it."""
    app = current()
    case = app.desk().show(number, viewer=visitor.email if status == 200 else None)
    with app.readers() as session:
        staff = Staff(session)
        owners = [a.email for a in staff.agents() if a.active]
        owners += [f"queue:{q.name}" for q in staff.queues()]
    conversation = _conversation(case)
    closing = app.settings.cases.closed_statuses
    # Closing takes a resolution (its own form); a closed case keeps its status here.
    statuses = [case["status"]] if case["is_closed"] else [
        s for s in app.settings.cases.statuses if s not in closing]
    return pages.render(
        "case.html.j2", request, visitor=visitor, case=case,
        conversation=conversation, statuses=statuses,
        hold=holds_by_default(app.settings, case["mailbox"], is_closed=case["is_closed"]),
        priorities=PRIORITIES, owners=owners, error=error, draft=draft or {},
        notice=_notice(request.query_params.get("done")), status=status)


def _conversation(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's opening text and its comments in order, each with its files split
    into images to show and files to download."""
    number = case["number"]
    opening = {"author": case["supplied_email"] or case["contact"],
               "author_name": case["supplied_name"], "body": case["description"],
               "public": True, "created_at": case["created_at"], "opening": True,
               "attachments": case["attachments"], "sender_auth": case["sender_auth"]}
    entries = []
    for entry in (opening, *case["comments"]):
        files = [{**file, "href": f"/cases/{number}/files/{file['id']}"}
                 for file in entry["attachments"]]
        entries.append({
            "opening": False, **entry,
            "images": [f for f in files if f["stored"] and f["content_type"] in INLINE_IMAGES],
            "files": files,
        })
    return entries


_NOTICES = {
    "reply": "Your reply is on its way to the customer.",
    "note": "Internal note added. It was mailed to no customer.",
    "update": "The case is changed.",
    "close": "The case is closed.",
    "reopen": "The case is open again.",
    "merge": "The case is merged.",
    "collaborator-added": "Collaborator added.",
    "collaborator-removed": "Collaborator removed.",
}


def _notice(done: str | None) -> str | None:
    """What the last action did, by its name: only our own sentences are ever shown."""
    return _NOTICES.get(done or "")


def routes(current: Callable[[], App], pages: Pages) -> APIRouter:
    """``GET /cases/{number}`` and its files."""
    router = APIRouter()

    @router.get("/cases/{number}", response_class=HTMLResponse)
    def show(number: str, request: Request,
             visitor: Annotated[Visitor, Depends(signed_in)]) -> Response:
        return case_page(current, pages, request, visitor, parse_number(number))

    @router.get("/cases/{number}/files/{file_id}")
    def download(number: str, file_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                 visitor: Annotated[Visitor, Depends(signed_in)]) -> Response:
        return file_response(current().desk().attachment(parse_number(number), file_id),
                             inline=INLINE_IMAGES)

    return router

