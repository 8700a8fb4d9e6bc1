"""The console's pages: Jinja templates from ``templates/console/`` (autoescaped), each
answered with the headers that keep a page to itself — nothing loaded or run from
elsewhere, not framed by other sites, not cached, not sniffed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-src 'self'; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Pages:
    """The console's templates, loaded once. A page's name is its file under
    ``templates/console/`` ("login.html.j2"); each sees ``request`` and ``visitor``
    (the signed-in agent, or None) besides what the route gives it."""

    def __init__(self) -> None:
        self.env = Environment(loader=PackageLoader("mailcase", "templates/console"),
                               autoescape=True, undefined=StrictUndefined,
                               auto_reload=False)

    def render(self, name: str, request: Request, *, status: int = 200,
               headers: Mapping[str, str] | None = None, **context: Any) -> HTMLResponse:
        context.setdefault("visitor", None)
        html = self.env.get_template(name).render(request=request, **context)
        return HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})
