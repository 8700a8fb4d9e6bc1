"""What a reply does to a case's status: an agent's answer may put it on hold, and a
customer's reply to a closed case reopens it or opens a follow-up.

Rules every door shares, so mail and the command line agree: ``hold`` is ``/hold`` and
``cases reply --hold``; ``holds_on_reply`` is a mailbox's ``hold_on_reply``;
``after_close`` is what a reply to a closed case does. The case's own mailbox decides
(its keys override ``[cases]``'), not the address a reply happened to be sent to.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from mailcase.cases.book import CaseBook
from mailcase.cases.errors import CaseError
from mailcase.config import MailboxSettings, Settings
from mailcase.store.models import Case


def hold(book: CaseBook, case: Case, actor: str | None) -> None:
    """Put ``case`` in ``cases.hold_status`` (waiting on the customer), by the status
    rules: a closed case must be reopened first."""
    status = book.settings.hold_status
    if status is None:
        raise CaseError("cases cannot be put on hold here: [cases] hold_status is not set")
    book.set_status(case, status, actor)


def holds_on_reply(settings: Settings, case: Case) -> bool:
    """Whether an agent's public answer puts ``case`` on hold without being asked: its
    mailbox says so (``hold_on_reply``), there is a hold status, and the case is open (an
    answer on a closed case is recorded on it as it is)."""
    return holds_by_default(settings, case.mailbox, is_closed=case.is_closed)


def holds_by_default(settings: Settings, mailbox: str | None, *, is_closed: bool) -> bool:
    """``holds_on_reply`` for a case of ``mailbox`` (its address), open or closed: what
    a reply form offers before the agent chooses."""
    box = settings.mailbox_for(mailbox) if mailbox else None
    return (box is not None and box.hold_on_reply and settings.cases.hold_status is not None
            and not is_closed)


def after_close(settings: Settings, case: Case, now: datetime) -> Literal["reopen", "follow_up"]:
    """What a reply to the closed ``case`` at ``now`` does: "reopen" it, or open a
    "follow_up" case whose parent it is. With "reopen", a reply more than ``reopen_days``
    after the close opens a follow-up too (None: however late it comes)."""
    box = _mailbox(settings, case)
    mode = (box.on_reply_to_closed if box else None) or settings.cases.on_reply_to_closed
    days = box.reopen_days if box is not None and box.reopen_days is not None \
        else settings.cases.reopen_days
    if mode == "reopen" and days is not None and case.closed_at is not None \
            and now - case.closed_at > timedelta(days=days):
        return "follow_up"
    return mode


def _mailbox(settings: Settings, case: Case) -> MailboxSettings | None:
    """The case's mailbox, while the config still has it (else [cases] alone decides)."""
    return settings.mailbox_for(case.mailbox) if case.mailbox else None
