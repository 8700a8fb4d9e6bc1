"""The ``[console]`` section: the web console where agents work cases, and how they sign
in to it (a password, or a header set by a single sign-on proxy in front)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from mailcase.config.base import Port, Section, check_networks
from mailcase.config.durations import Duration, SomeTimeText

# A header name as RFC 9110 5.1 allows it (a token).
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class ConsoleSettings(Section):
    """The agents' web console, served by ``mailcase serve`` on an address of its own.
    Off unless enabled."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Port = 8028
    # Mark the session cookie Secure (sent over HTTPS only): set it behind TLS.
    secure_cookies: bool = False
    # A session unused this long ends; every session ends this long after sign-in.
    session_idle: SomeTimeText = Duration(0, 8 * 3600)
    session_max: SomeTimeText = Duration(7, 0)
    # Failed sign-ins for one address, or from one client, within login_window; beyond
    # them sign-in is refused (429) without looking at the password until it passes.
    login_attempts: Annotated[int, Field(ge=1)] = 5
    login_window: SomeTimeText = Duration(0, 15 * 60)
    # Sign-in with a password (mailcase agents set-password); false leaves only the
    # trusted header.
    passwords: bool = True
    # A header naming the signed-in agent's address, set by a single sign-on proxy in
    # front (e.g. "X-Remote-User"); believed only from trusted_proxies.
    trusted_header: str | None = None
    # Reverse proxies in front (addresses or networks): the peers whose trusted_header
    # is believed, and whose X-Forwarded-For names the client for the sign-in limits.
    trusted_proxies: tuple[str, ...] = ()

    @field_validator("trusted_header")
    @classmethod
    def _header_name(cls, value: str | None) -> str | None:
        if value is not None and not _HEADER.match(value):
            raise ValueError(f"{value!r} is not a header name like \"X-Remote-User\"")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return check_networks(values)

    @model_validator(mode="after")
    def _consistent(self) -> ConsoleSettings:
        if self.session_idle.wall_seconds > self.session_max.wall_seconds:
            raise ValueError("session_idle: must not be longer than session_max")
        if not self.passwords and self.trusted_header is None:
            raise ValueError("passwords: with passwords = false, set trusted_header, or "
                             "no one can sign in")
        if self.trusted_header is not None and not self.trusted_proxies:
            raise ValueError("trusted_proxies: name the proxy that sets trusted_header")
        return self
