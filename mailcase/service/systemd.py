"""How ``serve`` talks to its service manager: readiness, watchdog and passed sockets.

Under systemd (``Type=notify``) the daemon says ``READY=1`` once its listeners are
bound and the database answered, ``STOPPING=1`` when it begins to drain, and
``WATCHDOG=1`` from its event loop, so a hung loop misses the keep-alive and is
restarted. With socket activation systemd opens port 25 and passes the socket
(``LISTEN_FDS``), so the daemon never needs root. This is the whole of the protocol
(sd_notify(3), sd_listen_fds(3)); started by hand, every call here does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import MutableMapping

log = logging.getLogger(__name__)

LISTEN_FDS_START = 3  # SD_LISTEN_FDS_START: the first passed descriptor


class ServiceManager:
    """The notification socket of the service manager, if there is one."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        # An address starting with "@" is in Linux's abstract namespace.
        self.address = "\0" + address[1:] if address and address.startswith("@") else address
        self.watchdog_usec = watchdog_usec

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str]) -> ServiceManager:
        """Read (and take out of ``environ``, so child processes do not answer for us)
        NOTIFY_SOCKET and the watchdog interval meant for this process."""
        address = environ.pop("NOTIFY_SOCKET", None) or None
        usec = environ.pop("WATCHDOG_USEC", None)
        pid = environ.pop("WATCHDOG_PID", None)
        watchdog = None
        if usec and usec.isdigit() and int(usec) > 0 and (pid is None or pid == str(os.getpid())):
            watchdog = int(usec)
        return cls(address, watchdog)

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between keep-alives: half the manager's timeout, as sd_watchdog_enabled(3)
        advises; None when no watchdog is asked for."""
        return self.watchdog_usec / 2_000_000 if self.watchdog_usec else None

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=value`` lines; False (and nothing raised) when no manager listens."""
        if not self.address:
            return False
        message = "\n".join(fields).encode("utf-8")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            try:
                sock.sendto(message, self.address)
            except OSError as exc:
                log.warning("cannot notify the service manager at %r: %s",
                            self.address.lstrip("\0"), exc.strerror)
                return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={status}")

    def reloading(self, status: str) -> bool:
        return self.notify("RELOADING=1", f"STATUS={status}")

    def stopping(self, status: str) -> bool:
        return self.notify("STOPPING=1", f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")


def passed_sockets(environ: MutableMapping[str, str]) -> list[socket.socket]:
    """The listening sockets systemd passed to this process (socket activation), taken
    out of ``environ`` so a child never claims them; empty when started by hand."""
    pid = environ.pop("LISTEN_PID", None)
    count = environ.pop("LISTEN_FDS", None)
    environ.pop("LISTEN_FDNAMES", None)
    if pid != str(os.getpid()) or not count or not count.isdigit():
        return []
    sockets = []
    for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + int(count)):
        os.set_inheritable(fd, False)
        sock = socket.socket(fileno=fd)
        with contextlib.suppress(OSError):
            sock.setblocking(False)
        sockets.append(sock)
    return sockets
