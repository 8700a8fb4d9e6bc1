"""The web console in a real browser: headless Chromium (Debian's) driven by Playwright
against a real `mailcase serve` on free ports, on both engines.

An agent signs in, finds a customer's case by a word of their mail, opens it, replies
with a file, adds an internal note and closes the case; the customer's mail is then
read from the outbound Maildir, where the reply carries the file and the note is in
nothing the customer got. The customer's mail holds a ``<script>``: it is shown as text
and does not run (the test looks for what it would have done).

With MAILCASE_SCREENSHOTS set to a folder, the queue and the case are photographed
there (the README's pictures come from this test).
"""

from __future__ import annotations

import io
import mailbox
import os
import shutil
import signal
import subprocess
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from mailcase.cli import main
from mailcase.identity.tokens import load_secrets
from tests.service.test_serve import serve_process
from tests.support.mailsink import free_port
from tests.support.servers import mail, require, send, wait_for, write_config

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BOB = "bob@example.com"
PASSWORD = "correct horse battery staple"
ANN = "ann@customer.org"
SCRIPT = "<script>window.pwned = 1; document.title = 'pwned'</script>"
NOTE_SECRET = "internal-only: refund approved by finance"
OTHERS = (("Dana Lee <dana@shop.example>", "Invoice 2291 charged twice"),
          ("Omar Haddad <omar@clinic.example>", "Cannot sign in since Monday"),
          ("Lin Wu <lin@studio.example>", "Export to CSV loses accents"))


def customer_mail() -> EmailMessage:
    """A customer's mail whose text and HTML both carry a script."""
    message = EmailMessage()
    message["From"] = f"Ann Customer <{ANN}>"
    message["To"] = "support@example.com"
    message["Subject"] = "Flamingo printer jams"
    message.set_content(f"The flamingo printer jams on page two.\n{SCRIPT}\n")
    message.add_alternative(
        f"<p>The flamingo printer jams on page two.</p>{SCRIPT}"
        "<img src=x onerror=\"window.pwned = 2\">", subtype="html")
    return message


def delivered(folder: Path) -> list[EmailMessage]:
    """Every mail in the outbound Maildir so far."""
    if not (folder / "new").is_dir():
        return []
    box = mailbox.Maildir(folder, create=False)
    return [message_from_bytes(box.get_bytes(key), policy=default)  # type: ignore[misc]
            for key in box.iterkeys()]


def to_customer(messages: list[EmailMessage]) -> list[EmailMessage]:
    return [m for m in messages if ANN in str(m.get("To", ""))]


def text_of(message: EmailMessage) -> str:
    return "\n".join(part.get_content() for part in message.walk()
                     if part.get_content_type() in ("text/plain", "text/html"))


def test_an_agent_works_a_case_in_the_browser(tmp_path: Path, database_url: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    require(os.path.exists(CHROMIUM), "Chromium is not installed (apt-get install chromium)")
    smtp_port, console_port = free_port(), free_port()
    outbound, secret = tmp_path / "outbound", tmp_path / "token-secret"
    load_secrets(secret, create=True)
    config = write_config(tmp_path, database_url, None, smtp={"port": smtp_port},
                          outbound={"maildir": str(outbound)},
                          tokens={"secret_file": str(secret)},
                          console={"enabled": True, "port": console_port})
    assert main(["-c", str(config), "agents", "add", BOB, "--name", "Bob Agent"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["-c", str(config), "agents", "set-password", BOB, "--password-stdin"]) == 0
    daemon = serve_process(config, smtp_port, tmp_path / "serve.log")
    shots = os.environ.get("MAILCASE_SCREENSHOTS")
    try:
        for sender, subject in OTHERS:
            send(smtp_port, mail(sender=sender, subject=subject))
        send(smtp_port, customer_mail())
        wait_for(lambda: len(delivered(outbound)) >= 1 + len(OTHERS), timeout=30,
                 what="the acknowledgements")
        url = f"http://127.0.0.1:{console_port}"
        with playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{url}/?view=unassigned")
            assert "/login" in page.url  # not signed in yet
            page.get_by_label("Email").fill(BOB)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/?view=unassigned")
            assert page.get_by_role("link", name="Flamingo printer jams").is_visible()
            if shots:
                page.screenshot(path=str(Path(shots) / "console-queue.png"))

            page.get_by_role("searchbox").first.fill("flamingo")
            page.keyboard.press("Enter")
            page.wait_for_url("**/search?**")
            page.get_by_role("link", name="Flamingo printer jams").click()
            page.wait_for_url("**/cases/*")
            number = page.url.rsplit("/", 1)[1]
            body = page.locator(".entry").first.inner_text()
            assert "<script>" in body  # shown as the customer wrote it, as text
            assert page.evaluate("window.pwned") is None
            assert "pwned" not in page.title()

            page.get_by_label("Public reply to the customer").fill(
                "Please try the attached steps.")
            attachment = tmp_path / "steps.txt"
            attachment.write_text("1. Open the tray.\n2. Remove the flamingo.\n")
            page.locator("#reply-files").set_input_files(str(attachment))
            page.get_by_role("button", name="Send reply").click()
            page.wait_for_url("**done=reply**")
            assert page.get_by_role("status").inner_text().startswith("Your reply")
            assert page.get_by_role("link", name="steps.txt").is_visible()

            page.get_by_label("Internal note").fill(NOTE_SECRET)
            page.get_by_role("button", name="Add note").click()
            page.wait_for_url("**done=note**")
            assert page.locator(".entry.internal").filter(has_text=NOTE_SECRET).count() == 1

            page.get_by_label("Resolution").fill("The tray is clear again.")
            page.get_by_role("button", name="Close case").click()
            page.wait_for_url("**done=close**")
            assert page.get_by_role("definition").filter(has_text="Closed").count() >= 1
            if shots:
                page.evaluate("window.scrollTo(0, 0)")
                page.screenshot(path=str(Path(shots) / "console-case.png"))
            assert page.evaluate("window.pwned") is None
            browser.close()

        wait_for(lambda: len(to_customer(delivered(outbound))) >= 3, timeout=30,
                 what="the reply and the closing mail")
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            raise
    mails = to_customer(delivered(outbound))
    reply = [m for m in mails if "Please try the attached steps." in text_of(m)]
    assert len(reply) == 1
    files = [part.get_filename() for part in reply[0].iter_attachments()]
    assert files == ["steps.txt"]
    assert any("The tray is clear again." in text_of(m) for m in mails)
    assert all(NOTE_SECRET not in text_of(m) for m in mails)
    assert all(number in str(m["Subject"]) or number.lstrip("0") in str(m["Subject"])
               for m in mails)
