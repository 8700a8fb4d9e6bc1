"""SIGHUP: `mailcase serve` reads its config again, applies what can change while running
(here: a mailbox's name, seen in the acknowledgement the processing child sends), says
what waits for a restart, and refuses a broken file without changing anything."""

from __future__ import annotations

import mailbox
import os
import signal
from pathlib import Path

from mailcase import config
from mailcase.service.reload import plan
from tests.service.test_serve import example_config, run, serve_process
from tests.service.test_worker_process import children
from tests.support.mailsink import free_port
from tests.support.servers import mail, send, wait_for


def acknowledgements(folder: Path) -> dict[str, str]:
    """The From of every acknowledgement in the outbound Maildir, by its recipient."""
    outbound = folder / "var" / "outbound"
    if not outbound.exists():
        return {}
    return {str(m["To"]): str(m["From"]) for m in mailbox.Maildir(outbound)}


def test_sighup_applies_a_new_mailbox_name_and_names_what_needs_a_restart(
    tmp_path: Path
) -> None:
    """After SIGHUP the next acknowledgement comes from the new name; a changed port is
    reported as needing a restart and the old one keeps serving; a broken file is
    refused and mail still flows."""
    port = free_port()
    path = example_config(tmp_path, port)
    log = tmp_path / "serve.log"
    daemon = serve_process(path, port, log)
    try:
        send(port, mail(message_id="<before@customer.org>", sender="ann@customer.org"))
        wait_for(lambda: len(acknowledgements(tmp_path)) == 1, timeout=10,
                 what="the first acknowledgement")

        text = path.read_text()
        assert 'name = "Support"' in text
        path.write_text(text.replace('name = "Support"', 'name = "Helpdesk"')
                        .replace(f"port = {port}", f"port = {free_port()}"))
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload: applied" in log.read_text(), timeout=10, what="the reload")
        send(port, mail(message_id="<after@customer.org>", sender="bob@customer.org"))
        wait_for(lambda: len(acknowledgements(tmp_path)) == 2, timeout=10,
                 what="the second acknowledgement")

        path.write_text("[smtp\nthis is not TOML")
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload refused" in log.read_text(), timeout=10,
                 what="the refusal")
        send(port, mail(message_id="<still@customer.org>", sender="cy@customer.org"))
        wait_for(lambda: len(acknowledgements(tmp_path)) == 3, timeout=10,
                 what="the third acknowledgement")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    output = log.read_text()
    assert daemon.returncode == 0, output
    sent = acknowledgements(tmp_path)
    assert sent["ann@customer.org"].startswith("Support <"), sent
    assert sent["bob@customer.org"].startswith("Helpdesk <"), sent
    # The refused file changed nothing.
    assert sent["cy@customer.org"].startswith("Helpdesk <"), sent
    assert "mailbox[support@example.com].name" in output
    assert "needs a restart to take effect (running with the values it started with): " \
        "smtp.port" in output
    assert "Traceback" not in output


def test_the_plan_keeps_what_needs_a_restart(tmp_path: Path) -> None:
    """Listening addresses, the database and IMAP mailboxes keep their running values; the
    rest of the new file is taken, and the plan says which is which."""
    text = example_config(tmp_path, 2525).read_text()
    running = config.load(tmp_path / "mailcase.toml")
    changed = (text.replace("port = 2525", "port = 2600")
               .replace("max_message_size = 26214400", "max_message_size = 1000000")
               .replace('url = "sqlite:///var/mailcase.db"', 'url = "sqlite:///var/other.db"'))
    assert changed.count("2600") == 1 and "other.db" in changed
    (tmp_path / "mailcase.toml").write_text(changed)
    result = plan(running, config.load(tmp_path / "mailcase.toml"))
    assert set(result.changed) == {"smtp.port", "smtp.max_message_size", "database.url"}
    assert set(result.needs_restart) == {"smtp.port", "database.url"}
    assert result.applied == ("smtp.max_message_size",)
    assert result.effective.smtp.port == 2525
    assert result.effective.smtp.max_message_size == 1_000_000
    assert result.effective.database.url == running.database.url


def test_an_imap_change_keeps_the_running_mailboxes(tmp_path: Path) -> None:
    """A mailbox that gains IMAP polling needs a restart; until then the mailbox list
    runs as it started, and every mailbox change is reported as waiting."""
    example_config(tmp_path, 2525)
    running = config.load(tmp_path / "mailcase.toml")
    secret = tmp_path / "imap-password"
    secret.write_text("pw\n")
    with (tmp_path / "mailcase.toml").open("a") as handle:
        handle.write('\n[[mailbox]]\naddress = "billing@example.com"\n'
                     '[mailbox.imap]\nhost = "imap.example.com"\nusername = "billing"\n'
                     f'password_file = "{secret}"\n')
    result = plan(running, config.load(tmp_path / "mailcase.toml"))
    assert result.applied == ()
    assert all(key.startswith("mailbox[billing@example.com]") for key in result.needs_restart)
    assert [box.address for box in result.effective.mailbox] == ["support@example.com"]


def test_a_mailbox_without_imap_comes_and_goes_on_a_reload(tmp_path: Path) -> None:
    """Adding (or removing) a mailbox that receives by SMTP needs no restart."""
    example_config(tmp_path, 2525)
    running = config.load(tmp_path / "mailcase.toml")
    with (tmp_path / "mailcase.toml").open("a") as handle:
        handle.write('\n[[mailbox]]\naddress = "billing@example.com"\nname = "Billing"\n')
    added = config.load(tmp_path / "mailcase.toml")
    result = plan(running, added)
    assert result.needs_restart == ()
    assert "mailbox[billing@example.com].name" in result.applied
    assert [box.address for box in result.effective.mailbox] == ["support@example.com",
                                                                 "billing@example.com"]
    assert plan(added, running).needs_restart == ()


def test_the_child_keeps_the_listeners_database_after_a_reload_and_a_crash(
    tmp_path: Path
) -> None:
    """The database URL changed in the file and reloaded (kept until a restart), then the
    processing child dies: the new child still works on the listener's database, since
    it gets the listener's settings, not the file."""
    port = free_port()
    path = example_config(tmp_path, port)
    original = tmp_path / "original.toml"
    original.write_text(path.read_text())
    log = tmp_path / "serve.log"
    daemon = serve_process(path, port, log)
    try:
        path.write_text(path.read_text().replace("var/mailcase.db", "var/elsewhere.db"))
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: "needs a restart to take effect" in log.read_text(), timeout=10,
                 what="the reload")
        wait_for(lambda: log.read_text().count("processing runs in process") == 2,
                 timeout=10, what="the child replaced by the reload")
        # The child the reload replaced finishes what it holds and exits.
        [child] = wait_for(lambda: len(found := children(daemon.pid)) == 1 and found,
                           timeout=15, what="the replaced child's exit")
        os.kill(child, signal.SIGKILL)
        wait_for(lambda: log.read_text().count("processing runs in process") == 3,
                 timeout=15, what="a new child after the crash")
        send(port, mail(message_id="<after-crash@customer.org>"))
        wait_for(lambda: "00001000" in run("-c", str(original), "cases", "list").stdout,
                 timeout=10, what="the case in the listener's database")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    assert daemon.returncode == 0, log.read_text()
    assert not (tmp_path / "var" / "elsewhere.db").exists()
