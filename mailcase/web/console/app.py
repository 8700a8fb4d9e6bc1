"""The console's application: the sign-in routes, the pages' routers, the stylesheet,
and what a refusal looks like — put together over the daemon's App of the moment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from mailcase.app import App
from mailcase.cases.errors import BadValue, CaseError, NotFound
from mailcase.web.console import actions, casepage, queues
from mailcase.web.console.cookies import SessionCookies
from mailcase.web.console.render import Pages
from mailcase.web.console.signin import Console, SignedOut, signin_routes
from mailcase.web.guard import Limiter, Refused

_TITLES = {401: "Please sign in again", 403: "Not allowed", 413: "Too large",
           429: "Please wait"}


def make_console(app: Callable[[], App]) -> FastAPI:
    """The console over ``app()`` (a reload swaps it): sign-in, the lists, a case and
    its forms. The failed sign-ins it counts live as long as it does, so a reload keeps
    them."""
    console = Console(app, Pages(), Limiter(clock=lambda: app().clock().timestamp()))
    web = FastAPI(title="mailcase console", openapi_url=None, docs_url=None,
                  redoc_url=None)
    web.state.console = console
    web.add_middleware(SessionCookies, settings=lambda: app().settings.console)
    web.add_exception_handler(SignedOut, _to_sign_in(console))
    web.add_exception_handler(Refused, _refusal(console))
    for error, status in ((NotFound, 404), (BadValue, 422), (CaseError, 409)):
        web.add_exception_handler(error, _case_error(console, status))
    web.add_exception_handler(RequestValidationError, _bad_request(console))
    web.add_exception_handler(HTTPException, _http_error(console))
    web.mount("/static", StaticFiles(packages=[("mailcase.web.console", "static")]),
              name="static")
    web.include_router(signin_routes(console))
    for part in (queues, casepage, actions):
        web.include_router(part.routes(app, console.pages))
    return web


def _to_sign_in(console: Console) -> Callable[[Request, Exception], Any]:
    """No live session: a page read goes to the sign-in page and comes back after it;
    anything else (a form sent after the session ended) is refused with 401."""
    async def handler(request: Request, _exc: Exception) -> Response:
        if request.method in ("GET", "HEAD"):
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse("/login?" + urlencode({"next": here}), status_code=303)
        return console.pages.render(
            "message.html.j2", request, status=401, title=_TITLES[401],
            text="Your session has ended, so this was not done. Sign in, then send it again.",
            link="/login", link_text="Sign in")
    return handler


def _refusal(console: Console) -> Callable[[Request, Exception], Any]:
    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return console.pages.render(
            "message.html.j2", request, status=exc.status, headers=exc.headers,
            title=_TITLES.get(exc.status, "Refused"), text=exc.reason, link=None,
            link_text="")
    return handler


def _case_error(console: Console, status: int) -> Callable[[Request, Exception], Any]:
    """What the case rules refused outside a case's own forms (a case that is not
    there, a list asked for wrongly): a page saying so, with the way back."""
    async def handler(request: Request, exc: Exception) -> Response:
        return console.pages.render(
            "message.html.j2", request, status=status,
            title={404: "Not found", 422: "Cannot do that"}.get(status, "Refused"),
            text=str(exc), link="/", link_text="Back to the cases")
    return handler


def _bad_request(console: Console) -> Callable[[Request, Exception], Any]:
    """A request whose parameters are not what a page takes (a page number of 0, a
    letter for a file's id): the console's own page, not the framework's JSON."""
    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        where = ", ".join(str(error["loc"][-1]) for error in exc.errors())
        return console.pages.render(
            "message.html.j2", request, status=422, title="Cannot show that",
            text=f"This address asks for something the console does not have ({where}).",
            link="/", link_text="Back to the cases")
    return handler


def _http_error(console: Console) -> Callable[[Request, Exception], Any]:
    """The framework's own refusals (no such page, a method a page does not take), as
    console pages with the console's headers."""
    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        title = {404: "Not found", 405: "Not allowed"}.get(exc.status_code, "Refused")
        return console.pages.render(
            "message.html.j2", request, status=exc.status_code, title=title,
            text=f"There is no page here ({exc.status_code})." if exc.status_code == 404
            else str(exc.detail), link="/", link_text="Back to the cases",
            headers=dict(exc.headers or {}))
    return handler
