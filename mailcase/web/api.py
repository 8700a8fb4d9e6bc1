"""The HTTP API, version 1: cases for other programs, as JSON under ``/api/v1``.

Each route checks the caller's key (web.auth), turns its request into a call on the
Desk — the same case rules the command line uses — and answers with the same views
(`cases show --json` is ``GET /cases/{number}``). The OpenAPI document is generated from
these routes and models and served at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from mailcase.app import App
from mailcase.cases.book import parse_number
from mailcase.cases.desk import Author, Desk, NewCase
from mailcase.cases.errors import BadValue, CaseError, NotFound
from mailcase.cases.files import NewFile
from mailcase.cases.finder import CaseFilter
from mailcase.cases.staff import Staff
from mailcase.store.models import ApiKey
from mailcase.web.auth import caller
from mailcase.web.downloads import MAX_ID, file_response

PREFIX = "/api/v1"


class Acting(BaseModel):
    """Who acts, besides the key: an active agent's address (None: the key itself, in
    the mailbox's name). The history names both."""

    agent: str | None = Field(None, description="an active agent's address to act as")


class NewCaseIn(Acting):
    email: str = Field(description="the contact's address")
    subject: str
    description: str = ""
    priority: str = "Medium"
    origin: str = "API"
    parent: str | None = Field(None, description="the parent case's number")
    notify_contact: bool = Field(
        False, description="mail the contact the acknowledgement with their reply address")
    assign_using_rules: bool = Field(
        True, description="give it the owner its mail would have got, who is alerted")


class FileIn(BaseModel):
    """A file sent with a comment: its name, type (guessed from the name when left
    out) and content in base64."""

    filename: str
    content_type: str | None = None
    content_base64: str


class CommentIn(Acting):
    body: str
    files: list[FileIn] = Field(default_factory=list,
                                description="files stored on the comment and mailed "
                                            "with a public reply")
    public: bool = Field(True, description="a reply mailed to the customer, else an "
                                           "internal note for agents only")
    hold: bool | None = Field(None, description="put the case on hold (a public reply "
                                                "only); null: as the mailbox says")


class CaseChangeIn(Acting):
    status: str | None = None
    priority: str | None = None
    owner: str | None = Field(None, description="an agent's address, queue:NAME or none")
    parent: str | None = Field(None, description="a case number, or none")


class CloseIn(Acting):
    resolution: str


class CloneIn(Acting):
    subject: str | None = Field(None, description="the clone's subject (default: the same)")


class MergeIn(Acting):
    into: str = Field(description="the number of the case this one is merged into")


class CaseQuery(BaseModel):
    """Which cases ``GET /cases`` lists; every filter given must hold."""

    model_config = {"extra": "forbid"}

    status: str | None = None
    owner: str | None = Field(None, description="an agent's address")
    queue: str | None = None
    contact: str | None = Field(None, description="the contact's address")
    unassigned: bool = False
    open: bool = Field(False, description="only cases that are not closed")
    escalated: bool = False
    breached: bool = Field(False, description="a service target overdue and not met")
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    limit: int = Field(50, ge=1, description="at most this many (capped by the server's "
                                             "api.max_page_size)")
    cursor: str | None = Field(None, description="next_cursor of the page before")


class CollaboratorIn(Acting):
    email: str
    name: str = ""


def make_api(current: Callable[[], App]) -> FastAPI:
    """The API over ``current()`` — the daemon's App of the moment (a reload swaps it)."""
    api = FastAPI(title="mailcase", version="1", openapi_url=f"{PREFIX}/openapi.json",
                  docs_url=None, redoc_url=None,
                  description="Cases for other programs. Authenticate with "
                              "`Authorization: Bearer <key>` (mailcase api-keys create).")
    for error, status in ((NotFound, 404), (BadValue, 422), (CaseError, 409)):
        api.add_exception_handler(error, _answer_with(status))
    api.include_router(_routes(current))
    return api


def _answer_with(status: int) -> Callable[[Request, Exception], Any]:
    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status)
    return handler


def _routes(current: Callable[[], App]) -> APIRouter:
    router = APIRouter(prefix=PREFIX)

    def key_for(scope: str) -> Callable[[Request], ApiKey]:
        def dependency(request: Request) -> ApiKey:
            return caller(current, request, scope)
        return dependency

    # Defaults, not Annotated aliases: this module's annotations are strings, which
    # FastAPI resolves in the module, where a local alias does not exist.
    reader: Any = Depends(key_for("read"))
    writer: Any = Depends(key_for("write"))

    def acting(desk: Desk, key: ApiKey, body: Acting) -> Author:
        """The author of a write: the agent named (who must be active), through the key."""
        if body.agent is None:
            return desk.author(None, via=key.name)
        app = current()
        with app.readers() as session:
            if Staff(session).agent(body.agent) is None:
                raise BadValue(f"{body.agent} is not an active agent")
        return desk.author(body.agent, via=key.name)

    _lookup_routes(router, current, reader)

    @router.get("/cases", summary="list cases, newest first")
    def list_cases(query: Annotated[CaseQuery, Query()], key: ApiKey = reader) -> dict[str, Any]:
        app = current()
        size = min(query.limit, app.settings.api.max_page_size)
        clock = "escalated" if query.escalated else "breached" if query.breached else None
        wanted = CaseFilter(
            status=query.status, open_only=query.open, owner=query.owner, queue=query.queue,
            contact=query.contact, unassigned=query.unassigned, clock=clock,
            created_after=query.created_after, created_before=query.created_before,
            updated_after=query.updated_after, updated_before=query.updated_before,
            before=_before(query.cursor))
        rows = app.desk().list(wanted, size + 1)
        more = len(rows) > size
        rows = rows[:size]
        return {"cases": rows,
                "next_cursor": _cursor(int(rows[-1]["number"])) if more else None}

    @router.get("/cases/{number}", summary="one case: comments, collaborators, files, "
                                           "children, targets and history")
    def show_case(number: str, key: ApiKey = reader) -> dict[str, Any]:
        return current().desk().show(parse_number(number))

    @router.post("/cases", status_code=201, summary="open a case")
    def open_case(body: NewCaseIn, response: Response, key: ApiKey = writer) -> dict[str, Any]:
        desk = current().desk()
        opened = desk.new(NewCase(
            email=body.email, subject=body.subject, body=body.description,
            origin=body.origin, priority=body.priority,
            parent=parse_number(body.parent) if body.parent else None,
            notify_contact=body.notify_contact,
            assign_using_rules=body.assign_using_rules), acting(desk, key, body))
        number = f"{opened.number:08d}"
        response.headers["Location"] = f"{PREFIX}/cases/{number}"
        return {"number": number, "queued": opened.queued}

    @router.post("/cases/{number}/comments", status_code=201,
                 summary="a public reply (mailed) or an internal note")
    def comment(number: str, body: CommentIn, key: ApiKey = writer) -> dict[str, Any]:
        desk = current().desk()
        author = acting(desk, key, body)
        files = [NewFile(f.filename, f.content_type, _decoded(f)) for f in body.files]
        if body.public:
            queued = desk.reply(parse_number(number), body.body, author, hold=body.hold,
                                files=files)
        else:
            queued = desk.note(parse_number(number), body.body, author, files=files)
        return {"queued": queued}

    @router.patch("/cases/{number}", summary="change status, priority, owner or parent")
    def change(number: str, body: CaseChangeIn, key: ApiKey = writer) -> dict[str, Any]:
        desk = current().desk()
        desk.update(parse_number(number), status=body.status, priority=body.priority,
                    owner=body.owner, parent=body.parent, author=acting(desk, key, body))
        return desk.show(parse_number(number))

    @router.post("/cases/{number}/close", summary="close with a resolution")
    def close(number: str, body: CloseIn, key: ApiKey = writer) -> dict[str, Any]:
        desk = current().desk()
        queued = desk.close(parse_number(number), body.resolution, acting(desk, key, body))
        return {"queued": queued}

    _link_routes(router, current, writer, acting)

    @router.post("/cases/{number}/reopen", summary="reopen a closed case")
    def reopen(number: str, body: Acting, key: ApiKey = writer) -> dict[str, Any]:
        desk = current().desk()
        desk.reopen(parse_number(number), acting(desk, key, body))
        return desk.show(parse_number(number))

    return router


def _lookup_routes(router: APIRouter, current: Callable[[], App], reader: Any) -> None:
    """The routes that look things up: search, a case's attachments, accepted mail."""

    @router.get("/search", summary="cases holding every word of q, best first")
    def search(q: str, limit: Annotated[int, Query(ge=1, le=200)] = 20,
               cursor: str | None = None, open: bool = False,
               key: ApiKey = reader) -> dict[str, Any]:
        page = current().desk().search(q, limit=limit, cursor=cursor, open_only=open)
        return {"cases": page.rows, "next_cursor": page.next_cursor, "limited": page.limited}

    @router.get("/cases/{number}/attachments/{attachment_id}",
                summary="one of a case's files, as it came",
                response_class=StreamingResponse)
    def attachment(number: str, attachment_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                   key: ApiKey = reader) -> StreamingResponse:
        return file_response(current().desk().attachment(parse_number(number), attachment_id))

    @router.get("/inbound/{inbound_id}/raw", summary="an accepted mail's raw .eml",
                response_class=StreamingResponse)
    def raw(inbound_id: Annotated[int, Path(ge=1, le=MAX_ID)],
            key: ApiKey = reader) -> StreamingResponse:
        return file_response(current().desk().raw_mail(inbound_id))


def _link_routes(router: APIRouter, current: Callable[[], App], writer: Any,
                 acting: Callable[[Desk, ApiKey, Acting], Author]) -> None:
    """The routes that tie cases and people together: clone, merge, collaborators."""

    @router.post("/cases/{number}/collaborators", status_code=201,
                 summary="keep someone informed (the mailbox's policy; at most 20)")
    def add_collaborator(number: str, body: CollaboratorIn, key: ApiKey = writer) -> dict[str, Any]:
        desk = current().desk()
        added = desk.add_collaborator(parse_number(number), body.email, body.name,
                                      acting(desk, key, body))
        return {"added": added}

    @router.delete("/cases/{number}/collaborators/{email}", status_code=204,
                   summary="stop keeping someone informed")
    def remove_collaborator(number: str, email: str, key: ApiKey = writer) -> Response:
        desk = current().desk()
        desk.remove_collaborator(parse_number(number), email, desk.author(None, via=key.name))
        return Response(status_code=204)

    @router.post("/cases/{number}/clone", status_code=201,
                 summary="a new case with the same contact, fields and collaborators")
    def clone(number: str, body: CloneIn, response: Response,
              key: ApiKey = writer) -> dict[str, Any]:
        desk = current().desk()
        made = f"{desk.clone(parse_number(number), body.subject, acting(desk, key, body)):08d}"
        response.headers["Location"] = f"{PREFIX}/cases/{made}"
        return {"number": made}

    @router.post("/cases/{number}/merge", summary="merge this case into another")
    def merge(number: str, body: MergeIn, key: ApiKey = writer) -> dict[str, Any]:
        desk = current().desk()
        merged, queued = desk.merge(parse_number(number), parse_number(body.into),
                                    acting(desk, key, body))
        return {"into": f"{parse_number(body.into):08d}", "comments": merged.comments,
                "files": merged.files, "collaborators": list(merged.collaborators),
                "left_out": list(merged.left_out), "queued": queued}


def _decoded(file: FileIn) -> bytes:
    try:
        return base64.b64decode(file.content_base64, validate=True)
    except binascii.Error:
        raise BadValue(f"{file.filename}: content_base64 is not base64") from None


def _cursor(number: int) -> str:
    """An opaque cursor: the last case number of a page."""
    return base64.urlsafe_b64encode(f"before:{number}".encode()).decode().rstrip("=")


def _before(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, number = text.partition(":")
        if kind == "before" and number.isdigit():
            return int(number)
    except (binascii.Error, UnicodeDecodeError):
        pass
    raise HTTPException(422, "cursor: not a cursor this API gave")
