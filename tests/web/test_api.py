"""The HTTP API over real HTTP: the daemon serves it on a free port and httpx calls it,
on both engines. Keys are refused or admitted by scope; every route changes cases
through the case rules (the history names the key, and the agent acting through it);
pages stay stable while cases arrive; mistakes get the right status and one sentence."""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailcase.app import App
from mailcase.cases.apikeys import ApiKeys
from mailcase.cli import main
from mailcase.web.server import HttpServer
from tests.support.mailsink import Sink
from tests.support.servers import running_daemon, wait_for

BOB = "bob@example.com"
CARL = "carl@customer.org"


@dataclass
class Api:
    """The running API: a client per key, and the app behind it."""

    app: App
    url: str
    keys: dict[str, str]
    server: HttpServer

    def client(self, key: str | None = "writer") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=10)


@pytest.fixture
def api(make_app: Callable[..., App], tmp_path: Path) -> Iterator[Api]:
    app = make_app(api={"enabled": True, "port": 0})
    assert main(["-c", str(tmp_path / "mailcase.toml"), "agents", "add", BOB]) == 0
    with app.sessions.begin() as session:
        keys = {name: ApiKeys(session, app.clock()).create(name, scope).text
                for name, scope in (("reader", "read"), ("writer", "write"))}
    with running_daemon(app, workers=True) as daemon:
        assert daemon.api is not None
        yield Api(app, f"http://127.0.0.1:{daemon.api.port}", keys, daemon.api)


def test_answers_leave_at_once_on_a_kept_alive_connection(api: Api) -> None:
    """Every connection the API holds sends without Nagle's delay (TCP_NODELAY): without
    it, each answer after the first on a kept-alive connection waited about 40 ms for
    the client's delayed ACK of its headers before its body left."""
    with api.client("reader") as reader:
        for _ in range(3):
            assert reader.get("/cases").status_code == 200
        assert api.server.server is not None
        held = list(api.server.server.server_state.connections)
        assert held, "the kept-alive connection is not open on the server"
        for connection in held:
            sock = connection.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def opened(client: httpx.Client, **fields: Any) -> str:
    body = {"email": CARL, "subject": "Printer on fire", "description": "Smoke.", **fields}
    answer = client.post("/cases", json=body)
    assert answer.status_code == 201, answer.text
    assert answer.headers["Location"] == f"/api/v1/cases/{answer.json()['number']}"
    return str(answer.json()["number"])


def test_keys_are_checked_and_scopes_enforced(api: Api) -> None:
    """No key, a wrong key or a revoked one is 401 with a Bearer challenge; a read key
    reads but gets 403 on a write; the OpenAPI document is public."""
    with httpx.Client(base_url=f"{api.url}/api/v1") as anonymous:
        refused = anonymous.get("/cases")
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = anonymous.get("/cases", headers={"Authorization": "Bearer mck_nope"})
        assert wrong.status_code == 401
        spec = anonymous.get("/openapi.json").json()
        assert {"/api/v1/cases", "/api/v1/cases/{number}"} <= set(spec["paths"])
    with api.client("reader") as reader:
        assert reader.get("/cases").status_code == 200
        forbidden = reader.post("/cases", json={"email": CARL, "subject": "x"})
        assert forbidden.status_code == 403
        assert "needs write" in forbidden.json()["detail"]
    with api.app.sessions.begin() as session:
        ApiKeys(session, api.app.clock()).revoke("reader")
    with api.client("reader") as reader:
        assert reader.get("/cases").status_code == 401


def test_a_case_opened_answered_and_closed_through_the_api(api: Api, sink: Sink) -> None:
    """A case opened by a program (origin API) acknowledges its contact; a public reply
    reaches the customer and an internal note does not; the close mails the
    resolution; the history names the key and the agent acting through it."""
    with api.client() as client:
        number = opened(client, notify_contact=True)
        case = client.get(f"/cases/{number}").json()
        assert (case["origin"], case["contact"], case["status"]) == ("API", CARL, "New")
        assert client.post(f"/cases/{number}/comments",
                           json={"body": "We are on it.", "agent": BOB}).status_code == 201
        assert client.post(f"/cases/{number}/comments",
                           json={"body": "Fuser again.", "public": False,
                                 "agent": BOB}).status_code == 201
        closed = client.post(f"/cases/{number}/close", json={"resolution": "New fuser."})
        assert closed.status_code == 200, closed.text
        case = client.get(f"/cases/{number}").json()
    assert case["is_closed"] and case["resolution"] == "New fuser."
    assert [(c["body"], c["public"]) for c in case["comments"]] == [
        ("We are on it.", True), ("Fuser again.", False)]
    actors = {(e["kind"], e["actor"]) for e in case["events"]}
    assert ("created", "api:writer") in actors
    assert ("comment", f"{BOB} (api:writer)") in actors
    assert ("closed", "api:writer") in actors
    wait_for(lambda: len([m for m in sink.messages if CARL in m.rcpt_tos]) >= 3, timeout=20,
             what="the acknowledgement, the reply and the resolution")
    to_customer = [m for m in sink.messages if CARL in m.rcpt_tos]
    assert len(to_customer) == 3
    assert all("Fuser again." not in m.text for m in to_customer)
    assert any("We are on it." in m.text for m in to_customer)


def test_changes_mistakes_and_their_status_codes(api: Api) -> None:
    """PATCH changes status, priority and owner; an unknown case is 404, a value the
    rules cannot take 422, a change they refuse 409 — each with one sentence."""
    with api.client() as client:
        number = opened(client)
        changed = client.patch(f"/cases/{number}", json={
            "status": "Working", "priority": "high", "owner": BOB})
        assert changed.status_code == 200, changed.text
        assert (changed.json()["status"], changed.json()["priority"],
                changed.json()["owner"]) == ("Working", "High", BOB)
        missing = client.get("/cases/99999999")
        assert (missing.status_code, missing.json()["detail"]) == (
            404, "there is no case 99999999")
        bad = client.patch(f"/cases/{number}", json={"status": "Sleeping"})
        assert bad.status_code == 422 and "unknown status" in bad.json()["detail"]
        assert client.post(f"/cases/{number}/close", json={"resolution": "Done"}
                           ).status_code == 200
        refused = client.patch(f"/cases/{number}", json={"status": "Working"})
        assert refused.status_code == 409 and "reopen it first" in refused.json()["detail"]
        stranger = client.post(f"/cases/{number}/comments",
                               json={"body": "x", "agent": "eve@evil.example"})
        assert stranger.status_code == 422
        assert "not an active agent" in stranger.json()["detail"]
        reopened = client.post(f"/cases/{number}/reopen", json={})
        assert reopened.json()["status"] == "Working"


def test_collaborators_by_the_api_follow_the_mailbox_policy(api: Api) -> None:
    """Collaborators are added under the mailbox's eligibility policy and removed; one
    from another domain is refused (409)."""
    with api.client() as client:
        number = opened(client)
        added = client.post(f"/cases/{number}/collaborators",
                            json={"email": "dora@customer.org", "name": "Dora"})
        assert (added.status_code, added.json()) == (201, {"added": True})
        outsider = client.post(f"/cases/{number}/collaborators",
                               json={"email": "eve@elsewhere.example"})
        assert outsider.status_code == 409
        assert client.get(f"/cases/{number}").json()["collaborators"] == [
            {"email": "dora@customer.org", "name": "Dora"}]
        assert client.delete(f"/cases/{number}/collaborators/dora@customer.org"
                             ).status_code == 204
        assert client.get(f"/cases/{number}").json()["collaborators"] == []


def test_pages_stay_stable_while_cases_arrive(api: Api) -> None:
    """Walking the list by cursor gives every case that was there exactly once, though
    new cases arrive between pages; filters narrow it; a forged cursor is 422."""
    with api.client() as client:
        first = [opened(client, subject=f"Case {n}") for n in range(7)]
        page = client.get("/cases", params={"limit": 3}).json()
        seen = [c["number"] for c in page["cases"]]
        for _ in range(2):
            opened(client, subject="Arrived meanwhile")
        while page["next_cursor"] is not None:
            page = client.get("/cases", params={"limit": 3,
                                                "cursor": page["next_cursor"]}).json()
            seen += [c["number"] for c in page["cases"]]
        assert seen == sorted(first, reverse=True)
        mine = client.get("/cases", params={"contact": CARL, "status": "New",
                                            "unassigned": True}).json()["cases"]
        assert len(mine) == 9
        assert client.get("/cases", params={"cursor": "nonsense"}).status_code == 422
        assert client.get("/cases", params={"status": "Sleeping"}).status_code == 422
        assert client.get("/cases", params={"limit": 0}).status_code == 422


def test_files_go_in_with_a_reply_and_come_out_as_they_were(api: Api, sink: Sink) -> None:
    """A reply's base64 file is stored, listed and mailed; it downloads byte-identical as
    an attachment (never inline); a file of another case or an unknown mail is 404; an
    accepted mail's raw .eml downloads as stored; bad base64 is 422."""
    content = bytes(range(256)) * 40
    raw = (b"From: carl@customer.org\r\nTo: support@example.com\r\nSubject: Log\r\n"
           b"Message-ID: <log@customer.org>\r\n\r\nSee the log.\r\n")
    api.app.intake.accept(raw, mail_from=CARL, rcpt_to=["support@example.com"],
                          source="test")
    api.app.processor.drain()
    with api.client() as client:
        other = opened(client)
        answer = client.post("/cases/00001000/comments", json={
            "body": "The fixed driver.", "files": [{
                "filename": "<script>driver.bin", "content_base64":
                    base64.b64encode(content).decode()}]})
        assert answer.status_code == 201, answer.text
        [comment] = client.get("/cases/00001000").json()["comments"]
        [listed] = comment["attachments"]
        got = client.get(f"/cases/00001000/attachments/{listed['id']}")
        assert got.status_code == 200 and got.content == content
        assert got.headers["Content-Disposition"].startswith("attachment;")
        assert got.headers["X-Content-Type-Options"] == "nosniff"
        assert client.get(f"/cases/{other}/attachments/{listed['id']}").status_code == 404
        assert client.get("/inbound/1/raw").content == raw
        assert client.get("/inbound/999/raw").status_code == 404
        for past_any_id in (f"/cases/{other}/attachments/{2**31}", f"/inbound/{10**23}/raw"):
            assert client.get(past_any_id).status_code == 422, past_any_id
        bad = client.post("/cases/00001000/comments", json={
            "body": "x", "files": [{"filename": "a", "content_base64": "%%%"}]})
        assert bad.status_code == 422
    wait_for(lambda: any(m.message.get_content_maintype() == "multipart"
                         and "driver.bin" in str(m.message) for m in sink.messages),
             timeout=20, what="the reply with its file at the relay")


def test_search_finds_a_word_of_a_comment(api: Api) -> None:
    """GET /search finds a case by a word of a later comment, with where it matched; an
    empty query is 422."""
    with api.client() as client:
        number = opened(client)
        opened(client, subject="Unrelated")
        assert client.post(f"/cases/{number}/comments",
                           json={"body": "The flux capacitor overheated."}).status_code == 201
        found = client.get("/search", params={"q": "capacitor"}).json()
        assert [c["number"] for c in found["cases"]] == [number]
        assert "comment" in found["cases"][0]["matched"]
        assert (found["next_cursor"], found["limited"]) == (None, False)
        assert client.get("/search", params={"q": "  "}).status_code == 422


def test_clone_and_merge_through_the_api(api: Api) -> None:
    """A clone is a new case with the source's contact (201 and its Location); a merge
    closes the source into the target, whose history gets its comment; merging into
    itself is refused (409)."""
    with api.client() as client:
        source = opened(client, subject="Printer")
        cloned = client.post(f"/cases/{source}/clone", json={"subject": "Printer, again"})
        assert cloned.status_code == 201, cloned.text
        copy = cloned.json()["number"]
        assert cloned.headers["Location"] == f"/api/v1/cases/{copy}"
        assert client.get(f"/cases/{copy}").json()["contact"] == CARL
        assert client.post(f"/cases/{copy}/comments", json={"body": "Same fuser."}
                           ).status_code == 201
        merged = client.post(f"/cases/{copy}/merge", json={"into": source})
        assert merged.status_code == 200, merged.text
        assert merged.json()["into"] == source and merged.json()["comments"] == 1
        assert client.get(f"/cases/{copy}").json()["merged_into"] == source
        assert "Same fuser." in [c["body"] for c in
                                 client.get(f"/cases/{source}").json()["comments"]]
        assert client.post(f"/cases/{source}/merge", json={"into": source}
                           ).status_code == 409
