"""The console's application: the sign-in routes, the pages' routers, the stylesheet,
and what a refusal looks like — put together over the daemon's App of the moment."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import RedirectResponse, Response

from mailcase.app import App
from mailcase.web.console.cookies import SessionCookies
from mailcase.web.console.render import Pages
from mailcase.web.console.signin import (
    Console,
    SignedOut,
    Visitor,
    signed_in,
    signin_routes,
)
from mailcase.web.guard import Limiter, Refused

_TITLES = {401: "Please sign in again", 403: "Not allowed", 413: "Too large",
           429: "Please wait"}


def make_console(app: Callable[[], App], routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The console over ``app()`` (a reload swaps it): sign-in, then ``routers`` (the
    pages), and a placeholder ``GET /`` for as long as none of them has one. The failed
    sign-ins it counts live as long as it does, so a reload keeps them."""
    console = Console(app, Pages(), Limiter(clock=lambda: app().clock().timestamp()))
    web = FastAPI(title="mailcase console", openapi_url=None, docs_url=None,
                  redoc_url=None)
    web.state.console = console
    web.add_middleware(SessionCookies, settings=lambda: app().settings.console)
    web.add_exception_handler(SignedOut, _to_sign_in(console))
    web.add_exception_handler(Refused, _refusal(console))
    web.mount("/static", StaticFiles(packages=[("mailcase.web.console", "static")]),
              name="static")
    web.include_router(signin_routes(console))
    for router in routers:
        web.include_router(router)
    web.include_router(placeholder_routes(console))  # last: a page's own "/" comes first
    return web


def placeholder_routes(console: Console) -> APIRouter:
    """``GET /``: who is signed in — until the console's own first page claims "/"."""
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    def home(request: Request, visitor: Annotated[Visitor, Depends(signed_in)]) -> Response:
        return console.pages.render("home.html.j2", request, visitor=visitor)

    return router


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
