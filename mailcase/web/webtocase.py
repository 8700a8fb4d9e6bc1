"""Web-to-Case: ``POST /web-to-case`` turns a form on a public site into a case; the same
public listener serves the satisfaction survey's links (web.satisfaction).

A form is stored exactly as a mail is — written as one (web.formmail) and committed by
the same durable intake before the answer — and processed by the same pipeline (origin
Web, acknowledgement with a reply token, routing and targets as for mail). Every check
comes first, cheapest first: the request's size (413), the page it came from (403), its
type (415), its fields (400 for a filled honeypot, 422), then the rates (429); a form
refused by any of them leaves nothing behind. If the store cannot take it the answer is
503 with Retry-After, and nothing is stored either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, Headers
from starlette.formparsers import MultiPartException
from starlette.responses import RedirectResponse
from starlette.types import Message

from mailcase.app import App
from mailcase.config.webform import WebToCaseSettings
from mailcase.identity.addresses import canonical
from mailcase.intake.accept import Accepted, TooLarge
from mailcase.logs import about
from mailcase.reading import webform
from mailcase.web import formmail
from mailcase.web.guard import Limiter, Refused, check_origin, retry_after
from mailcase.web.page import page
from mailcase.web.satisfaction import survey_routes

log = logging.getLogger(__name__)

PATH = "/web-to-case"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
UNAVAILABLE_SECONDS = 60  # Retry-After when the store cannot take a form
MAX_FIELDS = 100
SPARE_FILES = 10  # file inputs left empty still come as (empty) file parts

_TITLES = {400: "Form refused", 403: "Form refused", 413: "Form too large",
           415: "Form refused", 422: "Please check the form", 429: "Please try again later",
           503: "Please try again shortly"}


def make_web_to_case(current: Callable[[], App], wake: Callable[[], None]) -> FastAPI:
    """The Web-to-Case door over ``current()`` (the daemon's App of the moment); ``wake``
    tells the processor that a form was stored. Its rate counts live as long as it does,
    so a reload keeps them."""
    door = FastAPI(title="mailcase Web-to-Case", openapi_url=None, docs_url=None,
                   redoc_url=None)
    door.include_router(survey_routes(current))  # the satisfaction links are public too
    limiter = Limiter()

    @door.post(PATH)
    async def submit(request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        try:
            return await _submit(current(), limiter, request, client, wake)
        except Refused as refused:
            log.info("web-to-case form from %s refused (%d): %s", client, refused.status,
                     refused.reason)
            return page(refused.status, _TITLES.get(refused.status, "Form refused"),
                        refused.reason, headers=refused.headers)

    return door


async def _submit(app: App, limiter: Limiter, request: Request, client: str,
                  wake: Callable[[], None]) -> Response:
    settings = app.settings.web_to_case
    _check_request(request.headers, settings)
    form = await _form(request, await _body(request, settings.max_size), settings)
    try:
        submitted = formmail.submission(form, settings, app.services.own)
        keys = [(f"client {client}", settings.per_client),
                (f"address {_person(submitted.email)}", settings.per_address)]
        wait = limiter.take(keys, settings.rate_window.wall_seconds)
        if wait:
            raise Refused(429, "Too many forms came from this address or this network; "
                               "please try again later.", retry_after(wait))
        try:
            accepted = await run_in_threadpool(_store, app, submitted, client)
        except TooLarge:
            limiter.give_back([key for key, _ in keys])
            raise Refused(413, "The form with its files is too large.") from None
        except Exception as exc:  # noqa: BLE001 - nothing stored: the browser may retry
            limiter.give_back([key for key, _ in keys])
            log.error("could not store a web-to-case form from %s (answered 503): %s",
                      client, exc)
            raise Refused(503, "We could not take your form just now; please send it again "
                               "in a minute.", retry_after(UNAVAILABLE_SECONDS)) from None
    finally:
        await form.close()
    wake()
    log.info("web-to-case form from %s for %s stored as inbound=%s", client,
             submitted.email, accepted.id, extra=about(accepted.id, accepted.message_id))
    if submitted.return_url is not None:
        return RedirectResponse(submitted.return_url, status_code=303)
    return page(201, "Thank you", f"We have received your request \u201c{submitted.subject}"
                                  "\u201d.",
                f"We will write to you at {submitted.email}; answer that mail to add "
                "anything to your request.")


def _check_request(headers: Headers, settings: WebToCaseSettings) -> None:
    """What the headers alone refuse: a declared size over the limit, a page not allowed
    to send the form, a body that is no form."""
    length = headers.get("content-length", "")
    if length.isdigit() and int(length) > settings.max_size:
        raise Refused(413, f"The form with its files is too large (at most "
                           f"{settings.max_size} bytes).")
    check_origin(headers, settings.allowed_origins)
    kind = headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind not in FORM_TYPES:
        raise Refused(415, "Send the form as application/x-www-form-urlencoded or "
                           "multipart/form-data.")


async def _body(request: Request, limit: int) -> bytes:
    """The whole request body, refused (413) as soon as it grows past ``limit`` (a body
    sent in chunks declares no length)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"The form with its files is too large (at most {limit} "
                               "bytes).")
        chunks.append(chunk)
    return b"".join(chunks)


async def _form(request: Request, body: bytes, settings: WebToCaseSettings) -> FormData:
    """The form's fields and files, parsed from ``body``; 400 for one that cannot be read."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        return await Request(request.scope, replay).form(
            max_files=settings.max_files + SPARE_FILES, max_fields=MAX_FIELDS,
            max_part_size=settings.max_size)
    except MultiPartException as exc:
        raise Refused(400, f"The form could not be read: {exc}") from None


def _person(email: str) -> str:
    """The address a rate counts by: its plus-forms (ann+1@, ann+2@) are one person."""
    local, _, domain = canonical(email).rpartition("@")
    return f"{local.partition('+')[0]}@{domain}"


def _store(app: App, submitted: formmail.Submission, client: str) -> Accepted:
    """Write the form as a mail and commit it (in a worker thread: files are read and
    the store is written here)."""
    mailbox = app.settings.web_mailbox
    raw = formmail.message(submitted, mailbox, client=client, now=app.clock())
    return app.intake.accept(raw, mail_from=submitted.email, rcpt_to=[mailbox.address],
                             source=webform.SOURCE)
