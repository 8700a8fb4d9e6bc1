"""Web-to-Case over real HTTP: the daemon serves the form on a free port and httpx posts
it, on both engines. A form becomes a case (origin Web, company, phone, files) and its
contact an acknowledgement with a reply token; retURL redirects only where allowed; every
abuse is refused with a clear answer and nothing stored; the headers that carry company
and phone count only on forms; a form answered 303 survives a kill -9 of serve."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from mailcase import config
from mailcase.app import App
from mailcase.cases.desk import NewCase
from mailcase.cli import main
from mailcase.config.webform import WebToCaseSettings
from mailcase.intake.accept import Intake
from mailcase.store import db
from mailcase.store.models import Case, InboundMail, OutboundMail
from tests.service.test_serve import serve_process
from tests.support.mailsink import Sink, free_port
from tests.support.paths import ROOT
from tests.support.servers import mail, running_daemon, send, wait_for, write_config

BOB, CARL = "bob@example.com", "carl@customer.org"
FORM = {"email": CARL, "name": "Carl Customer", "company": "Customer Ltd",
        "phone": "+49 30 1234567", "subject": "Printer on fire",
        "description": "Smoke.\nLots of it."}
SITE = "https://www.example.com"


@dataclass
class Door:
    """The running Web-to-Case listener and the app behind it."""

    app: App
    url: str

    def post(self, data: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("headers", {"Origin": SITE})
        with httpx.Client(base_url=self.url, timeout=10) as client:
            return client.post("/web-to-case", data=data, **kwargs)

    def inbound(self) -> list[InboundMail]:
        with self.app.readers() as session:
            return list(session.scalars(select(InboundMail).order_by(InboundMail.id)))

    def cases(self) -> list[dict[str, Any]]:
        with self.app.readers() as session:
            numbers = session.scalars(select(Case.number).order_by(Case.number)).all()
        return [self.app.desk().show(number) for number in numbers]


@pytest.fixture
def open_door(make_app: Callable[..., App]) -> Iterator[Callable[..., Door]]:
    """Start the daemon (processing in-process) with Web-to-Case on a free port;
    keyword arguments are [web_to_case] keys, ``sections`` other config sections."""
    with contextlib.ExitStack() as stack:
        def start(sections: dict[str, Any] | None = None, **settings: Any) -> Door:
            app = make_app(web_to_case={"enabled": True, "port": 0, **settings},
                           **(sections or {}))
            daemon = stack.enter_context(running_daemon(app, workers=True))
            assert daemon.web_to_case is not None
            return Door(app, f"http://127.0.0.1:{daemon.web_to_case.port}")
        yield start


def acknowledgements(sink: Sink, to: str = CARL) -> list[Any]:
    return [m for m in sink.messages if to in m.rcpt_tos]


def test_a_form_becomes_a_case_with_its_files_and_an_acknowledgement(
        open_door: Callable[..., Door], sink: Sink) -> None:
    """A multipart form opens a case of origin Web with the company, phone and files
    (their names made safe) and its service targets, and the contact gets the
    acknowledgement with a reply token."""
    door = open_door({"sla": [{"name": "standard", "first_response": "4h"}]})
    files = [("files", ("..\\..\\C:\\report<1>.txt", b"toner: empty\n", "text/plain")),
             ("files", ("photo.png", b"\x89PNG fake", "image/png")),
             ("files", ("", b"", "application/octet-stream"))]  # an input left empty
    answer = door.post(FORM, files=files)
    assert answer.status_code == 201, answer.text
    assert "We have received your request" in answer.text
    [case] = wait_for(door.cases, timeout=20, what="the case")
    assert (case["origin"], case["subject"], case["supplied_email"]) == (
        "Web", "Printer on fire", CARL)
    assert (case["supplied_name"], case["supplied_company"], case["supplied_phone"]) == (
        "Carl Customer", "Customer Ltd", "+49 30 1234567")
    assert case["description"] == "Smoke.\nLots of it."
    assert (case["sla"], [t["name"] for t in case["targets"]]) == (
        "standard", ["first_response"])
    assert [(a["filename"], a["size"], a["content_type"]) for a in case["attachments"]] == [
        ("report_1_.txt", 13, "text/plain"), ("photo.png", 9, "image/png")]
    [inbound] = door.inbound()
    assert (inbound.source, inbound.mail_from, inbound.status) == ("web", CARL, "processed")
    [ack] = wait_for(lambda: acknowledgements(sink), timeout=20, what="the acknowledgement")
    assert ack["Subject"] == f"[Case #{case['number']}] Printer on fire"
    assert re.fullmatch(r".*<support\+[0-9a-z-]+@example\.com>", ack["Reply-To"] or "")
    assert ack["Auto-Submitted"] == "auto-replied"


def test_return_url_redirects_only_to_allowed_hosts(
        open_door: Callable[..., Door]) -> None:
    """retURL on an allowed host is answered 303 to it; one elsewhere (also disguised with
    a backslash or a user part) is refused 422 and nothing is stored; without retURL the
    page escapes what the form said."""
    door = open_door(redirect_hosts=["www.example.com"])
    for forged in ("https://evil.example/thanks", "https://evil.example\\@www.example.com/",
                   "https://www.example.com@evil.example/", "javascript:alert(1)",
                   "//evil.example/"):
        refused = door.post({**FORM, "retURL": forged})
        assert refused.status_code == 422, forged
        assert "retURL" in refused.text
    assert door.inbound() == []
    answer = door.post({**FORM, "retURL": f"{SITE}/thanks?x=1"})
    assert (answer.status_code, answer.headers["Location"]) == (303, f"{SITE}/thanks?x=1")
    page = door.post({**FORM, "subject": "<script>alert(1)</script>"})
    assert page.status_code == 201
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>" not in page.text
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert len(door.inbound()) == 2


def test_abuse_is_refused_and_nothing_stored(open_door: Callable[..., Door]) -> None:
    """A filled honeypot (400), a page not allowed (403), a request over max_size (413,
    declared or chunked), a body that is no form (415) and a missing or bad email or
    subject (422) each get a clear answer, and the inbound table stays empty."""
    door = open_door(allowed_origins=["www.example.com"], max_size=4096, max_files=1)
    cases: list[tuple[int, str, dict[str, Any]]] = [
        (400, "meant to stay empty", {"data": {**FORM, "website": "http://spam.example"}}),
        (403, "may not be sent from", {"data": FORM, "headers": {"Origin": "https://evil.example"}}),
        (403, "may not be sent from", {"data": FORM, "headers": {
            "Referer": "https://www.example.com.evil.example/form"}}),
        (403, "named no Origin", {"data": FORM, "headers": {}}),
        (413, "too large", {"data": {**FORM, "description": "x" * 5000}}),
        (413, "too large", {"content": iter([b"email=carl%40customer.org&description=",
                                             b"x" * 5000]),
                            "headers": {"Origin": SITE, "Content-Type":
                                        "application/x-www-form-urlencoded"}}),
        (415, "multipart/form-data", {"json": FORM}),
        (422, "email", {"data": {**FORM, "email": ""}}),
        (422, "email", {"data": {**FORM, "email": "not an address"}}),
        (422, "email", {"data": {**FORM, "email": "carl@customer.org, dora@customer.org"}}),
        (422, "not this help desk", {"data": {**FORM, "email": "Support+x@Example.com"}}),
        (422, "subject", {"data": {**FORM, "subject": "  "}}),
        (422, "name", {"data": {**FORM, "name": "n" * 81}}),
        (422, "At most 1 files", {"data": FORM, "files": [
            ("files", ("a.txt", b"a")), ("files", ("b.txt", b"b"))]}),
    ]
    for status, words, request in cases:
        answer = door.post(**request)
        assert answer.status_code == status, (request, answer.text)
        assert words in answer.text, (words, answer.text)
        assert answer.headers["Content-Type"].startswith("text/html")
    assert door.inbound() == []
    allowed = door.post(FORM, headers={"Referer": f"{SITE}/contact"})
    assert allowed.status_code == 201, allowed.text
    assert len(door.inbound()) == 1


def test_rates_per_address_and_per_client_are_limited(open_door: Callable[..., Door]) -> None:
    """Beyond per_address forms for one address (its plus-forms counted as it) and
    per_client forms from one client, 429 with Retry-After, nothing stored; a forged
    X-Forwarded-For from an untrusted client changes nothing."""
    door = open_door(per_address=2, per_client=3, rate_window="1h")
    assert door.post(FORM).status_code == 201
    assert door.post({**FORM, "email": "carl+2@customer.org"}).status_code == 201
    refused = door.post({**FORM, "email": "Carl+3@customer.org"})
    assert refused.status_code == 429
    assert 3500 < int(refused.headers["Retry-After"]) <= 3600
    assert door.post({**FORM, "email": "dora@customer.org"}).status_code == 201
    crowded = door.post({**FORM, "email": "erin@customer.org"},
                        headers={"Origin": SITE, "X-Forwarded-For": "203.0.113.9"})
    assert crowded.status_code == 429
    assert "try again later" in crowded.text
    assert [row.mail_from for row in door.inbound()] == [
        CARL, "carl+2@customer.org", "dora@customer.org"]


def test_a_trusted_proxy_names_the_client(open_door: Callable[..., Door]) -> None:
    """Behind a proxy in trusted_proxies each client is counted by the X-Forwarded-For the
    proxy sends, and the stored mail's Received line names it."""
    door = open_door(per_client=1, trusted_proxies=["127.0.0.1"])

    def sent_by(client: str, email: str) -> int:
        return door.post({**FORM, "email": email},
                         headers={"Origin": SITE, "X-Forwarded-For": client}).status_code
    assert sent_by("203.0.113.1", "ann@customer.org") == 201
    assert sent_by("203.0.113.1", "bea@customer.org") == 429
    assert sent_by("198.51.100.7", "cid@customer.org") == 201
    assert [row.raw.split(b"\r\n", 1)[0] for row in door.inbound()] == [
        b"Received: from [203.0.113.1] by mailcase with HTTP (Web-to-Case);",
        b"Received: from [198.51.100.7] by mailcase with HTTP (Web-to-Case);"]


def test_a_store_that_cannot_be_reached_answers_503_and_keeps_nothing(
        open_door: Callable[..., Door], database_url: str, tmp_path: Path) -> None:
    """When the database cannot be reached the browser hears 503 with Retry-After and
    nothing is stored; the form did not count against the rates, so sending it again
    once the database is back works."""
    door = open_door(per_address=1)
    url = make_url(database_url)
    gone = (url.set(database=str(tmp_path / "no such folder" / "mailcase.db"))
            if url.get_backend_name() == "sqlite" else url.set(port=1))
    working, engine = door.app.intake, db.create(gone.render_as_string(False))
    door.app.intake = Intake(db.session_factory(engine), door.app.clock, 1 << 20)
    try:
        answer = door.post(FORM)
    finally:
        door.app.intake = working
        engine.dispose()
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "60"
    assert "try again" in answer.text
    assert door.inbound() == []
    assert door.post(FORM).status_code == 201
    assert len(door.inbound()) == 1


def test_a_stranger_s_address_is_acknowledged_once(
        open_door: Callable[..., Door], sink: Sink) -> None:
    """Two forms naming the same address (someone else's, for all we know) open two cases
    but send it one acknowledgement within the mailbox's auto_response_interval."""
    door = open_door()
    assert door.post(FORM).status_code == 201
    assert door.post({**FORM, "subject": "Buy cheap pills"}).status_code == 201

    def settled() -> bool:
        rows = door.inbound()
        with door.app.readers() as session:
            waiting = session.scalar(select(func.count()).select_from(OutboundMail)
                                     .where(OutboundMail.status == "pending"))
        return len(rows) == 2 and all(r.status == "processed" for r in rows) and not waiting
    wait_for(settled, timeout=20, what="both forms processed and the outbox empty")
    assert len(door.cases()) == 2
    [ack] = acknowledgements(sink)
    assert "Printer on fire" in (ack["Subject"] or "")
    assert any("no acknowledgement" in (r.outcome or "") for r in door.inbound())


def test_web_headers_in_smtp_mail_set_nothing(make_app: Callable[..., App]) -> None:
    """A mail over SMTP that carries the headers a form's company and phone travel in
    sets neither, and keeps its mailbox's origin: only the Web-to-Case door's rows may."""
    app = make_app(web_to_case={"enabled": True, "port": 0})
    forged = mail(message_id="<forged@customer.org>", X_Mailcase_Web_Company="Evil Corp",
                  X_Mailcase_Web_Phone="+1 555 0100")
    with running_daemon(app, workers=True) as daemon:
        send(daemon.port, forged)

        def opened() -> list[int]:
            with app.readers() as session:
                return list(session.scalars(select(Case.number)))
        [number] = wait_for(opened, timeout=20, what="the case")
    case = app.desk().show(number)
    assert (case["origin"], case["supplied_company"], case["supplied_phone"]) == (
        "Email", None, None)


def test_the_satisfaction_links_are_served_by_the_web_to_case_listener(
        open_door: Callable[..., Door], tmp_path: Path) -> None:
    """The survey mailed on a close is answered through the public listener: a click
    records the rating, the comment form adds a comment, a forged link is refused."""
    door = open_door({"mailbox": {"address": "support@example.com",
                                  "satisfaction_survey": True},
                      "satisfaction": {"link_base": "https://help.example.com/"}})
    assert main(["-c", str(tmp_path / "mailcase.toml"), "agents", "add", BOB]) == 0
    desk = door.app.desk()
    desk.new(NewCase(email=CARL, subject="Printer"), desk.author(BOB))
    desk.close(1000, "New fuser.", desk.author(BOB))
    with door.app.readers() as session:
        raws = session.scalars(select(OutboundMail.raw)).all()
    texts = [message_from_bytes(raw, policy=policy.default).get_body(("plain",))
             for raw in raws]
    [path] = {link for text in texts if text is not None for link in re.findall(
        r"https://help\.example\.com(/satisfaction/[^?\s]+)\?rating=good",
        text.get_content())}
    with httpx.Client(base_url=door.url, timeout=10) as client:
        rated = client.get(path, params={"rating": "good"})
        assert rated.status_code == 200, rated.text
        assert "Your rating of case 00001000 is recorded" in rated.text
        commented = client.post(path, data={"rating": "good", "comment": "Quick and kind."})
        assert commented.status_code == 200, commented.text
        forged = client.get(path[:-3] + "zzz", params={"rating": "bad"})
        assert forged.status_code == 403
    satisfaction = desk.show(1000)["satisfaction"]
    assert satisfaction["rating"] == "good", satisfaction


def readme_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.partition("\n## Web-to-Case\n")[2].partition("\n## ")[0]


class _Fields(HTMLParser):
    """The named fields of an HTML form, and the one hidden from people."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.values: dict[str, str] = {}
        self.hidden_from_people: list[str] = []
        self._hiding = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "div" and found.get("aria-hidden") == "true":
            self._hiding = True
        if tag in ("input", "textarea") and found.get("name"):
            name = str(found["name"])
            self.names.append(name)
            self.values[name] = found.get("value") or ""
            if self._hiding:
                self.hidden_from_people.append(name)

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            self._hiding = False


def test_the_readme_form_and_config_work_as_pasted(
        open_door: Callable[..., Door], tmp_path: Path) -> None:
    """The README's [web_to_case] block loads, and its form, filled in by a person (the
    honeypot left empty), is taken and sent back to its retURL."""
    section = readme_section()
    toml = section.partition("```toml\n")[2].partition("```")[0]
    settings = tomllib.loads(toml)["web_to_case"]
    (tmp_path / "check.toml").write_text(
        toml + '[[mailbox]]\naddress = "support@example.com"\n', encoding="utf-8")
    assert config.load(tmp_path / "check.toml").web_to_case.enabled
    fields = _Fields()
    fields.feed(section.partition("```html\n")[2].partition("```")[0])
    assert fields.hidden_from_people == [WebToCaseSettings().honeypot]
    assert set(FORM) | {"retURL", "files", "website"} == set(fields.names)
    door = open_door(redirect_hosts=settings["redirect_hosts"],
                     allowed_origins=settings["allowed_origins"])
    filled = {name: FORM.get(name, fields.values[name]) for name in fields.names
              if name != "files"}
    answer = door.post(filled, files=[("files", ("notes.txt", b"hello"))])
    assert (answer.status_code, answer.headers["Location"]) == (303, fields.values["retURL"])


def test_a_form_answered_303_survives_kill_9(
        tmp_path: Path, database_url: str, sink: Sink) -> None:
    """A real `mailcase serve` answers a form 303 and is killed with SIGKILL at once; the
    form was committed before the answer, so after a restart its case is there, once."""
    port = free_port()
    (tmp_path / "token-secret").write_text(secrets.token_hex(32) + "\n")
    config = write_config(
        tmp_path, database_url, sink.port,
        web_to_case={"enabled": True, "port": port, "redirect_hosts": ["www.example.com"]},
        processing={"worker_process": False})
    serve = serve_process(config, port, tmp_path / "serve.log")
    try:
        answer = httpx.post(f"http://127.0.0.1:{port}/web-to-case", timeout=10,
                            data={**FORM, "retURL": f"{SITE}/thanks"})
        os.kill(serve.pid, signal.SIGKILL)
        assert answer.status_code == 303, answer.text
    finally:
        serve.kill()
        serve.wait(10)
    engine = db.create(database_url)
    try:
        with db.reader_factory(engine)() as session:
            [row] = session.scalars(select(InboundMail)).all()
            assert (row.source, row.mail_from) == ("web", CARL)
        again = serve_process(config, port, tmp_path / "serve-again.log")
        try:
            def web_cases() -> list[str]:
                with db.reader_factory(engine)() as session:
                    return list(session.scalars(select(Case.origin)))
            assert wait_for(web_cases, timeout=30, what="the case after the restart") == ["Web"]
            wait_for(lambda: acknowledgements(sink), timeout=20, what="the acknowledgement")
        finally:
            again.send_signal(signal.SIGTERM)
            again.wait(30)
    finally:
        engine.dispose()
