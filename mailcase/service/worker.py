"""Processing in a process of its own: the listener never waits for the processor.

Processing a mail (parsing, threading, rendering answers) costs milliseconds of Python;
in the listener's process that time competes with the SMTP sessions for the interpreter,
so a burst would make senders wait for processing they do not need. ``mailcase serve``
therefore starts ``mailcase work`` as a child at a lower CPU priority: it runs the
processor, the outbox sender and their retries; the listener (and the IMAP pollers)
wake it through a pipe after each commit. The child ends when the pipe closes — when
the listener stops or dies — after finishing the mail in hand (it sits in a process
group of its own, so a Ctrl-C in the terminal is the listener's alone); if the child dies, the
listener starts a new one. Mail is never handed over in the pipe, only wake-ups: the
database is the queue.

The child does not read the config file: it gets the listener's running settings
(in a memory file), so the two never disagree — not after a reload that kept a key
for a restart, not when the file was edited and the child restarted. A reload
replaces the child with one given the new settings; the old one finishes the mail
in hand and exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mailcase.config import Settings

log = logging.getLogger(__name__)

NICENESS = 10
WAKE_PROCESSOR = b"."  # new mail is committed
WAKE_ALL = b"!"  # another process committed work: look at the outbox too
STOP_SECONDS = 30.0


class WorkerProcess:
    """The listener's handle on its ``mailcase work`` child."""

    RESTART_FIRST = 5.0
    RESTART_CAP = 300.0
    HEALTHY_AFTER = 60.0  # a child that lived this long resets the restart delay

    def __init__(self, config_path: Path, settings: Settings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config_path = config_path  # named on the child's command line, not read by it
        self.settings = settings
        self.clock = clock
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._started_at = 0.0
        self._not_before = 0.0
        self._stopping = False
        self._wake_fd: int | None = None
        self._lock = threading.Lock()  # wake() runs on the loop, check() in the scheduler

    def start(self) -> None:
        """Start the child with the read end of a fresh wake-up pipe and its settings."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        settings_fd = _settings_file(self.settings)
        command = [sys.executable, "-m", "mailcase", "-c", str(self.config_path), "work",
                   "--wake-fd", str(read_fd), "--settings-fd", str(settings_fd),
                   "--nice", str(NICENESS)]
        try:
            # A process group of its own: a Ctrl-C in the terminal signals the whole
            # foreground group, and would reach the child in the middle of its imports
            # (a KeyboardInterrupt traceback) or make it stop beside the listener. The
            # listener stops it through the pipe; systemd signals the whole unit anyway.
            self.process = subprocess.Popen(  # noqa: S603 - ourselves
                command, pass_fds=(read_fd, settings_fd), process_group=0)
        finally:
            os.close(read_fd)
            os.close(settings_fd)
        with self._lock:
            self._wake_fd = write_fd
        self._started_at = self.clock()
        log.info("processing runs in process %d", self.process.pid)

    def replace(self, settings: Settings) -> None:
        """A reload: a new child with ``settings``; the old one finishes the mail in hand
        and exits (killed after STOP_SECONDS), in the background."""
        self.settings = settings
        if self._stopping or self.process is None:
            return
        old = self.process
        self._close_pipe()
        self.start()
        threading.Thread(target=_reap, args=(old, STOP_SECONDS), daemon=True,
                         name="old processing process").start()

    def wake(self, outbox: bool = False) -> None:
        """Tell the child there is new mail to process (``WAKE_PROCESSOR``), and with
        ``outbox`` mail to send as well (``WAKE_ALL``: a commit from another process);
        a full pipe means it has been told already."""
        with self._lock:
            if self._wake_fd is not None:
                with contextlib.suppress(BlockingIOError, BrokenPipeError):
                    os.write(self._wake_fd, WAKE_ALL if outbox else WAKE_PROCESSOR)

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

    def stopping(self) -> None:
        """The daemon is stopping: a child that exits now (systemd signals the whole
        unit) is not replaced."""
        self._stopping = True

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Close the pipe (the child finishes the mail in hand and exits); kill it after
        ``timeout`` seconds."""
        self._stopping = True
        self._close_pipe()
        if self.process is not None:
            _reap(self.process, timeout)

    def _close_pipe(self) -> None:
        with self._lock:
            if self._wake_fd is not None:
                os.close(self._wake_fd)
                self._wake_fd = None


def _reap(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for a child told to stop; kill it after ``timeout`` seconds."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        log.error("the processing process %d did not stop within %s s; killing it",
                  process.pid, timeout)
        process.kill()
        process.wait()


def _settings_file(settings: Settings) -> int:
    """A memory file holding ``settings`` for the child, positioned at its start."""
    fd = os.memfd_create("mailcase-settings")
    data = memoryview(settings.model_dump_json(by_alias=True).encode("utf-8"))
    while data:
        data = data[os.write(fd, data):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def read_settings(fd: int) -> Settings:
    """The settings the listener handed its child (see _settings_file)."""
    with os.fdopen(fd, "rb") as handle:
        return Settings.model_validate_json(handle.read())
