"""The running daemon: the SMTP listener, the processing and outbox workers, and the scheduler.

All of it lives on one asyncio loop; database work runs in worker threads, and SMTP
mail is committed by the group-commit writer (several sessions' mail per transaction,
each answered after it). A message accepted over SMTP wakes the processor at once —
in this process, or in the processing child ``mailcase serve`` starts (see
worker); a commit from another process (the command line) rings the doorbell (see
store.doorbell); the scheduler wakes both workers every ``processing.poll_seconds`` so
retries that come due are picked up without new mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from mailcase import config, logs
from mailcase.app import App
from mailcase.config import ConfigError
from mailcase.identity.tokens import SecretError
from mailcase.intake.groupcommit import GroupCommit
from mailcase.intake.imap import IdleWatcher, ImapPoller, poll_once
from mailcase.intake.listener import IntakeHandler, ListenerFactory
from mailcase.intake.sessions import Sessions
from mailcase.intake.smtpauth import AuthFileError
from mailcase.monitoring.endpoint import Monitor
from mailcase.outbound.templates import TemplateProblem
from mailcase.service import preflight, reload
from mailcase.service.systemd import ServiceManager
from mailcase.service.worker import WAKE_ALL, WorkerProcess
from mailcase.store.doorbell import Listening
from mailcase.web.api import make_api
from mailcase.web.console.app import make_console
from mailcase.web.server import HttpServer
from mailcase.web.webtocase import make_web_to_case

log = logging.getLogger(__name__)

FAILURE_PAUSE_SECONDS = 5.0
WATCHER_STOP_SECONDS = 5.0
CHILD_CHECK_SECONDS = 2.0
DRAIN_POLL_SECONDS = 0.05


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _address(name: object) -> str:
    """host:port of a socket name ([host]:port for IPv6)."""
    if isinstance(name, tuple):
        host, port = name[0], name[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(name)


class ListenError(Exception):
    """The SMTP listener could not bind its address (in use, or not permitted)."""


def _serving(start: Callable[[], None], what: str, host: str, port: int) -> None:
    """Start a server that binds ``host:port``; ListenError saying why when it cannot."""
    try:
        start()
    except OSError as exc:
        raise ListenError(f"cannot serve {what} on {host}:{port}: {_reason(exc)}") from None


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
    """Starts and stops every long-running part of mailcase.

    ``listen``: the SMTP listener, and the IMAP pollers when mail is processed at all.
    ``workers``: the processor and the outbox sender in this process. ``worker_process``:
    instead, they run in a child (see service.worker) that this daemon wakes and keeps
    alive. ``mailcase serve`` listens and has a child; the child, ``mailcase work``, is
    a Daemon with workers and no listener.
    """

    def __init__(self, app: App, *, workers: bool = True, listen: bool = True,
                 worker_process: WorkerProcess | None = None,
                 manager: ServiceManager | None = None,
                 sockets: Sequence[socket.socket] = (),
                 config_path: Path | None = None) -> None:
        assert not (workers and worker_process), "processing runs here or in the child"
        self.app = app
        self.config_path = config_path  # read again on SIGHUP
        self.manager = manager or ServiceManager(None)
        self.sockets = list(sockets)  # passed by systemd (socket activation), if any
        self.workers = workers
        self.listen = listen
        self.remote = worker_process
        self.group_commit: GroupCommit | None = None
        self.stopping = threading.Event()
        # Both drains look at ``stopping`` between mails: a stop finishes the mail in
        # hand, not the backlog.
        # Through self.app each time: a reload swaps in new parts between drains.
        self.sender = Worker("outbox sender",
                             lambda: self.app.sender.drain(self.stopping.is_set),
                             lambda: None)
        self.webhooks = Worker("webhook sender",
                               lambda: self.app.webhook_sender.drain(self.stopping.is_set),
                               lambda: None)
        self.processor = Worker("processor",
                                lambda: self.app.processor.drain(self.stopping.is_set),
                                self._wake_senders)
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.servers: list[asyncio.base_events.Server] = []
        self.sessions = Sessions()
        self.factory: ListenerFactory | None = None
        self.monitor: Monitor | None = None
        self.api: HttpServer | None = None
        self.web_to_case: HttpServer | None = None
        self.console: HttpServer | None = None
        self.watchers: list[threading.Thread] = []
        self.doorbell: Listening | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def port(self) -> int:
        """The port the SMTP listener is bound to (useful when configured as 0)."""
        assert self.servers and self.servers[0].sockets
        return int(self.servers[0].sockets[0].getsockname()[1])

    @property
    def addresses(self) -> list[str]:
        """Where the SMTP listener listens, for logs and the service status."""
        return [_address(sock.getsockname()) for server in self.servers
                for sock in server.sockets]

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        settings = self.app.settings
        if self.remote is not None:
            self.remote.start()
            self.scheduler.add_job(self.remote.check, "interval", seconds=CHILD_CHECK_SECONDS,
                                   id="worker process", coalesce=True, max_instances=1)
        if self.workers:
            self._start_workers()
        if self.listen and (self.workers or self.remote is not None):
            self._start_pollers()
            self.doorbell = self.app.doorbell.listen(self._rung)
        if self.listen and settings.http.enabled:
            self._start_monitor()
        if self.listen and settings.api.enabled:
            self._start_api()
        if self.listen and settings.web_to_case.enabled:
            self._start_web_to_case()
        if self.listen and settings.console.enabled:
            self._start_console()
        self.scheduler.start()
        if self.listen and settings.smtp.enabled:
            self.group_commit = GroupCommit(self.app.intake, source=settings.smtp.protocol)
            handler = IntakeHandler(settings, self.group_commit.accept, self.wake_processor,
                                    self.app.metrics.accept_seconds.observe)
            try:
                self.factory = ListenerFactory(settings, handler, self.sessions)
            except (OSError, AuthFileError) as exc:
                raise ListenError(f"cannot start the SMTP listener: {exc}") from None
            await self._listen(self.factory)
            log.info("%s listening on %s%s", settings.smtp.protocol.upper(),
                     ", ".join(self.addresses),
                     " (sockets from the service manager)" if self.sockets else "")
        elif self.sockets:
            log.warning("the service manager passed %d socket(s) but [smtp] enabled = false; "
                        "they are not served", len(self.sockets))

    async def _listen(self, factory: Callable[[], asyncio.Protocol]) -> None:
        """Serve the sockets systemd passed, else bind ``[smtp] host`` and ``port``."""
        assert self._loop is not None
        if self.sockets:
            for sock in self.sockets:
                self.servers.append(await self._loop.create_server(factory, sock=sock))
            return
        smtp = self.app.settings.smtp
        try:
            self.servers.append(await self._loop.create_server(factory, smtp.host, smtp.port))
        except OSError as exc:
            raise ListenError(f"cannot listen on {smtp.host}:{smtp.port}: {_reason(exc)}") from None

    def _start_monitor(self) -> None:
        http = self.app.settings.http
        monitor = Monitor(self.app.health, self.app.metrics, http.host, http.port)
        _serving(monitor.start, "http", http.host, http.port)
        self.monitor = monitor

    def _start_api(self) -> None:
        """The HTTP API on its own address, over this daemon's App of the moment."""
        api = self.app.settings.api
        server = HttpServer(make_api(lambda: self.app), api.host, api.port)
        _serving(server.start, "the API", api.host, api.port)
        self.api = server
        log.info("API listening on %s:%s", api.host, server.port)

    def _start_web_to_case(self) -> None:
        """The public Web-to-Case form on an address of its own; a stored form wakes the
        processor as a mail does."""
        web = self.app.settings.web_to_case
        door = make_web_to_case(lambda: self.app, self.wake_processor)
        server = HttpServer(door, web.host, web.port, name="web-to-case",
                            trusted_proxies=web.trusted_proxies)
        _serving(server.start, "Web-to-Case", web.host, web.port)
        self.web_to_case = server
        log.info("Web-to-Case listening on %s:%s", web.host, server.port)

    def _start_console(self) -> None:
        """The agents' web console on an address of its own. Its server believes no
        X-Forwarded-For: the console itself asks whether the peer is one of its
        trusted_proxies, for the trusted header and the client its limits count, so the
        peer it sees must be the one that connected."""
        console = self.app.settings.console
        server = HttpServer(make_console(lambda: self.app), console.host, console.port,
                            name="console")
        _serving(server.start, "the console", console.host, console.port)
        self.console = server
        log.info("console listening on %s:%s", console.host, server.port)

    def _start_workers(self) -> None:
        for worker in (self.processor, self.sender, self.webhooks):
            worker.task = asyncio.create_task(worker.run(), name=worker.name)
            worker.wake()  # catch up on whatever was left from the last run
        self.scheduler.add_job(
            self._wake_all, "interval", seconds=self.app.settings.processing.poll_seconds,
            id="retries", coalesce=True, max_instances=1,
        )
        # The case's clock (escalation, reminders, auto-close): at once, to catch up on
        # what fell due while stopped, then every sweep_seconds.
        self.scheduler.add_job(
            self._sweep, "interval", seconds=self.app.settings.cases.sweep_seconds,
            id="sweeps", coalesce=True, max_instances=1, next_run_time=datetime.now(UTC),
        )

    async def _sweep(self) -> None:
        """Run the due sweeps in a thread, off the event loop; mail they queued leaves
        now. None starts once stopping; one under way when the loop ends is let go
        quietly (each of its actions is a transaction of its own)."""
        if self.stopping.is_set():
            return
        try:
            done = await asyncio.to_thread(self.app.sweeps.run)
        except asyncio.CancelledError:
            return
        except Exception:
            log.exception("sweep failed; the next one tries again")
            return
        if done:
            self._wake_senders()

    def _start_pollers(self) -> None:
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

    def _poll_on(self, poller: ImapPoller) -> None:
        """Interval polling for a server without IDLE."""
        interval = poller.settings.poll_seconds
        self.scheduler.add_job(
            poll_once, "interval", args=[poller, self.app.engine], seconds=interval,
            id=f"imap {poller.mailbox.address}", coalesce=True, max_instances=1,
            next_run_time=datetime.now(UTC),
        )

    def wake_processor(self) -> None:
        """New mail is committed: wake the processor, here or in the child."""
        if self.remote is not None:
            self.remote.wake()
        else:
            self.processor.wake()

    def _wake_from_thread(self) -> None:
        """Wake the processor from a poller's worker thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.wake_processor)

    def _rung(self) -> None:
        """Another process (the command line) committed work: look at both queues now.
        Called from the doorbell's thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake_everything)

    def _wake_everything(self) -> None:
        if self.remote is not None:
            self.remote.wake(outbox=True)
        else:
            self._wake_all()

    def _wake_all(self) -> None:
        self.processor.wake()
        self._wake_senders()

    def _wake_senders(self) -> None:
        """Mail and webhook events may have been queued: send them."""
        self.sender.wake()
        self.webhooks.wake()

    async def stop(self) -> None:
        """Drain the listener, let in-flight work finish, then stop the workers."""
        if self.remote is not None:
            self.remote.stopping()
        await self._drain_smtp(self.app.settings.service.shutdown_seconds)
        for server in self.servers:
            server.close()
            await server.wait_closed()
        if self.group_commit is not None:
            await asyncio.to_thread(self.group_commit.close)
        self.stopping.set()
        if self.doorbell is not None:
            await asyncio.to_thread(self.doorbell.close)
        for thread in self.watchers:  # each leaves IDLE within about a second
            await asyncio.to_thread(thread.join, WATCHER_STOP_SECONDS)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.monitor is not None:
            await asyncio.to_thread(self.monitor.stop)
        for door in (self.api, self.web_to_case, self.console):
            if door is not None:
                await door.stop()
        for worker in (self.processor, self.sender, self.webhooks):
            if worker.task is not None:
                worker.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.task
        if self.remote is not None:
            await asyncio.to_thread(self.remote.stop)

    async def _drain_smtp(self, bound: float) -> None:
        """New connections and new mails get 421 while the mails under way finish, for at
        most ``bound`` seconds; then every session still open is closed (a mail cut off
        got no 250, so its sender retries)."""
        if not self.servers:
            return
        self.sessions.draining = True
        deadline = time.monotonic() + bound
        if busy := self.sessions.busy():
            log.info("stopping: waiting for %d SMTP session(s) in the middle of a mail", busy)
        while self.sessions.busy() and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        if busy := self.sessions.busy():
            log.warning("stopping: %d SMTP session(s) still sending after %g s are cut off "
                        "without an answer; their senders will retry", busy, bound)
        self.sessions.close_all()

    async def serve_forever(self, wake_fd: int | None = None) -> None:
        """Run until SIGTERM or SIGINT (or, for the processing child, until its wake-up
        pipe ``wake_fd`` closes), then stop cleanly."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        if self.config_path is not None:
            loop.add_signal_handler(signal.SIGHUP, self.reload)
        if wake_fd is not None:
            os.set_blocking(wake_fd, False)

            def readable() -> None:
                try:
                    data = os.read(wake_fd, 4096)
                except BlockingIOError:
                    return
                if data:
                    self.processor.wake()
                    if WAKE_ALL in data:
                        self.sender.wake()
                else:  # the listener stopped or died
                    loop.remove_reader(wake_fd)
                    stop.set()

            loop.add_reader(wake_fd, readable)
        # The processing child stops when the listener ends its pipe: on a shutdown, and
        # when a reload replaces it. Its lines say which process they are about.
        who = "processing child" if wake_fd is not None else "mailcase"
        await self.start()
        self.manager.ready(self._status())
        watchdog = asyncio.create_task(self._keep_alive(), name="watchdog")
        try:
            await stop.wait()
            log.info("%s stopping: finishing the mail in hand", who)
            self.manager.stopping("stopping: finishing the mail in hand")
        finally:
            watchdog.cancel()
            await self.stop()
        log.info("%s stopped", who)

    def _status(self) -> str:
        return f"listening on {', '.join(self.addresses)}" if self.addresses else "running"

    def reload(self) -> bool:
        """SIGHUP: read the config file again and take what can change while running
        (see reload); a file that fails its checks changes nothing. The processing child
        is replaced by one given the new settings."""
        if self.config_path is None:
            log.warning("reload: started without a config file path; nothing to read")
            return False
        self.manager.reloading("reloading the configuration")
        try:
            return self._reload(self.config_path)
        finally:
            self.manager.ready(self._status())

    def _reload(self, path: Path) -> bool:
        try:
            changes = reload.plan(self.app.settings, config.load(path))
            if problems := preflight.template_problems(changes.effective):
                raise TemplateProblem("; ".join(problems))
            app = self.app.reconfigured(changes.effective)
            if problems := app.owner_problems():
                raise ConfigError("; ".join(problems))
            if self.factory is not None:
                self.factory.configure(changes.effective)
        except (ConfigError, SecretError, TemplateProblem, AuthFileError, OSError) as exc:
            log.error("reload refused, the running configuration stays: %s", exc)
            return False
        self._swap(app)
        if self.remote is not None:
            self.remote.replace(changes.effective)
        if not changes.changed:
            log.info("reload: the config file is unchanged; templates and secrets read again")
        elif changes.applied:
            log.info("reload: applied %s", ", ".join(changes.applied))
        if changes.needs_restart:
            log.warning("reload: needs a restart to take effect (running with the values it "
                        "started with): %s", ", ".join(changes.needs_restart))
        return True

    def _swap(self, app: App) -> None:
        """Run with ``app`` from now on (a drain under way finishes with the old parts)."""
        before, self.app = self.app.settings, app
        logs.configure(app.settings)  # the level or format may be new, and the secrets
        if self.group_commit is not None:
            self.group_commit.intake = app.intake
        if self.monitor is not None:
            self.monitor.health = app.health
        for job, seconds, was in (
                ("retries", app.settings.processing.poll_seconds,
                 before.processing.poll_seconds),
                ("sweeps", app.settings.cases.sweep_seconds, before.cases.sweep_seconds)):
            if seconds != was and self.scheduler.get_job(job):
                self.scheduler.reschedule_job(job, trigger="interval", seconds=seconds)
        self._wake_all()

    async def _keep_alive(self) -> None:
        """WATCHDOG=1 from the event loop itself: if the loop hangs, the keep-alives stop
        and the service manager restarts the daemon."""
        interval = self.manager.watchdog_interval
        if interval is None:
            return
        while True:
            self.manager.watchdog()
            await asyncio.sleep(interval)
