"""The ``[web_to_case]`` section: the public form whose submissions become cases, and the
limits that keep it from being turned against anyone (sizes, origins, rates, a honeypot,
where it may send a browser back to)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator

from mailcase.config.base import Port, Section, check_address, check_networks
from mailcase.config.durations import Duration, SomeTimeText

# A host as a browser names it in Origin and Referer: labels, an optional "*." in front
# for every subdomain, an optional port.
_HOST = re.compile(r"^(\*\.)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
                   r"(?::[0-9]{1,5})?$")

# The form's own fields, which the honeypot must not be.
FIELDS = ("email", "name", "company", "phone", "subject", "description", "retURL")


def _hosts(values: tuple[str, ...]) -> tuple[str, ...]:
    cleaned = tuple(value.strip().lower().rstrip(".") for value in values)
    for value in cleaned:
        if "://" in value or "/" in value:
            raise ValueError(f"{value!r}: give a host like www.example.com, not a URL")
        if not _HOST.match(value):
            raise ValueError(f"{value!r} is not a host like www.example.com or *.example.com")
    return cleaned


class WebToCaseSettings(Section):
    """``POST /web-to-case``: a form on a public site opens a case, stored like a mail.

    Served by ``mailcase serve`` on an address of its own, so it can face the internet
    while the API stays private. Off unless enabled.
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Port = 8027
    # The [[mailbox]] a submission is filed into (its auto-responses, routing, targets);
    # None: the first mailbox.
    mailbox: str | None = None
    # Hosts whose pages may submit the form, checked against the Origin header (else the
    # Referer); empty: any, and a request without either is taken too.
    allowed_origins: tuple[str, ...] = ()
    # Hosts retURL may send the browser back to; empty: no retURL is accepted.
    redirect_hosts: tuple[str, ...] = ()
    # The whole request, in bytes (its files included); larger ones get 413.
    max_size: Annotated[int, Field(gt=0)] = 10 * 1024 * 1024
    max_files: Annotated[int, Field(ge=0)] = 5
    # Forms stored per submitter address (plus-forms count as the address) and per client
    # address within rate_window; beyond them 429 with Retry-After.
    per_address: Annotated[int, Field(ge=1)] = 5
    per_client: Annotated[int, Field(ge=1)] = 20
    rate_window: SomeTimeText = Duration(0, 3600)
    # A field people never see: a form that fills it in is a robot's ("": no honeypot).
    honeypot: str = "website"
    # Reverse proxies in front (addresses or networks) whose X-Forwarded-For names the
    # client; anyone else's is ignored.
    trusted_proxies: tuple[str, ...] = ()

    @field_validator("mailbox")
    @classmethod
    def _mailbox_address(cls, value: str | None) -> str | None:
        return None if value is None else check_address(value)

    @field_validator("allowed_origins", "redirect_hosts")
    @classmethod
    def _host_list(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return _hosts(values)

    @field_validator("honeypot")
    @classmethod
    def _not_a_real_field(cls, value: str) -> str:
        if value in FIELDS:
            raise ValueError(f"{value!r} is one of the form's own fields")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return check_networks(values)
