"""What an agent does to a case from the console: reply (with files), add an internal
note, change status, priority or owner, close, reopen, merge, add and remove
collaborators.

Each form posts here with its CSRF token (``csrf_checked``), and each action is one call
on the Desk — the case rules the command line, mail commands and the API use — acting
as the signed-in agent. Done, the browser is sent back to the case (303, so a reload
does not post twice) with the name of what was done; refused by the case rules, the
case page comes back with the reason and what the agent typed still in the form.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from mailcase.app import App
from mailcase.cases.book import parse_number
from mailcase.cases.desk import Author, Desk
from mailcase.cases.errors import BadValue, CaseError, NotFound
from mailcase.cases.files import NewFile
from mailcase.web.console.casepage import case_page
from mailcase.web.console.render import Pages
from mailcase.web.console.signin import Visitor, csrf_checked

# One action: the Desk, the case's number, the agent, the form and its files.
Action = Callable[[Desk, int, Author, FormData, list[NewFile]], None]


def _text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _changed(form: FormData, name: str) -> str | None:
    """A field the agent changed: its new value; None when it is empty or still what
    the page showed (``NAME_was``), so saving one field leaves the others alone."""
    value = _text(form, name).strip()
    return value if value and value != _text(form, f"{name}_was").strip() else None


async def _read_files(form: FormData) -> list[NewFile]:
    """The files chosen in the form (a file input left empty sends one without a name)."""
    return [NewFile(item.filename, item.content_type, await item.read())
            for item in form.getlist("files")
            if isinstance(item, UploadFile) and item.filename]


def _reply(desk: Desk, number: int, author: Author, form: FormData,
           files: list[NewFile]) -> None:
    desk.reply(number, _text(form, "body"), author, files=files, hold=bool(form.get("hold")))


def _note(desk: Desk, number: int, author: Author, form: FormData,
          files: list[NewFile]) -> None:
    desk.note(number, _text(form, "body"), author, files=files)


def _update(desk: Desk, number: int, author: Author, form: FormData,
            files: list[NewFile]) -> None:
    changes = {name: _changed(form, name) for name in ("status", "priority", "owner")}
    if not any(changes.values()):
        raise BadValue("nothing was changed")
    desk.update(number, **changes, author=author)


def _close(desk: Desk, number: int, author: Author, form: FormData,
           files: list[NewFile]) -> None:
    resolution = _text(form, "resolution").strip()
    if not resolution:
        raise BadValue("say how it was resolved: the resolution goes to the customer")
    desk.close(number, resolution, author)


def _reopen(desk: Desk, number: int, author: Author, form: FormData,
            files: list[NewFile]) -> None:
    desk.reopen(number, author)


def _merge(desk: Desk, number: int, author: Author, form: FormData,
           files: list[NewFile]) -> None:
    into = _text(form, "into").strip()
    if not into:
        raise BadValue("give the number of the case to merge this one into")
    target = parse_number(into)
    try:
        desk.merge(number, target, author)
    except NotFound:
        if not desk.exists(target):  # (this case itself missing is a 404 page)
            raise BadValue(f"there is no case {target:08d} to merge into") from None
        raise


def _add_collaborator(desk: Desk, number: int, author: Author, form: FormData,
                      files: list[NewFile]) -> None:
    desk.add_collaborator(number, _text(form, "email"), _text(form, "name").strip(), author)


def _remove_collaborator(desk: Desk, number: int, author: Author, form: FormData,
                         files: list[NewFile]) -> None:
    desk.remove_collaborator(number, _text(form, "email"), author)


# Each action by the name its notice goes by: its path under the case, and what it does.
ACTIONS: dict[str, tuple[str, Action]] = {
    "reply": ("reply", _reply), "note": ("note", _note), "update": ("update", _update),
    "close": ("close", _close), "reopen": ("reopen", _reopen), "merge": ("merge", _merge),
    "collaborator-added": ("collaborators/add", _add_collaborator),
    "collaborator-removed": ("collaborators/remove", _remove_collaborator),
}


def routes(current: Callable[[], App], pages: Pages) -> APIRouter:
    """``POST /cases/{number}/<action>`` for each of ACTIONS."""
    router = APIRouter()
    for name, (path, action) in ACTIONS.items():
        router.add_api_route(f"/cases/{{number}}/{path}",
                             _endpoint(current, pages, name, action), methods=["POST"])
    return router


def _endpoint(current: Callable[[], App], pages: Pages, name: str,
              action: Action) -> Callable[..., Awaitable[Response]]:
    async def endpoint(number: str, request: Request,
                       visitor: Annotated[Visitor, Depends(csrf_checked)]) -> Response:
        wanted = parse_number(number)
        form = await request.form()
        desk = current().desk()
        try:
            files = await _read_files(form)
            # The Desk commits to the database: off the event loop, which serves mail.
            await run_in_threadpool(action, desk, wanted,
                                    Author(visitor.email.lower(), visitor.name), form, files)
        except NotFound:
            raise
        except (BadValue, CaseError) as exc:
            draft = {key: value for key, value in form.items() if isinstance(value, str)}
            return await run_in_threadpool(
                case_page, current, pages, request, visitor, wanted, error=str(exc),
                status=422 if isinstance(exc, BadValue) else 409, draft=draft)
        finally:
            await form.close()
        target = form.get("into") if name == "merge" else None
        shown = parse_number(str(target)) if target else wanted
        return RedirectResponse(f"/cases/{shown}?done={name}#top", status_code=303)
    endpoint.__name__ = f"console_{name.replace('-', '_')}"
    return endpoint
