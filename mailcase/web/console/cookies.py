"""The console's cookies: the session's, which scripts cannot read and other sites do not
send with their forms (SameSite=Lax), and the middleware that sends a session opened
while answering (for a trusted proxy's header) with whatever the route answered."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailcase.config.console import ConsoleSettings

COOKIE = "mailcase_session"
NEW_SESSION = "mailcase_new_session"  # request.state: a session opened by this request


def cookie(name: str, value: str, *, seconds: int, secure: bool, path: str = "/",
           same_site: str = "Lax") -> str:
    """A Set-Cookie value the page's scripts cannot read; ``seconds`` 0 deletes it."""
    return (f"{name}={value}; Max-Age={seconds}; Path={path}; HttpOnly; "
            f"SameSite={same_site}" + ("; Secure" if secure else ""))


def session_cookie(secret: str, settings: ConsoleSettings) -> str:
    return cookie(COOKIE, secret, seconds=settings.session_max.wall_seconds,
                  secure=settings.secure_cookies)


class SessionCookies:
    """ASGI middleware: a session opened while answering (for the trusted header) goes
    out as the session cookie on whatever the route answered."""

    def __init__(self, app: ASGIApp, settings: Callable[[], ConsoleSettings]) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})  # what request.state writes into

        async def sending(message: Message) -> None:
            secret = state.get(NEW_SESSION)
            if message["type"] == "http.response.start" and secret:
                message["headers"] = [*message.get("headers", []), (
                    b"set-cookie", session_cookie(secret, self.settings()).encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, sending)
