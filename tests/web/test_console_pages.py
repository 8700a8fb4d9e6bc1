"""The console's pages and forms over real HTTP on both engines: the daemon serves the
console on a free port and httpx, signed in as an agent, reads the lists and a case and
posts its forms. Every action goes through the case rules (the history names the
agent), a refusal comes back as the case page with the reason and what was typed, and
what customers wrote or sent never becomes markup or script on the console's origin."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mailcase.app import App
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


def test_a_refused_action_keeps_what_was_typed(console: Console) -> None:
    """Closing without a resolution, merging into a case that does not exist, an
    unknown status: the case page again, with the reason and the typed text, and
    nothing changed."""
    number = console.case("Printer")
    empty = console.post(f"/cases/{number}/close", resolution="  ")
    assert empty.status_code == 422
    assert "say how it was resolved" in empty.text
    merge = console.post(f"/cases/{number}/merge", into="99999")
    assert merge.status_code in (404, 409, 422)
    reply = console.post(f"/cases/{number}/reply", body="   ", form="reply")
    assert reply.status_code == 422
    status = console.post(f"/cases/{number}/update", status="Exploded")
    assert status.status_code == 422
    assert "Exploded" in status.text
    assert console.shown(number)["status"] == "New"


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


def test_an_unknown_case_is_a_page_not_a_traceback(console: Console) -> None:
    missing = console.client.get("/cases/4242")
    assert missing.status_code == 404
    assert "4242" in missing.text and "Traceback" not in missing.text
    assert console.client.get("/cases/not-a-number").status_code in (404, 422)


def test_pages_are_readable_without_script_and_labelled(console: Console) -> None:
    """No page needs JavaScript (none is served), and every form control has a label."""
    number = console.case("Printer", owner=BOB)
    for path in ("/", f"/cases/{number}", "/search?q=printer"):
        page = console.client.get(path)
        assert "<script" not in page.text
        ids = set(re.findall(r'<label for="([^"]+)"', page.text))
        controls = re.findall(r'<(?:input|select|textarea)\b([^>]*)>', page.text)
        for control in controls:
            if 'type="hidden"' in control or 'type="checkbox"' in control:
                continue  # hidden fields need none; checkboxes sit inside their label
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
