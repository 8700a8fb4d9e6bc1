"""Stored files over HTTP, for the API and the console: streamed a slice at a time as
they come out of the store, named in RFC 6266 form, never sniffed, and sandboxed if a
browser opens one on its own, so a customer's HTML or SVG runs nothing on our origin."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager, ExitStack
from urllib.parse import quote

from fastapi.responses import StreamingResponse

from mailcase.cases.files import StoredFile

POLICY = "default-src 'none'; sandbox"
MAX_ID = 2**31 - 1  # the largest id a path may name: the tables' ids are 32-bit integers


def file_response(opening: AbstractContextManager[StoredFile], *,
                  inline: Collection[str] = ()) -> StreamingResponse:
    """The file ``opening`` yields (its errors, NotFound and the like, raised before any
    byte): shown in the browser when its type is one of ``inline``, else a download."""
    stack = ExitStack()
    stored = stack.enter_context(opening)

    def body() -> Iterator[bytes]:
        with stack:
            yield from stored.chunks

    kind = "inline" if stored.content_type in inline else "attachment"
    ascii_name = stored.filename.encode("ascii", "replace").decode().replace('"', "_")
    disposition = (f'{kind}; filename="{ascii_name}"; '
                   f"filename*=UTF-8''{quote(stored.filename)}")
    return StreamingResponse(body(), media_type=stored.content_type, headers={
        "Content-Length": str(stored.size), "Content-Disposition": disposition,
        "Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store"})
