"""A real Dovecot IMAP server for the tests and the crash soak: a throwaway config, one
user, a Maildir, a free loopback port. Started per test; missing Dovecot skips locally
and fails on CI (the fixture asks :func:`missing`). No pytest here: bench/soak.py runs
the same server by hand."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from tests.support.mailsink import free_port
from tests.support.polling import wait_for

USER, PASSWORD = "support@example.com", "imap-secret"
CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
protocols = imap
verbose_proctitle = yes
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
auth_failure_delay = 0
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
log_path = {root}/dovecot.log
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
  # Moved away so the auth process finds no penalty service: the tests' deliberate
  # failed logins must not slow every later login down by seconds.
  unix_listener anvil-auth-penalty {{
    path = anvil-auth-penalty-disabled
  }}
}}
"""


def missing() -> str | None:
    """Why no Dovecot can be started here, or None when one can."""
    if shutil.which("dovecot") is None:
        return "Dovecot is not installed (apt-get install dovecot-imapd)"
    for name in ("dovecot", "dovenull"):
        try:
            pwd.getpwnam(name)
            grp.getgrnam(name)
        except KeyError:
            return f"Dovecot's system user {name} is missing"
    return None


class Dovecot:
    """A running Dovecot; ``client()`` logs in as the support mailbox."""

    def __init__(self, root: Path, password: str = PASSWORD) -> None:
        reason = missing()
        if reason is not None:
            raise RuntimeError(reason)
        binary = shutil.which("dovecot")
        self.root, self.port = root, free_port()
        for sub in ("run", "state", "home"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        (root / "home").chmod(0o777)  # the mail user (dovecot) creates its Maildir here
        self.password_file = root / "imap-password"  # for mailcase's password_file key
        self.set_password(password)
        self.binary = str(binary)
        self.config = root / "dovecot.conf"
        self.config.write_text(CONFIG.format(root=root, port=self.port))
        self.start()

    def set_password(self, secret: str) -> None:
        """The user's password, which Dovecot also takes as its XOAUTH2 access token:
        changing it stands in for a provider expiring one token and issuing the next.
        Dovecot looks at the file at most once a second: wait until the new one works."""
        self.password = secret
        users = self.root / "users"
        existed = users.exists()
        users.write_text(f"{USER}:{{PLAIN}}{secret}\n")
        self.password_file.write_text(secret + "\n")
        self.password_file.chmod(0o600)
        if existed:
            wait_for(self._password_works, timeout=10, what="Dovecot reading the new password")

    def _password_works(self) -> bool:
        try:
            self.client().logout()
        except LoginError:
            return False
        return True

    def start(self) -> None:
        # In the foreground and a session of its own, so stop() ends all of it at once.
        self.process = subprocess.Popen([self.binary, "-F", "-c", str(self.config)],
                                        start_new_session=True)
        wait_for(self._listening, timeout=10, what="Dovecot listening")

    def _listening(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def client(self, timeout: float = 10.0) -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=timeout)
        client.login(USER, self.password)
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        client = self.client()
        try:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, raw)
        finally:
            client.logout()

    def create_folder(self, folder: str) -> None:
        client = self.client()
        try:
            client.create_folder(folder)
        finally:
            client.logout()

    def flags(self, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        client = self.client()
        try:
            client.select_folder(folder)
            # \Recent only says which session saw the mail first: not a mark.
            return {uid: tuple(f for f in data[b"FLAGS"] if f != b"\\Recent") for uid, data
                    in client.fetch(client.search(["ALL"]), ["FLAGS"]).items()}
        finally:
            client.logout()

    def children(self) -> list[tuple[int, str]]:
        """(pid, process title) of every process this Dovecot's master started."""
        result = subprocess.run(["ps", "--ppid", str(self.process.pid), "-o", "pid=,args="],
                                capture_output=True, text=True, check=False)
        return [(int(pid), title) for pid, _, title in
                (line.strip().partition(" ") for line in result.stdout.splitlines())]

    def idle_sessions(self) -> int:
        """Sessions of this server in IDLE (verbose process titles name the command)."""
        return sum("imap [" in title and "IDLE" in title for _, title in self.children())

    def stop(self) -> None:
        """Kill the server and every process it started: to its clients, the
        connection is cut (a graceful stop costs a second per test)."""
        children = [pid for pid, _ in self.children()]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for pid in children:  # those that left the process group too
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        wait_for(lambda: not self._listening(), timeout=10, what="Dovecot stopping")
