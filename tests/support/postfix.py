"""A private Postfix for the tests: its own config folder, queue, data folder, log file
and loopback port, started with ``postfix -c`` beside (and unseen by) any system
Postfix. Postfix's master starts as root and hands the work to the ``postfix`` user, so
this needs root and the Debian package; :func:`missing` says why not, and the fixture
skips locally or fails on CI as it does for Dovecot."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

from tests.support.mailsink import free_port
from tests.support.polling import wait_for

# What a stock main.cf would hold, made private: paths, loopback only, no DNS (mail
# goes only where the transport table sends it), no local delivery.
BASE_MAIN_CF = """\
compatibility_level = 3.6
myhostname = mx.example.com
mydestination = localhost
queue_directory = {root}/queue
data_directory = {root}/data
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
alias_maps =
alias_database =
"""

# Postfix's services without chroot (a chroot would need copies of /etc files), the
# public listener on a free loopback port instead of 25.
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
smtp      unix  - - n -  - smtp
relay     unix  - - n -  - smtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
lmtp      unix  - - n -  - lmtp
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def missing() -> str | None:
    """Why no private Postfix can be started here, or None when one can."""
    if shutil.which("postfix") is None:
        return "Postfix is not installed (apt-get install postfix)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root (its master starts as root)"
    try:
        pwd.getpwnam("postfix")
        grp.getgrnam("postdrop")
    except KeyError:
        return "Postfix's system user postfix or group postdrop is missing"
    return None


class Postfix:
    """A running private Postfix. ``main_cf`` is added to the private base; ``tables``
    are lookup tables (file name: text), each compiled with postmap."""

    def __init__(self, root: Path, main_cf: str, tables: dict[str, str]) -> None:
        reason = missing()
        if reason is not None:
            raise RuntimeError(reason)
        self.root, self.port = root, free_port()
        self.etc = root / "etc"
        for sub in ("etc", "queue", "data"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        shutil.chown(root / "data", user="postfix")
        (self.etc / "main.cf").write_text(BASE_MAIN_CF.format(root=root) + main_cf)
        (self.etc / "master.cf").write_text(MASTER_CF.format(port=self.port))
        for name, text in tables.items():
            (self.etc / name).write_text(text)
            self.command("postmap", str(self.etc / name))
        self.command("postfix", "check")
        self.command("postfix", "start")
        wait_for(self._listening, timeout=20, what="Postfix listening")

    def command(self, *argv: str) -> str:
        """Run a Postfix command on this instance (``-c`` its config folder)."""
        done = subprocess.run([argv[0], "-c", str(self.etc), *argv[1:]], capture_output=True,
                              text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}\n{self.log()}")
        return done.stdout

    def postconf(self, setting: str) -> None:
        """Change one main.cf setting and reload."""
        self.command("postconf", "-e", setting)
        self.command("postfix", "reload")

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else "(no maillog)"

    def _listening(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        self.command("postfix", "stop")
        wait_for(lambda: not self._listening(), timeout=20, what="Postfix stopping")
