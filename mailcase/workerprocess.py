"""Processing in a process of its own: the listener never waits for the processor.

Processing a mail (parsing, threading, rendering answers) costs milliseconds of Python;
in the listener's process that time competes with the SMTP sessions for the interpreter,
so a burst would make senders wait for processing they do not need. ``mailcase serve``
therefore starts ``mailcase work`` as a child at a lower CPU priority: it runs the
processor, the outbox sender and their retries; the listener (and the IMAP pollers)
wake it through a pipe after each commit. The child ends when the pipe closes — when
the listener stops or dies — after finishing the mail in hand; if the child dies, the
listener starts a new one. Mail is never handed over in the pipe, only wake-ups: the
database is the queue.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

NICENESS = 10
STOP_SECONDS = 30.0


class WorkerProcess:
    """The listener's handle on its ``mailcase work`` child."""

    RESTART_FIRST = 5.0
    RESTART_CAP = 300.0
    HEALTHY_AFTER = 60.0  # a child that lived this long resets the restart delay

    def __init__(self, config_path: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.config_path = config_path
        self.clock = clock
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._started_at = 0.0
        self._not_before = 0.0
        self._stopping = False
        self._wake_fd: int | None = None
        self._lock = threading.Lock()  # wake() runs on the loop, check() in the scheduler

    def start(self) -> None:
        """Start the child with the read end of a fresh wake-up pipe."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        command = [sys.executable, "-m", "mailcase", "-c", str(self.config_path), "work",
                   "--wake-fd", str(read_fd), "--nice", str(NICENESS)]
        try:
            self.process = subprocess.Popen(command, pass_fds=(read_fd,))  # noqa: S603 - ourselves
        finally:
            os.close(read_fd)
        with self._lock:
            self._wake_fd = write_fd
        self._started_at = self.clock()
        log.info("processing runs in process %d", self.process.pid)

    def wake(self) -> None:
        """Tell the child there is work; a full pipe means it has been told already."""
        with self._lock:
            if self._wake_fd is not None:
                with contextlib.suppress(BlockingIOError, BrokenPipeError):
                    os.write(self._wake_fd, b".")

    def check(self) -> None:
        """Start a new child if the last one died, loudly, with a growing delay between
        restarts when it keeps dying (a broken config file, a database that is down)."""
        if self._stopping or self.process is None or self.process.poll() is None:
            return
        now = self.clock()
        if self._not_before == 0.0:
            lived = now - self._started_at
            self.restarts = 0 if lived >= self.HEALTHY_AFTER else self.restarts + 1
            delay = 0.0 if self.restarts <= 1 else min(
                self.RESTART_FIRST * 2 ** (self.restarts - 2), self.RESTART_CAP)
            self._not_before = now + delay
            log.error("the processing process exited with %s; %s", self.process.returncode,
                      "starting a new one" if not delay else
                      f"starting a new one in {delay:.0f} s (it keeps failing: see its log)")
        if now < self._not_before:
            return
        self._not_before = 0.0
        self._close_pipe()
        self.start()

    def reload(self) -> None:
        """Pass a reload on: the child reads the config file again (SIGHUP)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)

    def stopping(self) -> None:
        """The daemon is stopping: a child that exits now (systemd signals the whole
        unit) is not replaced."""
        self._stopping = True

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Close the pipe (the child finishes the mail in hand and exits); kill it after
        ``timeout`` seconds."""
        self._stopping = True
        self._close_pipe()
        if self.process is None:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("the processing process did not stop within %s s; killing it", timeout)
            self.process.kill()
            self.process.wait()

    def _close_pipe(self) -> None:
        with self._lock:
            if self._wake_fd is not None:
                os.close(self._wake_fd)
                self._wake_fd = None
