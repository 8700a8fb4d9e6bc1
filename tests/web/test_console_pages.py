"""The console's pages and forms over real HTTP on both engines: the daemon serves the
console on a free port and httpx, signed in as an agent, reads the lists and a case and
posts its forms. Every action goes through the case rules (the history names the
agent), a refusal comes back as the case page with the reason and what was typed, and
what customers wrote or sent never becomes markup or script on the console's origin."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from mailcase.app import App
from mailcase.cases import searchindex
from mailcase.cases.desk import NewCase
from mailcase.cases.files import NewFile
from mailcase.cases.signins import Signins
from mailcase.cases.staff import Staff
from mailcase.web.console import queues
from tests.support.mailsink import Sink
from tests.support.servers import running_daemon, wait_for

BOB = "bob@example.com"
EVE = "eve@example.com"
CARL = "carl@customer.org"


@dataclass
class Console:
    """The running console, and a client signed in as Bob."""

    app: App
    url: str
    client: httpx.Client
    csrf: str

    def case(self, subject: str, *, owner: str | None = None, priority: str = "Medium",
             email: str = CARL, body: str = "It is broken.") -> int:
        desk = self.app.desk()
        number = desk.new(NewCase(email=email, subject=subject, body=body,
                                  priority=priority), desk.author(BOB)).number
        if owner:
            desk.update(number, status=None, priority=None, owner=owner,
                        author=desk.author(BOB))
        return number

    def post(self, path: str, *, follow: bool = True, **fields: str) -> httpx.Response:
        """A form as the case page sends it, with the session's token; the redirect
        after it followed unless ``follow`` is False."""
        return self.client.post(path, data={"csrf": self.csrf, **fields},
                                follow_redirects=follow)

    def shown(self, number: int) -> dict[str, Any]:
        return self.app.desk().show(number)


@pytest.fixture
def console(make_app: Callable[..., App]) -> Iterator[Console]:
    app = make_app(console={"enabled": True, "port": 0})
    with app.sessions.begin() as session:
        staff = Staff(session)
        bob = staff.add_agent(BOB, "Bob Agent")
        staff.add_agent(EVE, "Eve Agent")
        staff.add_queue("Billing", [EVE])
        session.flush()
        secret, signed = Signins(session, app.clock(), app.settings.console).open(bob)
    with running_daemon(app, workers=True) as daemon:
        assert daemon.console is not None
        url = f"http://127.0.0.1:{daemon.console.port}"
        with httpx.Client(base_url=url, cookies={"mailcase_session": secret},
                          headers={"Origin": url}, follow_redirects=True,
                          timeout=10) as client:
            yield Console(app, url, client, signed.csrf)


class FormReader(HTMLParser):
    """The fields one form of a page would send as the browser sends them: its inputs'
    values, each select's selected option, each textarea's text."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.inside = False
        self.fields: dict[str, str] = {}
        self.select: str | None = None
        self.textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form":  # (the page writes case numbers with their zeros)
            self.inside = re.sub(r"/0+(?=\d)", "/", found.get("action", "")) == self.action
        elif not self.inside:
            return
        elif tag == "input" and found.get("type") not in ("checkbox", "file"):
            self.fields[found["name"]] = found.get("value", "")
        elif tag == "input" and found.get("type") == "checkbox" and "checked" in found:
            self.fields[found["name"]] = found.get("value", "on")
        elif tag == "select":
            self.select = found["name"]
        elif tag == "option" and self.select and "selected" in found:
            if "value" in found:
                self.fields[self.select] = found["value"]
            else:  # its text is its value
                self.textarea = self.select
                self.fields[self.select] = ""
        elif tag == "textarea":
            self.textarea = found["name"]
            self.fields[self.textarea] = ""

    def handle_data(self, data: str) -> None:
        if self.inside and self.textarea:
            self.fields[self.textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None
        elif tag in ("textarea", "option"):
            self.textarea = None


def form_of(page: httpx.Response, action: str) -> dict[str, str]:
    """What the form posting to ``action`` sends as the page shows it."""
    reader = FormReader(action)
    reader.feed(page.text)
    assert reader.fields, f"no form posting to {action}"
    return reader.fields


def numbers_in(page: httpx.Response) -> list[int]:
    """The case numbers a list shows, in order."""
    assert page.status_code == 200, page.text
    return [int(n) for n in re.findall(r'<td><a href="/cases/(\d+)">\d+</a></td>', page.text)]


def test_each_view_lists_its_cases(console: Console) -> None:
    """Mine, unassigned, a queue's, escalated and everything hold what they say; a
    closed case is only in the lists of all cases."""
    mine = console.case("Mine", owner=BOB)
    loose = console.case("Nobody's")
    billing = console.case("Invoice", owner="queue:Billing")
    closed = console.case("Done", owner=BOB)
    console.app.desk().close(closed, "Fixed.", console.app.desk().author(BOB))
    assert numbers_in(console.client.get("/")) == [mine]
    assert numbers_in(console.client.get("/?view=unassigned")) == [loose]
    page = console.client.get("/?view=queue&queue=Billing")
    assert numbers_in(page) == [billing]
    assert numbers_in(console.client.get("/?view=escalated")) == []
    assert numbers_in(console.client.get("/?view=all")) == [closed, billing, loose, mine]
    assert console.client.get("/?view=queue").status_code == 422  # which queue?


def test_columns_sort_both_ways_and_pages_follow(console: Console,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A column heading sorts by it, a second click the other way; the page links keep
    the order, and every case is on exactly one page."""
    monkeypatch.setattr(queues, "PAGE_SIZE", 2)
    made = {console.case(f"Case {p}", owner=BOB, priority=p): p
            for p in ("Low", "High", "Medium", "High", "Low")}
    by_priority = numbers_in(console.client.get("/?sort=priority&order=desc"))
    assert [made[n] for n in by_priority] == ["High", "High"]
    first = console.client.get("/?sort=priority&order=asc")
    assert [made[n] for n in numbers_in(first)] == ["Low", "Low"]
    assert 'aria-sort="ascending"' in first.text
    seen = []
    page: httpx.Response | None = first
    while page is not None:
        seen += numbers_in(page)
        found = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        page = console.client.get(found.group(1).replace("&amp;", "&")) if found else None
    assert sorted(seen) == sorted(made)
    assert [made[n] for n in seen] == ["Low", "Low", "Medium", "High", "High"]
    assert console.client.get("/?sort=owner").status_code == 200
    assert console.client.get("/?sort=nonsense").status_code == 200  # the view's order
    # The headings: a first click on Priority sorts highest first, a second lowest.
    heading = re.compile(r'<th scope="col"[^>]*>\s*<a href="([^"]+)">Priority')
    clicked = console.client.get(heading.findall(first.text)[0].replace("&amp;", "&"))
    assert [made[n] for n in numbers_in(clicked)] == ["High", "High"]
    again = console.client.get(heading.findall(clicked.text)[0].replace("&amp;", "&"))
    assert [made[n] for n in numbers_in(again)] == ["Low", "Low"]


def test_lists_of_every_case_sort_only_by_what_is_indexed(console: Console) -> None:
    """"All cases" offers Number and Updated as sort links, not Subject; an unknown view
    is a page saying so."""
    console.case("Printer", owner=BOB)
    everything = console.client.get("/?view=all&sort=subject")
    assert 'aria-sort="descending"' in everything.text  # still by number, newest first
    assert re.search(r'<a href="[^"]+">Updated', everything.text)
    assert not re.search(r'<a href="[^"]+">Subject', everything.text)
    unknown = console.client.get("/?view=nonsense")
    assert unknown.status_code == 422 and "no view" in unknown.text


def test_search_finds_a_case_and_a_number_opens_it(console: Console) -> None:
    number = console.case("Flamingo printer", body="The flamingo jams the tray.")
    console.case("Something else")
    found = console.client.get("/search", params={"q": "flamingo"})
    assert numbers_in(found) == [number]
    snippets = re.findall(r'<small class="snippet">(.*?)</small>', found.text)
    assert snippets == ["The <mark>flamingo</mark> jams the tray."]
    direct = console.client.get("/search", params={"q": str(number)}, follow_redirects=False)
    assert direct.status_code == 303
    assert direct.headers["Location"] == f"/cases/{number}"
    assert "No case holds" in console.client.get("/search", params={"q": "zebra"}).text
    assert "only the newest" not in found.text


def test_a_limited_search_says_so(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    """A word in more texts than search reads whole: the page says only the newest were
    searched, and how to reach older cases."""
    monkeypatch.setattr(searchindex, "WHOLE", 2)
    monkeypatch.setattr(searchindex, "CANDIDATES", 2)
    for n in range(4):
        console.case(f"Printer {n}", body="The printer jams.")
    found = console.client.get("/search", params={"q": "printer"})
    assert found.status_code == 200
    assert "only the newest" in found.text and "add a rarer word" in found.text


def test_customer_markup_is_text_and_files_are_served_safely(console: Console) -> None:
    """A customer's ``<script>`` and markup arrive as escaped text; an image is shown
    inline, sandboxed; an HTML or SVG file is only ever a download."""
    number = console.case("Markup", body='<script>alert(1)</script><b onclick="x()">bold</b>')
    desk = console.app.desk()
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    desk.note(number, "Screenshots.", desk.author(BOB), files=[
        NewFile("shot.png", "image/png", png),
        NewFile("page.html", "text/html", b"<script>alert(2)</script>"),
        NewFile("logo.svg", "image/svg+xml", b"<svg onload='alert(3)'/>")])
    page = console.client.get(f"/cases/{number}")
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<b onclick" not in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    files = dict(re.findall(r'<a href="(/cases/\d+/files/\d+)" download>([^<]+)</a>', page.text))
    by_name = {name: href for href, name in files.items()}
    assert set(by_name) == {"shot.png", "page.html", "logo.svg"}
    assert f'<img src="{by_name["shot.png"]}"' in page.text
    assert f'<img src="{by_name["logo.svg"]}"' not in page.text
    image = console.client.get(by_name["shot.png"])
    assert image.content == png
    assert image.headers["Content-Disposition"].startswith("inline")
    for name in ("page.html", "logo.svg"):
        got = console.client.get(by_name[name])
        assert got.headers["Content-Disposition"].startswith("attachment"), name
        assert "sandbox" in got.headers["Content-Security-Policy"]
        assert got.headers["X-Content-Type-Options"] == "nosniff"


def test_reply_note_and_changes_go_through_the_case_rules(console: Console,
                                                          sink: Sink) -> None:
    """The forms act as the signed-in agent: a reply with a file reaches the customer, a
    note does not, status, priority and owner change, and the history names Bob."""
    number = console.case("Printer", owner=BOB)
    reply = console.client.post(
        f"/cases/{number}/reply", data={"csrf": console.csrf, "body": "Try this."},
        files={"files": ("steps.txt", b"1. Restart.", "text/plain")},
        follow_redirects=False)
    assert reply.status_code == 303, reply.text
    assert reply.headers["Location"].startswith(f"/cases/{number}?done=reply")
    assert "Your reply is on its way" in console.client.get(reply.headers["Location"]).text
    assert console.post(f"/cases/{number}/note", body="Customer is on the old model.",
                        follow=False).status_code == 303
    assert console.post(f"/cases/{number}/update", status="Working", priority="High",
                        owner="queue:Billing").status_code == 200
    case = console.shown(number)
    assert (case["status"], case["priority"], case["owner"], case["queue"]) == (
        "Working", "High", EVE, "Billing")  # the queue handed it to its member
    assert [(c["body"], c["public"], c["author"]) for c in case["comments"]] == [
        ("Try this.", True, BOB), ("Customer is on the old model.", False, BOB)]
    assert [a["filename"] for a in case["comments"][0]["attachments"]] == ["steps.txt"]
    assert {e["actor"] for e in case["events"] if e["kind"] != "created"} == {BOB}
    wait_for(lambda: any("Try this." in m.text for m in sink.messages if CARL in m.rcpt_tos),
             timeout=20, what="the reply to the customer")
    assert all("old model" not in m.text for m in sink.messages if CARL in m.rcpt_tos)


def test_saving_the_change_form_changes_only_what_was_changed(console: Console,
                                                              sink: Sink) -> None:
    """The change form sent as the page renders it, with only the priority changed:
    the queue keeps the case, nobody is alerted of an assignment again, and the history
    has the one change. On a closed case the priority can still be changed."""
    number = console.case("Invoice", owner="queue:Billing")
    before = console.shown(number)
    wait_for(lambda: any(EVE in m.rcpt_tos for m in sink.messages), timeout=20,
             what="the queue member's alert")
    alerts = len([m for m in sink.messages if EVE in m.rcpt_tos])
    form = form_of(console.client.get(f"/cases/{number}"), f"/cases/{number}/update")
    assert (form["status"], form["priority"], form["owner"]) == ("New", "Medium", EVE)
    assert console.post(f"/cases/{number}/update", **{**form, "priority": "High"}
                        ).status_code == 200
    after = console.shown(number)
    assert (after["priority"], after["owner"], after["queue"]) == ("High", EVE, "Billing")
    assert len(after["events"]) == len(before["events"]) + 1
    unchanged = console.post(f"/cases/{number}/update", **form_of(
        console.client.get(f"/cases/{number}"), f"/cases/{number}/update"))
    assert unchanged.status_code == 422 and "nothing was changed" in unchanged.text
    console.app.desk().close(number, "Paid.", console.app.desk().author(BOB))
    closed = form_of(console.client.get(f"/cases/{number}"), f"/cases/{number}/update")
    assert closed["status"] == "Closed"
    assert console.post(f"/cases/{number}/update", **{**closed, "priority": "Low"}
                        ).status_code == 200
    assert console.shown(number)["priority"] == "Low"
    wait_for(lambda: any("Paid." in m.text for m in sink.messages if CARL in m.rcpt_tos),
             timeout=20, what="the resolution")
    assert len([m for m in sink.messages if EVE in m.rcpt_tos]) == alerts  # no new alert


def test_the_reply_form_offers_the_mailbox_s_hold(make_app: Callable[..., App]) -> None:
    """With hold_on_reply the box comes ticked, and unticked it is a reply that does not
    hold the case; without it the box comes clear."""
    app = make_app(console={"enabled": True, "port": 0},
                   mailbox={"address": "support@example.com", "hold_on_reply": True})
    with app.sessions.begin() as session:
        bob = Staff(session).add_agent(BOB)
        session.flush()
        secret, _ = Signins(session, app.clock(), app.settings.console).open(bob)
    desk = app.desk()
    number = desk.new(NewCase(email=CARL, subject="Printer"), desk.author(BOB)).number
    with running_daemon(app) as daemon:
        assert daemon.console is not None
        url = f"http://127.0.0.1:{daemon.console.port}"
        with httpx.Client(base_url=url, cookies={"mailcase_session": secret},
                          follow_redirects=True, timeout=10) as client:
            form = form_of(client.get(f"/cases/{number}"), f"/cases/{number}/reply")
            assert form.get("hold") == "1"
            del form["hold"]  # the agent unticks it
            sent = client.post(f"/cases/{number}/reply", data={**form, "body": "Done."})
            assert sent.status_code == 200
    assert desk.show(number)["status"] != "On Hold"


def test_a_refused_action_keeps_what_was_typed(console: Console) -> None:
    """Closing without a resolution, merging into a case that does not exist, an
    unknown status: the case page again, with the reason and the typed text, and
    nothing changed."""
    number = console.case("Printer")
    empty = console.post(f"/cases/{number}/close", resolution="  ")
    assert empty.status_code == 422
    assert "say how it was resolved" in empty.text
    merge = console.post(f"/cases/{number}/merge", into="99999")
    assert merge.status_code == 422
    assert "there is no case 00099999 to merge into" in merge.text
    assert form_of(merge, f"/cases/{number}/merge")["into"] == "99999"
    collaborator = console.post(f"/cases/{number}/collaborators/add",
                                email="mallory@elsewhere.net", name="Mallory")
    assert collaborator.status_code == 409
    kept = form_of(collaborator, f"/cases/{number}/collaborators/add")
    assert (kept["email"], kept["name"]) == ("mallory@elsewhere.net", "Mallory")
    status = console.post(f"/cases/{number}/update", status="Exploded")
    assert status.status_code == 422
    assert "unknown status &#39;Exploded&#39;" in status.text
    assert console.shown(number)["status"] == "New"
    assert console.shown(number)["collaborators"] == []


def test_close_reopen_merge_and_collaborators(console: Console, sink: Sink) -> None:
    number = console.case("Printer", owner=BOB)
    other = console.case("Printer again", owner=BOB)
    closed = console.post(f"/cases/{number}/close", resolution="New fuser.", follow=False)
    assert closed.status_code == 303
    assert console.shown(number)["is_closed"]
    assert console.post(f"/cases/{number}/reopen").status_code == 200
    assert not console.shown(number)["is_closed"]
    added = console.post(f"/cases/{number}/collaborators/add", email="dana@customer.org",
                         name="Dana")
    assert added.status_code == 200
    assert [c["email"] for c in console.shown(number)["collaborators"]] == [
        "dana@customer.org"]
    refused = console.post(f"/cases/{number}/collaborators/add", email="mallory@elsewhere.net")
    assert refused.status_code == 409  # another domain: the mailbox's policy says no
    assert console.post(f"/cases/{number}/collaborators/remove",
                        email="dana@customer.org").status_code == 200
    assert console.shown(number)["collaborators"] == []
    merged = console.post(f"/cases/{other}/merge", into=str(number), follow=False)
    assert merged.status_code == 303
    assert merged.headers["Location"].startswith(f"/cases/{number}?done=merge")
    assert console.shown(other)["merged_into"] == f"{number:08d}"


def test_forms_need_the_session_and_its_token(console: Console) -> None:
    """Without the session's CSRF token a form is refused and nothing changes; without a
    session a page sends the browser to sign in."""
    number = console.case("Printer")
    forged = console.client.post(f"/cases/{number}/close", data={"resolution": "x"})
    assert forged.status_code == 403
    assert not console.shown(number)["is_closed"]
    with httpx.Client(base_url=console.url, timeout=10) as stranger:
        page = stranger.get(f"/cases/{number}", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["Location"].startswith("/login")
        assert stranger.get(f"/cases/{number}/files/1",
                            follow_redirects=False).status_code == 303


def test_odd_requests_get_console_pages_not_tracebacks(console: Console) -> None:
    """An unknown case, bad parameters, an id past any table's, a search of digits that
    are no case: each a console page (its headers included) with the right status."""
    number = console.case("Printer")
    missing = console.client.get("/cases/4242")
    assert missing.status_code == 404
    assert "there is no case 00004242" in missing.text
    for path, status in (("/cases/not-a-number", 422), ("/?page=0", 422),
                         ("/?page=abc", 422), ("/search?q=x&open=maybe", 422),
                         (f"/cases/{number}/files/abc", 422),
                         (f"/cases/{number}/files/99999999999999999999999", 422),
                         ("/nope", 404)):
        answer = console.client.get(path)
        assert answer.status_code == status, (path, answer.text)
        assert answer.headers["content-type"].startswith("text/html"), path
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"], path
    for query in ("²", "2024"):
        found = console.client.get("/search", params={"q": query})
        assert found.status_code == 200, query
        assert "<h1>Search</h1>" in found.text
    overlong = console.client.get("/search", params={"q": "9" * 4400})
    assert overlong.status_code == 422 and "Cannot do that" in overlong.text


def test_pages_are_readable_without_script_and_labelled(console: Console) -> None:
    """No page needs JavaScript (none is served), and every form control has a label."""
    number = console.case("Printer", owner=BOB)
    for path in ("/", f"/cases/{number}", "/search?q=printer"):
        page = console.client.get(path)
        assert "<script" not in page.text
        ids = set(re.findall(r'<label for="([^"]+)"', page.text))
        controls = re.findall(r'<(?:input|select|textarea)\b([^>]*)>', page.text)
        for control in controls:
            if 'type="hidden"' in control:
                continue  # hidden fields need none
            if 'type="checkbox"' in control:  # inside its label
                assert re.search(r'<label[^>]*><input[^>]*type="checkbox"' +
                                 re.escape(control.split('type="checkbox"')[1]), page.text)
                continue
            found = re.search(r'id="([^"]+)"', control)
            assert (found and found.group(1) in ids) or "aria-label" in control, (path, control)


@pytest.mark.parametrize(("snippet", "parts"), [
    ("The [flamingo] jams", [("The ", False), ("flamingo", True), (" jams", False)]),
    ("[a][b]", [("a", True), ("b", True)]),
    ("no marks", [("no marks", False)]),
    ("a lone [bracket", [("a lone [bracket", False)]),
    ("", []),
])
def test_a_snippet_is_cut_into_marked_words(snippet: str,
                                            parts: list[tuple[str, bool]]) -> None:
    assert queues.marked(snippet) == parts
