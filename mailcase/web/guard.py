"""What stands between the public Web-to-Case form and the store: which pages may submit
it (Origin, Referer), where it may send a browser back to (retURL), and how often one
submitter or one client may have a form stored.

Each check refuses with ``Refused`` — an HTTP status, one sentence, and the headers
that go with it — before anything is stored.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlsplit


class Refused(Exception):
    """A form turned away: ``status``, the reason in one sentence, extra headers."""

    def __init__(self, status: int, reason: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})


def host_allowed(host: str, port: int | None, allowed: Sequence[str]) -> bool:
    """Whether ``host`` (with ``port`` when the URL gave one) is one of ``allowed``: a host,
    ``host:port``, or ``*.domain`` for every host under the domain."""
    host = host.lower().rstrip(".")
    named = f"{host}:{port}" if port is not None else host
    for entry in allowed:
        if entry.startswith("*."):
            base = entry[2:]
            base_host = base.partition(":")[0]
            if host.endswith("." + base_host) and (":" not in base or named.endswith(base)):
                return True
        elif entry in (named, host) and (":" not in entry or entry == named):
            return True
    return False


def check_origin(headers: Mapping[str, str], allowed: Sequence[str]) -> None:
    """Refuse (403) a form from a page not on ``allowed`` (empty: any page). The Origin
    header decides where the browser sent it; without one (or "null": a file, a
    sandboxed frame) the Referer does; with neither the form is refused, since an
    allow-list that a missing header passes would stop nobody."""
    if not allowed:
        return
    origin = headers.get("origin", "").strip()
    source = origin if origin and origin != "null" else headers.get("referer", "").strip()
    if not source:
        raise Refused(403, "This form may only be sent from the web site it belongs to "
                           "(the request named no Origin or Referer).")
    try:
        parts = urlsplit(source)
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if host is None or not host_allowed(host, port, allowed):
        raise Refused(403, f"This form may not be sent from {source[:200]}.")


# Characters no address to send a browser to may hold: a backslash (browsers read it as
# a slash, Python's URL parser does not: "https://evil.example\@good.example" goes to
# evil.example), whitespace and controls (split or hide the URL).
_UNSAFE_URL = re.compile(r"[\\\s\x00-\x1f\x7f]")
URL_MAX = 2000


def return_url(value: str, allowed: Sequence[str]) -> str | None:
    """The retURL to send the browser to after the form, if one was given; Refused (422)
    for one that is not an http(s) address on an ``allowed`` host (an open redirect
    would lend our name to any link)."""
    if not value:
        return None
    if len(value) > URL_MAX or _UNSAFE_URL.search(value) or not value.isascii():
        raise Refused(422, "retURL is not a web address this form may return to.")
    try:
        parts = urlsplit(value)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise Refused(422, "retURL is not a web address this form may return to.") from None
    if (parts.scheme not in ("http", "https") or host is None or "@" in parts.netloc
            or not host_allowed(host, port, allowed)):
        raise Refused(422, f"retURL may not lead to {value[:200]}.")
    return value


class Limiter:
    """How many times each key (an address, a client) was counted within a sliding window
    — forms stored, sign-ins failed — in this process's memory: a restart forgets, and
    several instances count apart."""

    PRUNE_AT = 10_000  # keys held before old ones are let go

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, wanted: Sequence[tuple[str, int]], window: float) -> float:
        """Count one form for every key of ``wanted`` (key, limit) if each is under its
        limit: 0.0. Else count nothing and say how many seconds until all would be."""
        with self._lock:
            wait = self._wait(wanted, window)
            if wait == 0:
                self._count([key for key, _limit in wanted], window)
            return wait

    def wait(self, wanted: Sequence[tuple[str, int]], window: float) -> float:
        """How many seconds until every key of ``wanted`` (key, limit) is under its limit
        (0.0: now), counting nothing."""
        with self._lock:
            return self._wait(wanted, window)

    def count(self, keys: Sequence[str], window: float) -> None:
        """Count one more for each of ``keys`` (a failed sign-in, say)."""
        with self._lock:
            self._count(keys, window)

    def forget(self, keys: Sequence[str]) -> None:
        """Let go of everything counted for ``keys`` (an agent who got in)."""
        with self._lock:
            for key in keys:
                self._seen.pop(key, None)

    def _wait(self, wanted: Sequence[tuple[str, int]], window: float) -> float:
        now = self.clock()
        wait = 0.0
        for key, limit in wanted:
            stamps = self._recent(key, now, window)
            if len(stamps) >= limit:
                wait = max(wait, stamps[len(stamps) - limit] + window - now)
        return wait

    def _count(self, keys: Sequence[str], window: float) -> None:
        now = self.clock()
        for key in keys:
            self._seen.setdefault(key, deque()).append(now)
        if len(self._seen) > self.PRUNE_AT:
            self._prune(now, window)

    def give_back(self, keys: Sequence[str]) -> None:
        """Uncount the last form of each key (it could not be stored after all)."""
        with self._lock:
            for key in keys:
                stamps = self._seen.get(key)
                if stamps:
                    stamps.pop()

    def _recent(self, key: str, now: float, window: float) -> deque[float]:
        stamps = self._seen.get(key, deque())
        while stamps and stamps[0] <= now - window:
            stamps.popleft()
        return stamps

    def _prune(self, now: float, window: float) -> None:
        for key in [k for k, s in self._seen.items() if not s or s[-1] <= now - window]:
            del self._seen[key]


def retry_after(seconds: float) -> dict[str, str]:
    """A Retry-After header of whole seconds (at least one)."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}
