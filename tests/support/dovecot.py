"""A real Dovecot IMAP server for the tests: a throwaway config, one user, a Maildir, a
free loopback port. Started per test; missing Dovecot skips locally and fails on CI."""

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

from tests.support.mailsink import free_port
from tests.support.servers import require, wait_for

USER, PASSWORD = "support@example.com", "imap-secret"
CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
protocols = imap
verbose_proctitle = yes
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
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
}}
"""


class Dovecot:
    """A running Dovecot; ``client()`` logs in as the support mailbox."""

    def __init__(self, root: Path) -> None:
        binary = shutil.which("dovecot")
        require(binary is not None, "Dovecot is not installed (apt-get install dovecot-imapd)")
        for name in ("dovecot", "dovenull"):
            try:
                pwd.getpwnam(name)
                grp.getgrnam(name)
            except KeyError:
                require(False, f"Dovecot's system user {name} is missing")
        self.root, self.port = root, free_port()
        for sub in ("run", "state", "home"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        (root / "home").chmod(0o777)  # the mail user (dovecot) creates its Maildir here
        (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        self.binary = str(binary)
        self.config = root / "dovecot.conf"
        self.config.write_text(CONFIG.format(root=root, port=self.port))
        self.start()

    def start(self) -> None:
        subprocess.run([self.binary, "-c", str(self.config)], check=True, timeout=30)
        wait_for(self._listening, timeout=10, what="Dovecot listening")

    def _listening(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def client(self) -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        client.login(USER, PASSWORD)
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        client = self.client()
        try:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, raw)
        finally:
            client.logout()

    def flags(self, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        client = self.client()
        try:
            client.select_folder(folder)
            return {uid: data[b"FLAGS"] for uid, data in
                    client.fetch(client.search(["ALL"]), ["FLAGS"]).items()}
        finally:
            client.logout()

    def stop(self) -> None:
        pid_file = self.root / "run" / "master.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().strip())
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not self._listening(), timeout=10, what="Dovecot stopping")
