"""Who is at the browser, and whether a form really comes from the console: the session
cookie, the trusted header of a single sign-on proxy, CSRF and Origin checks, and the
sign-in and sign-out routes.

A route that needs a signed-in agent takes ``Annotated[Visitor, Depends(signed_in)]``; a
route that changes anything (every POST) takes ``csrf_checked`` instead, which also
checks the form's ``csrf`` field (or the ``X-CSRF-Token`` header) against the session's
token and refuses a request whose Origin is another site. Without a live session a page
read is sent to ``/login?next=…`` and a form post refused (401).

Failed sign-ins are counted in this process's memory (web.guard.Limiter): one ``serve``
process serves the console, and a restart forgets the counts.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from mailcase.app import App
from mailcase.cases.passwords import Passwords
from mailcase.cases.signins import SignedIn, Signins
from mailcase.cases.staff import Staff
from mailcase.web.console.cookies import COOKIE, NEW_SESSION, cookie, session_cookie
from mailcase.web.console.peers import (
    client_address,
    peer,
    proxied_email,
    safe_next,
    same_origin,
)
from mailcase.web.console.render import Pages
from mailcase.web.guard import Limiter, Refused, retry_after

log = logging.getLogger(__name__)

LOGIN_COOKIE = "mailcase_login"  # the sign-in form's own token (no session yet)
CSRF_HEADER = "x-csrf-token"
LOGIN_FORM_SECONDS = 2 * 3600  # how long a sign-in form may wait to be sent
LOGIN_FORM_MAX = 8 * 1024  # bytes of sign-in form
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True)
class Visitor:
    """The agent signed in at the browser, and the token their forms must carry."""

    agent_id: int
    email: str
    name: str
    csrf: str


class SignedOut(Exception):
    """The request has no live session."""


@dataclass
class Console:
    """What the console's routes share: the daemon's App of the moment, the pages and
    the failed sign-ins counted."""

    current: Callable[[], App]
    pages: Pages
    limiter: Limiter


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


# -- who is there -------------------------------------------------------------------------

def signed_in(request: Request) -> Visitor:
    """The signed-in agent (a FastAPI dependency): the session of the cookie, or, from a
    trusted proxy, the agent its header names (a session is opened for them). SignedOut
    without either; Refused (403) for a header naming no active agent."""
    app = console_of(request).current()
    settings = app.settings.console
    secret = request.cookies.get(COOKIE, "")
    proxied = proxied_email(request, settings)
    with app.sessions.begin() as session:
        signins = Signins(session, app.clock(), settings)
        found = signins.find(secret) if secret else None
        if proxied is not None and (found is None or found.email != proxied):
            agent = Staff(session).agent(proxied)
            if agent is None:
                log.warning("console: %r named by %s from %s is not an active agent",
                            proxied, settings.trusted_header, peer(request))
                raise Refused(403, f"{proxied} is not an active agent of this console; an "
                                   "administrator can add you (mailcase agents add).")
            if found is not None:  # the header names someone else now: theirs ends
                signins.close(secret)
            secret, found = signins.open(agent)
            setattr(request.state, NEW_SESSION, secret)
            log.info("console: %s signed in through %s from %s", proxied,
                     settings.trusted_header, peer(request))
    if found is None:
        raise SignedOut
    return Visitor(found.agent_id, found.email, found.name, found.csrf)


async def csrf_checked(request: Request,
                       visitor: Annotated[Visitor, Depends(signed_in)]) -> Visitor:
    """The signed-in agent of a request that changes something (a FastAPI dependency):
    Refused (403) unless it came from the console's own pages with the session's token."""
    same_origin(request)
    sent = request.headers.get(CSRF_HEADER) or await _form_value(request, "csrf")
    if not hmac.compare_digest(sent.encode(), visitor.csrf.encode()):
        raise Refused(403, "This form is out of date or did not come from the console: "
                           "go back, reload the page and send it again.")
    return visitor


async def _form_value(request: Request, name: str) -> str:
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind not in FORM_TYPES:
        return ""
    value = (await request.form()).get(name)
    return value if isinstance(value, str) else ""


# -- signing in and out -------------------------------------------------------------------

def signin_routes(console: Console) -> APIRouter:
    """``GET /login`` (the form), ``POST /login`` and ``POST /logout``."""
    router = APIRouter()

    @router.get("/login", include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> Response:
        try:
            signed_in(request)  # already in (or through the proxy): on to the page
            return RedirectResponse(safe_next(next), status_code=303)
        except SignedOut:
            return login_page(console, request, next=next)

    @router.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        return await _login(console, request)

    @router.post("/logout", include_in_schema=False)
    def logout(request: Request, visitor: Annotated[Visitor, Depends(csrf_checked)]) -> Response:
        app = console.current()
        settings = app.settings.console
        with app.sessions.begin() as session:
            for secret in (request.cookies.get(COOKIE, ""),
                           getattr(request.state, NEW_SESSION, "")):
                if secret:
                    Signins(session, app.clock(), settings).close(secret)
        setattr(request.state, NEW_SESSION, "")
        log.info("console: %s signed out", visitor.email)
        response = RedirectResponse("/login", status_code=303)
        response.headers.append("set-cookie", cookie(COOKIE, "", seconds=0,
                                                     secure=settings.secure_cookies))
        return response

    return router


def login_page(console: Console, request: Request, *, next: str, email: str = "",
               error: str | None = None, status: int = 200,
               headers: dict[str, str] | None = None) -> Response:
    """The sign-in form with a fresh form token (in the page and in its cookie)."""
    app = console.current()
    settings = app.settings.console
    token = app.services.signer.seal(f"console-login-{int(app.clock().timestamp())}-"
                                     f"{secrets.token_urlsafe(16)}")
    page = console.pages.render("login.html.j2", request, status=status, headers=headers,
                                csrf=token, next=safe_next(next), email=email, error=error,
                                passwords=settings.passwords)
    page.headers.append("set-cookie", cookie(LOGIN_COOKIE, token, seconds=LOGIN_FORM_SECONDS,
                                             secure=settings.secure_cookies, path="/login",
                                             same_site="Strict"))
    return page


def _login_form_genuine(app: App, cookie_token: str, form_token: str) -> bool:
    """Whether the sign-in form came from our own page, recently: its token is the one
    its cookie holds (another site can neither read nor set that cookie) and ours."""
    if not cookie_token or not hmac.compare_digest(cookie_token.encode(), form_token.encode()):
        return False
    payload = app.services.signer.unseal(cookie_token) or ""
    match = re.fullmatch(r"console-login-(\d+)-[\w-]+", payload)
    return match is not None and 0 <= app.clock().timestamp() - int(match[1]) <= LOGIN_FORM_SECONDS


async def _login(console: Console, request: Request) -> Response:
    app = console.current()
    settings = app.settings.console
    same_origin(request)
    if not settings.passwords:
        raise Refused(403, "Sign-in with a password is turned off here.")
    try:
        form = parse_qs((await _small_body(request)).decode("utf-8", "replace"),
                        max_num_fields=10)
    except ValueError:  # more fields than the sign-in form has
        raise Refused(400, "This is not the sign-in form.") from None
    email = form.get("email", [""])[0].strip().lower()
    password, next_path = form.get("password", [""])[0], safe_next(form.get("next", ["/"])[0])

    def again(status: int, error: str, headers: dict[str, str] | None = None) -> Response:
        return login_page(console, request, next=next_path, email=email, error=error,
                          status=status, headers=headers)

    if not _login_form_genuine(app, request.cookies.get(LOGIN_COOKIE, ""),
                               form.get("csrf", [""])[0]):
        return again(403, "This sign-in form has expired or did not come from this "
                          "console; please sign in again.")
    client = client_address(request, settings)
    keys = [(f"email {email}", settings.login_attempts),
            (f"client {client}", settings.login_attempts)]
    window = settings.login_window.wall_seconds
    wait = console.limiter.take(keys, window)  # counted before the check: no race past it
    if wait:
        log.warning("console: sign-in for %r from %s refused: too many failures", email,
                    client)
        minutes = max(1, round(wait / 60))
        return again(429, f"Too many failed sign-ins for this address or from this network; "
                          f"try again in {minutes} minute{'s' if minutes > 1 else ''}.",
                     retry_after(wait))
    opened = await run_in_threadpool(_check_and_open, app, email, password,
                                     request.cookies.get(COOKIE, ""))
    if opened is None:
        log.warning("console: sign-in failed for %r from %s", email, client)
        return again(401, "That email address and password do not match an agent's.")
    console.limiter.forget([keys[0][0]])
    console.limiter.give_back([keys[1][0]])
    secret, found = opened
    log.info("console: %s signed in from %s", found.email, client)
    response = RedirectResponse(next_path, status_code=303)
    response.headers.append("set-cookie", session_cookie(secret, settings))
    response.headers.append("set-cookie", cookie(LOGIN_COOKIE, "", seconds=0, path="/login",
                                                 secure=settings.secure_cookies))
    return response


def _check_and_open(app: App, email: str, password: str,
                    before: str) -> tuple[str, SignedIn] | None:
    """A new session if ``password`` is active agent ``email``'s, the browser's session
    ``before`` (if any) ended: a session is never carried across a sign-in. In a worker
    thread: the hash takes its time and memory on purpose."""
    with app.sessions.begin() as session:
        agent = Passwords(session).check(email, password)
        if agent is None:
            return None
        signins = Signins(session, app.clock(), app.settings.console)
        if before:
            signins.close(before)
        return signins.open(agent)


async def _small_body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > LOGIN_FORM_MAX:
            raise Refused(413, "This sign-in form is too large.")
        chunks.append(chunk)
    return b"".join(chunks)
