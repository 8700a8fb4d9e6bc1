"""The running daemon: the SMTP listener, the processing and outbox workers, and the scheduler.

All of it lives on one asyncio loop; database work runs in worker threads. A message
accepted over SMTP wakes the processor at once; the scheduler wakes both workers every
``processing.poll_seconds`` so retries that come due are picked up without new mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from mailcase.app import App
from mailcase.imap import IdleWatcher, ImapPoller, poll_once
from mailcase.listener import IntakeHandler, make_accept, smtp_factory

log = logging.getLogger(__name__)

INTAKE_THREADS = 4
FAILURE_PAUSE_SECONDS = 5.0
WATCHER_STOP_SECONDS = 5.0


class ListenError(Exception):
    """The SMTP listener could not bind its address (in use, or not permitted)."""


class Worker:
    """Runs one blocking ``drain`` in a thread whenever woken, one run at a time."""

    def __init__(
        self, name: str, drain: Callable[[], Counter[str]], after: Callable[[], None]
    ) -> None:
        self.name = name
        self.drain = drain
        self.after = after
        self.wanted = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self.wanted.set()

    async def run(self) -> None:
        while True:
            await self.wanted.wait()
            self.wanted.clear()
            try:
                handled = await asyncio.to_thread(self.drain)
            except Exception:
                log.exception("%s failed; trying again in %s s", self.name, FAILURE_PAUSE_SECONDS)
                await asyncio.sleep(FAILURE_PAUSE_SECONDS)
                self.wanted.set()
                continue
            if handled:
                self.after()


class Daemon:
    """Starts and stops every long-running part of mailcase."""

    def __init__(self, app: App, *, workers: bool = True) -> None:
        self.app = app
        self.workers = workers
        self.executor = ThreadPoolExecutor(INTAKE_THREADS, thread_name_prefix="intake")
        self.sender = Worker("outbox sender", app.sender.drain, lambda: None)
        self.processor = Worker("processor", app.processor.drain, self.sender.wake)
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.server: asyncio.base_events.Server | None = None
        self.stopping = threading.Event()
        self.watchers: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def port(self) -> int:
        """The port the SMTP listener is bound to (useful when configured as 0)."""
        assert self.server is not None and self.server.sockets
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        settings = self.app.settings
        if self.workers:
            self._start_workers()
        if settings.smtp.enabled:
            handler = IntakeHandler(
                settings, make_accept(self.app.intake, self.executor), self.processor.wake
            )
            try:
                self.server = await self._loop.create_server(
                    smtp_factory(settings, handler), settings.smtp.host, settings.smtp.port
                )
            except OSError as exc:
                reason = os.strerror(exc.errno) if exc.errno else str(exc)
                raise ListenError(f"cannot listen on {settings.smtp.host}:{settings.smtp.port}: "
                                  f"{reason}") from None
            log.info("SMTP listening on %s:%s", settings.smtp.host, self.port)

    def _start_workers(self) -> None:
        for worker in (self.processor, self.sender):
            worker.task = asyncio.create_task(worker.run(), name=worker.name)
            worker.wake()  # catch up on whatever was left from the last run
        self.scheduler.add_job(
            self._wake_all, "interval", seconds=self.app.settings.processing.poll_seconds,
            id="retries", coalesce=True, max_instances=1,
        )
        for mailbox in self.app.settings.mailbox:
            if mailbox.imap is not None:
                poller = ImapPoller(mailbox, self.app.intake, self.app.polls,
                                    self._wake_from_thread)
                watcher = IdleWatcher(poller, self.stopping,
                                      functools.partial(self._poll_on, poller), self.app.engine)
                thread = threading.Thread(target=watcher.run, daemon=True,
                                          name=f"imap {mailbox.address}")
                self.watchers.append(thread)
                thread.start()
        self.scheduler.start()

    def _poll_on(self, poller: ImapPoller) -> None:
        """Interval polling for a server without IDLE."""
        interval = poller.settings.poll_seconds
        self.scheduler.add_job(
            poll_once, "interval", args=[poller, self.app.engine], seconds=interval,
            id=f"imap {poller.mailbox.address}", coalesce=True, max_instances=1,
            next_run_time=datetime.now(UTC),
        )

    def _wake_from_thread(self) -> None:
        """Wake the processor from a poller's worker thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.processor.wake)

    def _wake_all(self) -> None:
        self.processor.wake()
        self.sender.wake()

    async def stop(self) -> None:
        """Stop listening, let in-flight work finish, then stop the workers."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        self.stopping.set()
        for thread in self.watchers:  # each leaves IDLE within about a second
            await asyncio.to_thread(thread.join, WATCHER_STOP_SECONDS)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for worker in (self.processor, self.sender):
            if worker.task is not None:
                worker.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.task
        self.executor.shutdown(wait=True)

    async def serve_forever(self) -> None:
        """Run until SIGTERM or SIGINT, then stop cleanly."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await self.start()
        try:
            await stop.wait()
            log.info("stopping")
        finally:
            await self.stop()
