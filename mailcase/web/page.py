"""The small pages Web-to-Case answers a browser with: a confirmation, or why a form was
refused. Plain HTML, every value escaped, no script and nothing loaded from elsewhere
(the Content-Security-Policy says so too), so the page can be shown on any site's
behalf without lending it anything."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from starlette.responses import HTMLResponse

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em;
color:#222}}h1{{font-size:1.4em}}</style></head>
<body><h1>{title}</h1>
{paragraphs}
</body></html>
"""


def page(status: int, title: str, *paragraphs: str,
         headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """An HTML page with ``title`` and ``paragraphs`` (plain text, escaped here)."""
    body = _PAGE.format(title=escape(title),
                        paragraphs="\n".join(f"<p>{escape(p)}</p>" for p in paragraphs))
    return HTMLResponse(body, status_code=status, headers={**HEADERS, **(headers or {})})
