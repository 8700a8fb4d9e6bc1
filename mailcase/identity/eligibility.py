"""Who may be made a collaborator of a mailbox's cases: the mailbox's policy.

Stops the wrong people being added by a careless CC: with ``same_domain`` only the
contact's colleagues, with ``domains`` only listed domains, ``anyone``, or ``none``.
mailcase's own addresses and robot addresses are never collaborators.
"""

from __future__ import annotations

import re

from mailcase.config import MailboxSettings, Settings
from mailcase.identity.addresses import OwnAddresses

_ROBOT = re.compile(r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply)([+-].*)?$", re.I)


def refusal(settings: Settings, mailbox: MailboxSettings, contact: str, email: str) -> str | None:
    """Why ``email`` may not collaborate on a case of ``contact`` (None when it may)."""
    local, _, domain = email.lower().rpartition("@")
    if OwnAddresses.of(settings).owns(email):
        return "it is a mailcase address"
    if _ROBOT.match(local):
        return "it is a robot address"
    policy = mailbox.collaborators
    if policy == "none":
        return "this mailbox takes no collaborators"
    if policy == "same_domain" and domain != contact.lower().rpartition("@")[2]:
        return f"only addresses at {contact.rpartition('@')[2]} may be added"
    if policy == "domains" and domain not in {d.lower() for d in mailbox.collaborator_domains}:
        return "its domain is not one this mailbox accepts"
    return None
