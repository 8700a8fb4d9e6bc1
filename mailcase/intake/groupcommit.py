"""Group commit: the mail of many SMTP sessions stored in one durable transaction.

Each session still hears 250 only after its own mail is committed, but a burst no
longer costs one fsync (and one turn at SQLite's write lock) per message: one writer
thread takes everything that queued up while the previous commit ran and commits it
together. Under light load a batch is a single mail and nothing waits longer than it
would have; under heavy load the batches grow by themselves. Hashing and the insert
run in that thread, off the event loop. If a batch fails as a whole, its mails are
committed one by one, so one bad mail never costs the others their 250 — unless the
database itself is down or locked, when every session hears 451 at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import DisconnectionError, OperationalError

from mailcase.intake.accept import Accepted, Incoming, Intake

log = logging.getLogger(__name__)

MAX_BATCH = 256
MAX_BATCH_BYTES = 64 * 1024 * 1024


@dataclass
class _Waiting:
    """A mail waiting for the next commit, and how to tell its session."""

    mail: Incoming
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Accepted]


class GroupCommit:
    """Queues mail from the event loop and commits it in batches in one writer thread."""

    def __init__(self, intake: Intake, source: str = "smtp") -> None:
        self.intake = intake
        self.source = source
        self._waiting: list[_Waiting] = []
        self._changed = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="group commit", daemon=True)
        self._thread.start()

    async def accept(self, raw: bytes, mail_from: str, rcpt_to: Sequence[str]) -> Accepted:
        """Store one mail; returns once it is committed (raises if it could not be)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Accepted] = loop.create_future()
        with self._changed:
            if self._closing or not self._thread.is_alive():
                raise RuntimeError("mailcase is stopping")
            self._waiting.append(_Waiting(Incoming(raw, mail_from, list(rcpt_to)), loop, future))
            self._changed.notify()
        return await future

    def close(self, timeout: float | None = None) -> None:
        """Commit what is queued, then stop the writer."""
        with self._changed:
            self._closing = True
            self._changed.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._waiting and not self._closing:
                    self._changed.wait()
                if not self._waiting:
                    return
                batch = self._take()
            try:
                results = self._commit([waiting.mail for waiting in batch])
                if len(results) != len(batch):
                    raise ValueError(f"{len(results)} results for {len(batch)} mails")
            except Exception as exc:  # every session hears 451, none hangs
                log.exception("the commit writer failed")
                results = [exc] * len(batch)
            for waiting, result in zip(batch, results, strict=True):
                with contextlib.suppress(RuntimeError):  # that session's loop is gone
                    waiting.loop.call_soon_threadsafe(_settle, waiting.future, result)

    def _take(self) -> list[_Waiting]:
        """The oldest waiting mail, up to a batch's count and size."""
        size = count = 0
        for waiting in self._waiting:
            if count and (count >= MAX_BATCH or size + len(waiting.mail.raw) > MAX_BATCH_BYTES):
                break
            size += len(waiting.mail.raw)
            count += 1
        batch, self._waiting = self._waiting[:count], self._waiting[count:]
        return batch

    def _commit(self, mails: list[Incoming]) -> list[Accepted | Exception]:
        try:
            return self.intake.accept_batch(mails, source=self.source)
        except (OperationalError, DisconnectionError) as exc:
            # The database is down or locked: every mail would fail the same way, one
            # timeout after the other. All sessions hear 451 now and their senders retry.
            log.error("could not commit %d mails (answered 451): %s", len(mails), exc)
            return [exc] * len(mails)
        except Exception as exc:  # noqa: BLE001 - one mail may be at fault: one by one
            if len(mails) == 1:
                return [exc]
            log.warning("a batch of %d mails could not be committed (%s); committing them "
                        "one by one", len(mails), exc)
        results: list[Accepted | Exception] = []
        for mail in mails:
            try:
                results.append(self.intake.accept_batch([mail], source=self.source)[0])
            except Exception as exc:  # noqa: BLE001 - this session answers 451
                results.append(exc)
        return results


def _settle(future: asyncio.Future[Accepted], result: Accepted | Exception) -> None:
    """Hand the result to the waiting session (gone if the client hung up: the mail is
    committed anyway, and a resend is recognised as a duplicate)."""
    if future.done():
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)
