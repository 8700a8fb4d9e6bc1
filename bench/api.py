"""The API measure: HTTP client processes reading one case, ``GET /api/v1/cases/{number}``.

The database is laid out first (``prepare``): some thousands of old cases seeded with
set-based SQL (bench.seed), then one case as production holds it, made through the real
intake and the case rules — a mail with an attachment that copies two colleagues (who
become collaborators), given to an agent, then a dozen comments: the customer's and a
colleague's replies by mail, the agent's answers and internal notes. ``run`` is the
load: each client process keeps one connection open (HTTP/1.1 keep-alive) and asks for
the same path as fast as it is answered, for a fixed time, timing each request from
sending it to the last byte of the answer. The same clients measure the bare FastAPI
server (bench.bare_api) in the same run.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench import seed
from bench.load import ClientResult, LoadResult, gather

if TYPE_CHECKING:
    from mailcase.app import App

MAILBOX = "support@example.com"
CONTACT = "ann@customer.example"
COLLEAGUES = ("carl@customer.example", "dana@customer.example")
AGENT = "bob@example.com"
OPENING_ID = "<printer-4711@customer.example>"


def _client(port: int, path: str, headers: dict[str, str], start_at: float,
            stop_at: float) -> ClientResult:
    result = ClientResult()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", path, headers=headers)  # opened before the clock starts
    connection.getresponse().read()
    while time.monotonic() < start_at:
        time.sleep(0.001)
    result.started = time.monotonic()
    while time.monotonic() < stop_at:
        started = time.perf_counter()
        try:
            connection.request("GET", path, headers=headers)
            answer = connection.getresponse()
            answer.read()
        except (OSError, http.client.HTTPException):
            result.refused += 1
            connection.close()  # the next request connects again
            continue
        if answer.status == 200:
            result.latencies.append(time.perf_counter() - started)
        else:
            result.refused += 1
    result.ended = time.monotonic()
    connection.close()
    return result


def run(port: int, path: str, *, seconds: float, concurrency: int,
        key: str | None = None, cookie: str | None = None) -> LoadResult:
    """``concurrency`` client processes asking for ``path`` for ``seconds``, each on one
    kept-alive connection, with ``key`` as a Bearer token and ``cookie`` as the Cookie
    header when given. The result has the SMTP clients' shape (bench.load): ``sent``
    counts answers with 200, ``refused`` any other answer or a broken connection."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if cookie:
        headers["Cookie"] = cookie
    start_at = time.monotonic() + 0.2 + 0.1 * concurrency  # every process connected, waiting
    context = multiprocessing.get_context("fork")
    with context.Pool(concurrency) as pool:
        results = pool.starmap(_client, [(port, path, headers, start_at, start_at + seconds)
                                         for _ in range(concurrency)])
    return gather(results)


@dataclass(frozen=True)
class Shown:
    """The case as the API answered it once: how many comments, how large the JSON."""

    comments: int
    size: int


def check(port: int, path: str, key: str) -> Shown:
    """Ask for ``path`` once (also the server's first request, not timed) and check that
    the answer is the realistic case: its comments, collaborators and attachment."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {key}"})
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    if answer.status != 200:
        raise RuntimeError(f"GET {path} answered {answer.status}: {body[:200]!r}")
    case = json.loads(body)
    files = len(case["attachments"]) + sum(len(c["attachments"]) for c in case["comments"])
    if len(case["comments"]) < 12 or len(case["collaborators"]) < 2 or not files:
        raise RuntimeError(f"GET {path} is not the realistic case: "
                           f"{len(case['comments'])} comments, "
                           f"{len(case['collaborators'])} collaborators, {files} files")
    return Shown(len(case["comments"]), len(body))


def check_page(port: int, path: str, cookie: str) -> int:
    """Ask for console page ``path`` once, signed in (not timed): it must be a page,
    not the sign-in form it would be without the session. Its size."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", path, headers={"Cookie": cookie})
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    if answer.status != 200 or (b"<table" not in body and b"Conversation" not in body):
        raise RuntimeError(f"GET {path} answered {answer.status}: {body[:300]!r}")
    return len(body)


def prepare(config: Path, others: int) -> int:
    """Lay out the database ``config`` names: ``others`` seeded cases, then the
    realistic case, whose mail is delivered to the config's relay; its number."""
    from mailcase import config as mailcase_config  # noqa: PLC0415 - only this measure
    from mailcase.app import App  # noqa: PLC0415

    app = App.build(mailcase_config.load(config), create_secret=True)
    try:
        app.ensure_schema()
        if others:
            seed.seed(app.engine, others)
        number = realistic_case(app)
        app.sender.drain()
    finally:
        app.close()
    return number


def realistic_case(app: App) -> int:
    """A case as the pipeline and an agent make one: opened by a mail with an attachment
    copying two colleagues, given to an agent, with a dozen comments."""
    from mailcase.cases.staff import Staff  # noqa: PLC0415 - only this measure
    from mailcase.store.models import InboundMail  # noqa: PLC0415
    with app.sessions.begin() as session:
        Staff(session).add_agent(AGENT, "Bob Agent")
    opening = _opening_mail()
    accepted = app.intake.accept(opening, mail_from=CONTACT, rcpt_to=[MAILBOX],
                                 source="bench")
    app.processor.drain()
    with app.readers() as session:
        inbound = session.get(InboundMail, accepted.id)
        assert inbound is not None and inbound.case is not None, "the opening mail made no case"
        number = inbound.case.number
    desk = app.desk()
    agent = desk.author(AGENT)
    desk.update(number, status=None, priority="High", owner=AGENT, author=agent)
    for round_ in range(3):
        writers = (CONTACT, COLLEAGUES[round_ % 2])
        for writer in writers:
            app.intake.accept(_reply_mail(writer, round_), mail_from=writer,
                              rcpt_to=[MAILBOX], source="bench")
            app.processor.drain()
        desk.reply(number, f"Thank you. Step {round_ + 1}: we have sent a technician to "
                           f"look at the fuser and the paper path.\n\nBob", agent)
        desk.note(number, f"Technician's visit {round_ + 1}: the fuser reads "
                          f"{180 + round_ * 15} °C at idle; spare part ordered.", agent)
    return int(number)


def _opening_mail() -> bytes:
    mail = EmailMessage()
    mail["From"] = "Ann Example <ann@customer.example>"
    mail["To"] = f"Support <{MAILBOX}>"
    mail["Cc"] = ", ".join(f"{name} <{address}>" for name, address
                           in zip(("Carl Example", "Dana Example"), COLLEAGUES, strict=True))
    mail["Subject"] = "The printer in room 4 smells of smoke"
    mail["Message-ID"] = OPENING_ID
    mail["Date"] = format_datetime(datetime.now(UTC) - timedelta(hours=2))
    text = ("Hello,\n\nsince this morning the printer in room 4 smells of smoke when it "
            "prints more than a few pages, and the pages come out warm and curled. "
            "The log from its web page is attached.\n\nRegards,\nAnn\n")
    mail.set_content(text)
    mail.add_alternative("<p>" + text.replace("\n\n", "</p><p>") + "</p>", subtype="html")
    log = "".join(f"2026-12-0{1 + n % 9} 08:{n % 60:02d}:00 fuser temperature "
                  f"{170 + n % 40} C, jam sensor ok\n" for n in range(800))
    mail.add_attachment(log.encode(), maintype="text", subtype="plain",
                        filename="printer-log.txt")
    return mail.as_bytes()


def _reply_mail(writer: str, round_: int) -> bytes:
    mail = EmailMessage()
    mail["From"] = writer
    mail["To"] = MAILBOX
    mail["Subject"] = "Re: The printer in room 4 smells of smoke"
    mail["Message-ID"] = f"<reply-{round_}-{writer.split('@', maxsplit=1)[0]}@customer.example>"
    mail["In-Reply-To"] = OPENING_ID
    mail["References"] = OPENING_ID
    mail.set_content(
        f"Round {round_ + 1} from {writer}: it happened again at {9 + round_}:15, this "
        f"time with a jam in tray {1 + round_}.\n\n"
        f"On Mon, 7 Dec 2026 at 08:00, Support <{MAILBOX}> wrote:\n"
        "> Thank you, we are looking into it.\n> Support\n")
    return mail.as_bytes()
