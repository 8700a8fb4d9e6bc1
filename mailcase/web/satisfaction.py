"""The satisfaction survey's links: one click records the rating, the page it opens
takes an optional comment. Served by the public Web-to-Case listener; no key, no
cookie: the signed link is the whole proof (cases.survey checks it)."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from mailcase.app import App
from mailcase.cases.errors import CaseError
from mailcase.cases.survey import SurveyRefused

COMMENT_FORM_MAX = 16 * 1024  # bytes of form a comment may take
# Pages that load nothing, run nothing and cannot be framed.
HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                      "form-action 'self'; frame-ancestors 'none'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store"}


def survey_routes(current: Callable[[], App]) -> APIRouter:
    router = APIRouter()

    @router.get("/satisfaction/{token}", response_class=HTMLResponse,
                include_in_schema=False)
    def rate(token: str, rating: str = "") -> HTMLResponse:
        return _answered(current, token, rating, None)

    @router.post("/satisfaction/{token}", response_class=HTMLResponse,
                 include_in_schema=False)
    async def comment(token: str, request: Request) -> HTMLResponse:
        body = await request.body()
        if len(body) > COMMENT_FORM_MAX:
            return _page(413, "Too long", "Please keep the comment shorter.")
        form = parse_qs(body.decode("utf-8", "replace"))
        rating = form.get("rating", [""])[0]
        text = form.get("comment", [""])[0]
        return await run_in_threadpool(_answered, current, token, rating, text)

    return router


def _answered(current: Callable[[], App], token: str, rating: str,
              comment: str | None) -> HTMLResponse:
    try:
        number = current().surveys().answer(token, rating, comment)
    except SurveyRefused as refused:
        return _page(410 if refused.expired else 403, "This link does not work",
                     f"{refused}.")
    except CaseError as exc:
        return _page(400, "That did not work", f"{exc}.")
    if comment:
        return _page(200, "Thank you", f"Your comment on case {number} is recorded.")
    return _page(200, "Thank you", f"Your rating of case {number} is recorded. Anything "
                 "to add?", form=(token, rating))


def _page(status: int, title: str, text: str,
          form: tuple[str, str] | None = None) -> HTMLResponse:
    """A small page that stands on its own: every value escaped, nothing loaded."""
    extra = ""
    if form is not None:
        token, rating = (escape(part, quote=True) for part in form)
        extra = (f'<form method="post" action="/satisfaction/{token}">'
                 f'<input type="hidden" name="rating" value="{rating}">'
                 '<p><label for="comment">Your comment</label><br>'
                 '<textarea id="comment" name="comment" rows="6" cols="60" '
                 'maxlength="4000"></textarea></p><p><button type="submit">Send</button>'
                 "</p></form>")
    html = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title></head>"
            f'<body style="font-family:sans-serif; max-width:40em; margin:2em auto;">'
            f"<h1>{escape(title)}</h1><p>{escape(text)}</p>{extra}</body></html>")
    return HTMLResponse(html, status_code=status, headers=HEADERS)
