"""Where a console request comes from, and where a browser may be sent: the peer and
the trusted proxies in front, the client the sign-in limits count, the Origin of a
form, the path to go to after signing in.

The console's server believes no forwarding header itself (uvicorn's proxy headers are
off), so ``request.client`` is the address that really connected; only here is a
header from a trusted proxy taken at its word.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.requests import Request

from mailcase.config.console import ConsoleSettings
from mailcase.web.guard import Refused

# Characters no path to send a browser to may hold: a backslash (browsers read it as a
# slash: "/\\evil.example" leaves the site), whitespace and controls.
_UNSAFE_PATH = re.compile(r"[\\\s\x00-\x1f\x7f]")


def peer(request: Request) -> str:
    """The address that connected (the console's server believes no forwarding header,
    so this is the real peer)."""
    return request.client.host if request.client else ""


def from_proxy(address: str, proxies: Sequence[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def proxied_email(request: Request, settings: ConsoleSettings) -> str | None:
    """The address the trusted header names, when it came from a trusted proxy; a header
    from anyone else is ignored."""
    if settings.trusted_header is None:
        return None
    value = request.headers.get(settings.trusted_header, "").strip().lower()
    if not value or not from_proxy(peer(request), settings.trusted_proxies):
        return None
    return value


def client_address(request: Request, settings: ConsoleSettings) -> str:
    """Who the sign-in limits count: the peer, or behind a trusted proxy the last address
    of its X-Forwarded-For (the one the proxy itself saw)."""
    address = peer(request)
    forwarded = request.headers.get("x-forwarded-for", "")
    if forwarded and from_proxy(address, settings.trusted_proxies):
        return forwarded.rsplit(",", 1)[-1].strip() or address
    return address


def safe_next(value: str) -> str:
    """Where to go after signing in: a path on the console ("/cases?x=1"), never another
    site ("//evil.example", "http://…", "/\\evil.example"); else "/"."""
    if (value.startswith("/") and not value.startswith("//") and len(value) <= 2000
            and not _UNSAFE_PATH.search(value)):
        return value
    return "/"


def same_origin(request: Request) -> None:
    """Refuse (403) a request whose Origin (when the browser sent one) is another site
    than the one it was sent to (its Host)."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    parts = urlsplit(origin)
    host = request.headers.get("host", "").lower()
    if parts.scheme not in ("http", "https") or not host or parts.netloc.lower() != host:
        raise Refused(403, f"This form was sent from another site ({origin[:200]}); the "
                           "console takes forms only from its own pages.")
