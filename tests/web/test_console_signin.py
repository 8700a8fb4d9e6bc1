"""Signing in to the web console over real HTTP, on both engines: the daemon serves the
console on a free port and httpx is the browser. Passwords set from the command line
sign an agent in (an HttpOnly cookie); wrong ones and unknown agents are refused alike
and counted, then refused unasked until the window passes; sessions end at logout, when
idle, when old and when their agent is deactivated; every form needs the session's
token and the console's own Origin; ``next`` never leaves the console; a trusted header
counts only from the configured proxy."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.requests import Request

from mailcase import config
from mailcase.app import App
from mailcase.cases.desk import NewCase
from mailcase.cases.passwords import Passwords
from mailcase.cases.signins import Signins
from mailcase.cases.staff import Staff
from mailcase.cli import main
from mailcase.config.console import ConsoleSettings
from mailcase.web.console.app import make_console
from mailcase.web.console.peers import client_address, from_proxy, proxied_email, safe_next
from mailcase.web.console.render import HEADERS
from tests.support.clock import Clock
from tests.support.paths import ROOT
from tests.support.servers import running_daemon

BOB, ANN = "bob@example.com", "ann@example.com"
MAILBOX_TOML = '[[mailbox]]\naddress = "support@example.com"\n'
SECRET = "correct horse battery"
CSP = ("default-src 'self'; img-src 'self' data:; frame-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def cli(config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        *args: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    capsys.readouterr()
    code = main(["-c", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


@dataclass
class Console:
    """The running console, the app behind it, and its clock."""

    app: App
    url: str
    clock: Clock
    config: Path

    def browser(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, follow_redirects=False, **kwargs)

    def sign_in(self, browser: httpx.Client, email: str = BOB, password: str = SECRET,
                next: str | None = None, **headers: str) -> httpx.Response:
        """Fill in the sign-in form as a person would: open it, then send it."""
        form = browser.get("/login", params={"next": next} if next else None)
        assert form.status_code == 200, form.text
        return browser.post("/login", headers=headers, data={
            "csrf": field(form.text, "csrf"), "next": field(form.text, "next"),
            "email": email, "password": password})


def field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no field {name} in {html}"
    return found.group(1)


@pytest.fixture
def start(make_app: Callable[..., App], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., Console]]:
    """Start the daemon with the console on a free port (keyword arguments are [console]
    keys), agent Bob with a password set through the command line."""
    with ExitStack() as stack:
        def started(**settings: Any) -> Console:
            clock = Clock()
            app = make_app(clock=clock, console={"enabled": True, "port": 0, **settings})
            config = tmp_path / "mailcase.toml"
            assert cli(config, monkeypatch, capsys, "agents", "add", BOB, "--name",
                       "Bob Agent")[0] == 0
            code, out, err = cli(config, monkeypatch, capsys, "agents", "set-password", BOB,
                                 "--password-stdin", stdin=SECRET + "\n")
            assert (code, err) == (0, ""), err
            assert "can sign in to the console" in out
            daemon = stack.enter_context(running_daemon(app))
            assert daemon.console is not None
            return Console(app, f"http://127.0.0.1:{daemon.console.port}", clock, config)
        yield started


def test_a_password_set_on_the_command_line_signs_the_agent_in(
        start: Callable[..., Console], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The right password sets an HttpOnly, SameSite=Lax session cookie (not Secure on
    plain HTTP) and leads to "/", which names the agent; pages carry the strict headers
    and the stylesheet is served by mailcase itself; agents list shows the password."""
    console = start()
    _, out, _ = cli(console.config, monkeypatch, capsys, "agents", "list", "--json")
    assert [(a["email"], a["has_password"]) for a in json.loads(out)] == [(BOB, True)]
    with console.browser() as browser:
        assert browser.get("/").headers["Location"] == "/login?next=%2F"
        answer = console.sign_in(browser)
        assert (answer.status_code, answer.headers["Location"]) == (303, "/")
        [session] = [c for c in answer.headers.get_list("set-cookie")
                     if c.startswith("mailcase_session=")]
        assert {"HttpOnly", "SameSite=Lax", "Path=/"} <= {p.strip() for p in session.split(";")}
        assert "Secure" not in session
        home = browser.get("/")
        assert home.status_code == 200
        assert "Signed in as <strong>Bob Agent</strong>" in home.text
        assert home.headers["Content-Security-Policy"] == CSP
        assert {k: home.headers[k] for k in HEADERS} == HEADERS
        css = browser.get("/static/console.css")
        assert css.status_code == 200 and ":focus-visible" in css.text


def test_wrong_passwords_and_unknown_agents_are_refused_alike(
        start: Callable[..., Console]) -> None:
    """A wrong password and an address that is no agent get the same answer and no
    session: "/" still sends the browser to sign in."""
    console = start()
    with console.browser() as browser:
        wrong = console.sign_in(browser, password="not the password")
        unknown = console.sign_in(browser, email="nobody@example.com")
        for answer in (wrong, unknown):
            assert answer.status_code == 401
            assert "That email address and password do not match" in answer.text
            assert not any(c.startswith("mailcase_session=")
                           for c in answer.headers.get_list("set-cookie"))
        assert browser.get("/").status_code == 303


def test_failed_sign_ins_are_limited_until_the_window_passes(
        start: Callable[..., Console]) -> None:
    """After five failures for one address, even the right password gets 429 with
    Retry-After, and so does another address from the same client; once the window
    (15 minutes) has passed the right password signs in."""
    console = start()
    with console.browser() as browser:
        for _ in range(5):
            assert console.sign_in(browser, password="wrong password!").status_code == 401
        refused = console.sign_in(browser)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 900
        assert "Too many failed sign-ins" in refused.text
        assert console.sign_in(browser, email=ANN).status_code == 429  # the same client
        console.clock.advance(minutes=15, seconds=1)
        assert console.sign_in(browser).status_code == 303


def test_behind_a_trusted_proxy_each_client_and_each_address_is_counted(
        start: Callable[..., Console]) -> None:
    """From a trusted proxy, X-Forwarded-For names the client: failures for one address
    from five clients stop that address, not a sixth client's other address."""
    console = start(trusted_proxies=["127.0.0.1"])
    with console.browser() as browser:
        for n in range(5):
            answer = console.sign_in(browser, password="wrong password!",
                                     **{"X-Forwarded-For": f"203.0.113.{n}"})
            assert answer.status_code == 401
        assert console.sign_in(browser, **{"X-Forwarded-For": "203.0.113.9"}).status_code == 429
        assert console.sign_in(browser, email=ANN,
                               **{"X-Forwarded-For": "203.0.113.9"}).status_code == 401


def test_logout_ends_the_session(start: Callable[..., Console]) -> None:
    """Signing out (a form with the session's token) clears the cookie and deletes the
    session: the old cookie, sent again, no longer signs anyone in."""
    console = start()
    with console.browser() as browser:
        console.sign_in(browser)
        old = browser.cookies["mailcase_session"]
        home = browser.get("/")
        out = browser.post("/logout", data={"csrf": field(home.text, "csrf")})
        assert (out.status_code, out.headers["Location"]) == (303, "/login")
        assert "mailcase_session=;" in out.headers["set-cookie"]
    with console.browser(cookies={"mailcase_session": old}) as stale:
        assert stale.get("/").headers["Location"] == "/login?next=%2F"


def test_secure_cookies_are_sent_over_https_only(start: Callable[..., Console]) -> None:
    """With secure_cookies both the sign-in form's cookie and the session's are Secure
    (the browser sends them back over HTTPS only)."""
    console = start(secure_cookies=True, trusted_header="X-Remote-User",
                    trusted_proxies=["127.0.0.1"])
    with console.browser() as browser:
        form = browser.get("/login")
        assert form.headers["set-cookie"].startswith("mailcase_login=")
        assert form.headers["set-cookie"].endswith("; Secure")
        home = browser.get("/", headers={"X-Remote-User": BOB})
        assert home.headers["set-cookie"].startswith("mailcase_session=")
        assert home.headers["set-cookie"].endswith("; Secure")


def test_each_sign_in_opens_a_new_session(start: Callable[..., Console]) -> None:
    """A sign-in sent with a session cookie ends that session and opens another: a
    session never outlives a sign-in (a cookie planted before it signs no one in)."""
    console = start()
    with console.browser() as first:
        console.sign_in(first)
        old = first.cookies["mailcase_session"]
    with console.browser() as browser:
        form = browser.get("/login").text
        browser.cookies.set("mailcase_session", old, domain="127.0.0.1")
        answer = browser.post("/login", data={"csrf": field(form, "csrf"), "next": "/",
                                              "email": BOB, "password": SECRET})
        assert answer.status_code == 303
        assert browser.cookies["mailcase_session"] != old
        assert browser.get("/").status_code == 200
    with console.browser(cookies={"mailcase_session": old}) as stale:
        assert stale.get("/").status_code == 303


def test_sessions_end_when_idle_and_when_old(start: Callable[..., Console]) -> None:
    """A session unused for session_idle ends; one used all along still ends at
    session_max after its sign-in; either way a page read goes to sign-in."""
    console = start(session_idle="1h", session_max="2h")
    with console.browser() as idle, console.browser() as busy:
        console.sign_in(idle)
        console.sign_in(busy)
        for _ in range(2):
            console.clock.advance(minutes=59)
            assert busy.get("/").status_code == 200
        assert idle.get("/?page=2").headers["Location"] == "/login?next=%2F%3Fpage%3D2"
        console.clock.advance(minutes=2)  # 2 h since sign-in, 4 minutes since last use
        assert busy.get("/").status_code == 303


def test_a_deactivated_agents_session_stops_at_once(
        start: Callable[..., Console], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`agents deactivate` ends the agent's sessions on their next request."""
    console = start()
    with console.browser() as browser:
        console.sign_in(browser)
        assert browser.get("/").status_code == 200
        assert cli(console.config, monkeypatch, capsys, "agents", "deactivate", BOB)[0] == 0
        assert browser.get("/").status_code == 303
        assert console.sign_in(browser).status_code == 401  # and no new one


def test_forms_need_the_sessions_token_and_the_consoles_origin(
        start: Callable[..., Console]) -> None:
    """A POST without the token, with a wrong one, or from another site's page is
    refused (403) and does nothing; the right token (field or header) from the console's
    own page is taken; without a session a POST is 401."""
    console = start()
    with console.browser() as anonymous:
        assert anonymous.post("/logout", data={"csrf": "x"}).status_code == 401
    with console.browser() as browser:
        console.sign_in(browser)
        token = field(browser.get("/").text, "csrf")
        for data, headers in (({}, {}), ({"csrf": token[:-1] + "?"}, {}),
                              ({"csrf": token}, {"Origin": "https://evil.example"}),
                              ({"csrf": token}, {"Origin": "null"})):
            refused = browser.post("/logout", data=data, headers=headers)
            assert refused.status_code == 403, (data, headers)
            assert refused.headers["Content-Security-Policy"] == CSP
            assert browser.get("/").status_code == 200  # still signed in: nothing done
        taken = browser.post("/logout", headers={"X-CSRF-Token": token,
                                                 "Origin": console.url})
        assert taken.status_code == 303
        assert browser.get("/").status_code == 303


def test_the_sign_in_form_needs_its_own_token(start: Callable[..., Console]) -> None:
    """A sign-in posted without the token of a form the console gave (another site
    signing the browser in as someone) is refused and opens no session, even with the
    right password; so is one from another site's page."""
    console = start()
    with console.browser() as browser:
        forged = browser.post("/login", data={"email": BOB, "password": SECRET,
                                              "csrf": "made-up", "next": "/"})
        assert forged.status_code == 403
        assert "mailcase_session" not in browser.cookies
        foreign = console.sign_in(browser, Origin="https://evil.example")
        assert foreign.status_code == 403
        assert "mailcase_session" not in browser.cookies
        stuffed = browser.post("/login", data={f"f{n}": "x" for n in range(11)})
        assert stuffed.status_code == 400 and "not the sign-in form" in stuffed.text


@pytest.mark.parametrize(("asked", "goes_to"), [
    ("/cases/00001000?tab=mail", "/cases/00001000?tab=mail"),
    ("//evil.example/x", "/"),
    ("http://evil.example/", "/"),
    ("/\\evil.example", "/"),
    ("evil.example", "/"),
])
def test_next_leads_only_to_the_console(start: Callable[..., Console], asked: str,
                                        goes_to: str) -> None:
    """After signing in the browser goes to ``next`` only when it is a path on the
    console: never to another site, however it is spelt."""
    console = start()
    with console.browser() as browser:
        assert console.sign_in(browser, next=asked).headers["Location"] == goes_to


def test_a_trusted_header_counts_only_from_the_trusted_proxy(
        start: Callable[..., Console]) -> None:
    """From 127.0.0.1 as the configured proxy, X-Remote-User signs its agent in (with a
    session cookie, so forms work as after a password) and an unknown agent gets a clear
    403; with the proxy configured as 10.9.9.9 the same header is ignored."""
    console = start(trusted_header="X-Remote-User", trusted_proxies=["127.0.0.1"])
    with console.browser() as browser:
        home = browser.get("/", headers={"X-Remote-User": BOB.upper()})
        assert home.status_code == 200 and "Bob Agent" in home.text
        assert "mailcase_session" in browser.cookies
        assert browser.get("/").status_code == 200  # the cookie alone from now on
        out = browser.post("/logout", data={"csrf": field(home.text, "csrf")})
        assert out.status_code == 303
        with console.app.sessions.begin() as session:
            Staff(session).add_agent("carl@example.com")
        switched = browser.get("/", headers={"X-Remote-User": BOB})
        bob_cookie = browser.cookies["mailcase_session"]
        assert browser.get("/", headers={"X-Remote-User": "carl@example.com"}
                           ).status_code == 200
        assert switched.status_code == 200 and browser.cookies["mailcase_session"] != bob_cookie
    with console.browser() as browser:  # Bob's session ended when Carl's began
        browser.cookies.set("mailcase_session", bob_cookie)
        assert browser.get("/", follow_redirects=False).status_code == 303
    with console.browser() as browser:
        stranger = browser.get("/", headers={"X-Remote-User": "eve@example.com"})
        assert stranger.status_code == 403
        assert "eve@example.com is not an active agent" in stranger.text


def test_a_trusted_header_from_another_peer_is_ignored(
        start: Callable[..., Console]) -> None:
    """With the proxy configured as 10.9.9.9, the header from 127.0.0.1 signs no one in,
    and a password still does."""
    console = start(trusted_header="X-Remote-User", trusted_proxies=["10.9.9.9"])
    with console.browser() as browser:
        assert browser.get("/", headers={"X-Remote-User": BOB}).status_code == 303
        assert "mailcase_session" not in browser.cookies
        assert console.sign_in(browser).status_code == 303


def test_with_passwords_off_only_the_proxy_signs_in(start: Callable[..., Console]) -> None:
    """``passwords = false``: the sign-in page says so and a posted password is refused,
    even the right one; the proxy's header still signs in."""
    console = start(passwords=False, trusted_header="X-Remote-User",
                    trusted_proxies=["10.9.9.9"])
    with console.browser() as browser:
        page = browser.get("/login")
        assert "Sign-in with a password is turned off" in page.text
        refused = browser.post("/login", data={"email": BOB, "password": SECRET,
                                               "csrf": "", "next": "/"})
        assert refused.status_code == 403
        assert "mailcase_session" not in browser.cookies


def test_the_readme_console_block_works_as_pasted(start: Callable[..., Console],
                                                  tmp_path: Path) -> None:
    """The README's [console] block loads; with its trusted header and proxy the header
    signs an agent in; its nginx block sets that header itself and passes Host on."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").partition(
        "\n## The web console\n")[2].partition("\n## ")[0]
    toml = section.partition("```toml\n")[2].partition("```")[0]
    (tmp_path / "check.toml").write_text(toml + MAILBOX_TOML, encoding="utf-8")
    settings = config.load(tmp_path / "check.toml").console
    assert settings.enabled and settings.secure_cookies
    nginx = section.partition("```\n# nginx")[2].partition("```")[0]
    assert f"proxy_pass http://{settings.host}:{settings.port};" in nginx
    assert f"proxy_set_header {settings.trusted_header} " in nginx
    assert "proxy_set_header Host $http_host;" in nginx  # with its port, as Origin has it
    console = start(trusted_header=settings.trusted_header,
                    trusted_proxies=list(settings.trusted_proxies))
    with console.browser() as browser:
        assert browser.get("/", headers={settings.trusted_header or "": BOB}).status_code == 200


def _request(peer: str, headers: dict[str, str]) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "client": (peer, 50000),
                    "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]})


def test_the_peer_check_of_the_trusted_header() -> None:
    """The header and X-Forwarded-For are believed only from an address in
    trusted_proxies (networks too); from any other peer, or a peer that is no address,
    they are ignored."""
    settings = ConsoleSettings(trusted_header="X-Remote-User",
                               trusted_proxies=("10.9.9.9", "192.0.2.0/24"))
    sent = {"X-Remote-User": " Bob@Example.com ", "X-Forwarded-For": "198.51.100.7"}
    assert proxied_email(_request("10.9.9.9", sent), settings) == BOB
    assert proxied_email(_request("192.0.2.77", sent), settings) == BOB
    assert proxied_email(_request("127.0.0.1", sent), settings) is None
    assert proxied_email(_request("10.9.9.9", {}), settings) is None
    assert client_address(_request("192.0.2.77", sent), settings) == "198.51.100.7"
    assert client_address(_request("203.0.113.5", sent), settings) == "203.0.113.5"
    assert not from_proxy("testclient", ("0.0.0.0/0",))
    assert safe_next("/\t/evil.example") == "/"


def test_the_pages_are_behind_signed_in_and_csrf_checked(make_app: Callable[..., App]) -> None:
    """The console's own pages need a session, and its forms the session's token too,
    which a script may send as the X-CSRF-Token header instead of a form field."""
    app = make_app(console={"enabled": True})
    with app.sessions.begin() as session:
        Staff(session).add_agent(BOB)
        Passwords(session).set(BOB, SECRET)
    desk = app.desk()
    number = desk.new(NewCase(email="carl@customer.org", subject="Printer"),
                      desk.author(BOB)).number
    web = make_console(lambda: app)

    async def browse() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(web),
                                     base_url="http://console") as client:
            note = f"/cases/{number}/note"
            answers = [await client.get("/"), await client.post(note, data={"body": "x"})]
            form = (await client.get("/login")).text
            await client.post("/login", data={"csrf": field(form, "csrf"), "next": "/",
                                              "email": BOB, "password": SECRET})
            token = _csrf_of(client, app)
            return [*answers, await client.get("/"),
                    await client.post(note, data={"body": "Seen."},
                                      headers={"X-CSRF-Token": token})]

    signed_out, refused, mine, noted = anyio.run(browse)
    assert signed_out.headers["location"] == "/login?next=%2F"
    assert refused.status_code == 401
    assert mine.status_code == 200 and "My open cases" in mine.text
    assert noted.status_code == 303, noted.text
    assert [c["body"] for c in desk.show(number)["comments"]] == ["Seen."]


def _csrf_of(client: httpx.AsyncClient, app: App) -> str:
    """The CSRF token of the client's session, as a page would have put it in a form."""
    secret = client.cookies["mailcase_session"]
    with app.sessions.begin() as session:
        found = Signins(session, app.clock(), app.settings.console).find(secret)
    assert found is not None
    return found.csrf


def test_set_password_mistakes_are_one_line_each(
        start: Callable[..., Console], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A short password, an unknown agent or an inactive one is refused with one line
    on stderr (exit 1), stdin that is no terminal without --password-stdin is a usage
    mistake (exit 2); --clear takes the password away, and it no longer signs in."""
    console = start()

    def set_password(*args: str, stdin: str = SECRET + "\n") -> tuple[int, str]:
        code, _, err = cli(console.config, monkeypatch, capsys, "agents", "set-password",
                           *args, stdin=stdin)
        assert err.count("\n") == 1 and "Traceback" not in err, err
        return code, err

    assert set_password(BOB, "--password-stdin", stdin="short\n") == (
        1, "mailcase: a password needs at least 12 characters\n")
    assert set_password("nobody@example.com", "--password-stdin") == (
        1, "mailcase: nobody@example.com is not an active agent (mailcase agents add EMAIL)\n")
    code, err = set_password(BOB)
    assert code == 2 and "give --password-stdin" in err
    assert cli(console.config, monkeypatch, capsys, "agents", "set-password", "--clear",
               BOB)[0] == 0
    _, out, _ = cli(console.config, monkeypatch, capsys, "agents", "list", "--json")
    assert json.loads(out)[0]["has_password"] is False
    with console.browser() as browser:
        assert console.sign_in(browser).status_code == 401
    assert cli(console.config, monkeypatch, capsys, "agents", "deactivate", BOB)[0] == 0
    assert set_password(BOB, "--password-stdin") == (
        1, "mailcase: bob@example.com is not an active agent (mailcase agents add EMAIL)\n")
