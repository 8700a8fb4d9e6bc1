"""SIGHUP: which changes of the config file the running daemon takes, and which need a restart.

A reload reads the file again and compares it with the running settings key by key.
Addresses it listens on, the database, the PROXY/LMTP framing, the IMAP pollers and
whether processing runs in a child cannot change under a running process: for those
keys the running value stays (and the log says a restart is needed); everything else
— mailboxes and their auto-responses, templates, token secrets, outbound relay, limits,
retries, TLS certificate and AUTH users for new connections, log level and format —
takes effect at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailcase.config import Settings

RESTART_KEYS = (
    "database",
    "smtp.enabled", "smtp.host", "smtp.port", "smtp.protocol", "smtp.proxy_protocol",
    "http.enabled", "http.host", "http.port", "api.enabled", "api.host", "api.port",
    "web_to_case.enabled", "web_to_case.host", "web_to_case.port",
    "web_to_case.trusted_proxies", "console.enabled", "console.host", "console.port",
    "processing.worker_process",
)
"""Keys (or whole sections) a running daemon keeps until it is restarted."""


@dataclass(frozen=True)
class Plan:
    """What a reload does: the keys that changed, those of them that wait for a restart,
    and the settings to run with from now on."""

    changed: tuple[str, ...]
    needs_restart: tuple[str, ...]
    effective: Settings

    @property
    def applied(self) -> tuple[str, ...]:
        return tuple(key for key in self.changed if key not in self.needs_restart)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a dumped settings tree; mailboxes are named by their address."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if prefix == "mailbox" and isinstance(value, list | tuple):
        out = {}
        for box in value:
            out.update(flatten(box, f"mailbox[{box['address']}]"))
        return out
    return {prefix: value}


def _restart_key(key: str, before: dict[str, Any], after: dict[str, Any]) -> bool:
    if key.startswith("mailbox["):
        # A mailbox's poller is the one part that needs a restart: a mailbox without
        # IMAP (before and after) comes, goes and changes on a reload.
        _, _, rest = key.partition("].")
        return rest.startswith("imap") and (before.get(key) is not None
                                            or after.get(key) is not None)
    return any(key == name or key.startswith(name + ".") for name in RESTART_KEYS)


def plan(running: Settings, new: Settings) -> Plan:
    """Compare ``new`` with the ``running`` settings."""
    before = running.model_dump(by_alias=True)
    after = new.model_dump(by_alias=True)
    flat_before, flat_after = flatten(before), flatten(after)
    changed = tuple(sorted(key for key in flat_before.keys() | flat_after.keys()
                           if flat_before.get(key, _ABSENT) != flat_after.get(key, _ABSENT)))
    waiting = [key for key in changed if _restart_key(key, flat_before, flat_after)]
    if not waiting:
        return Plan(changed, (), new)
    if any(key.startswith("mailbox[") for key in waiting):
        # The pollers run with the mailboxes they started with: the list stays whole.
        after["mailbox"] = before["mailbox"]
        waiting = [key for key in changed if key.startswith("mailbox[")
                   or _restart_key(key, flat_before, flat_after)]
    for key in waiting:
        if not key.startswith("mailbox["):
            _put(after, key, _get(before, key))
    return Plan(changed, tuple(waiting), Settings.model_validate(after))


_ABSENT = object()  # a key one side does not have (a mailbox added or removed)


def _get(tree: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        tree = tree[part]
    return tree


def _put(tree: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for part in parents:
        tree = tree[part]
    tree[last] = value
