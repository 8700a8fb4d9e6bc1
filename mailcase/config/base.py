"""The parts every section of the configuration is made of: the section base, addresses
and owners as operators write them."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Port = Annotated[int, Field(ge=0, le=65535)]


class Section(BaseModel):
    """Base of every section: immutable, and unknown keys are refused rather than ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def check_address(value: str) -> str:
    local, sep, domain = value.rpartition("@")
    if not sep or not local or not domain or "." not in domain or " " in value:
        raise ValueError(f"{value!r} is not an email address like support@example.com")
    return value.lower()


Priority = Literal["High", "Medium", "Low"]
QUEUE_PREFIX = "queue:"


def check_owner(value: str) -> str:
    """An owner as rules and mailboxes name it: an agent's address or ``queue:NAME``."""
    if value.lower().startswith(QUEUE_PREFIX):
        name = value[len(QUEUE_PREFIX):].strip()
        if not name:
            raise ValueError(f"{value!r} names no queue (queue:NAME)")
        return QUEUE_PREFIX + name
    return check_address(value)


def check_networks(values: tuple[str, ...]) -> tuple[str, ...]:
    """Addresses or networks (``10.0.0.0/8``) of trusted proxies, each as ``ipaddress``
    reads it."""
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network") from None
    return values
