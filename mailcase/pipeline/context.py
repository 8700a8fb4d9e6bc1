"""The typed context a message carries through the pipeline, and the outcomes that end it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from mailcase.cases.book import CaseBook
from mailcase.cases.targets import TargetRules
from mailcase.config import MailboxSettings, Settings
from mailcase.identity.addresses import OwnAddresses
from mailcase.identity.authentication import UNCHECKED, DkimVerifier, Verdict
from mailcase.identity.tokens import TokenSigner
from mailcase.identity.trust import Standing
from mailcase.logs import about
from mailcase.outbound.compose import Composer
from mailcase.outbound.notify import Notifier
from mailcase.outbound.webhooks import Webhooks
from mailcase.pipeline.matching import Match
from mailcase.reading.parsing import ParsedMail
from mailcase.store.db import raw_slices
from mailcase.store.models import (
    Agent,
    Case,
    Comment,
    Contact,
    InboundMail,
    Message,
    OutboundMail,
)


class Outcome(Exception):
    """Ends a message's journey early with a final status and a reason.

    What the stages wrote is undone, unless ``keep`` says it is the record of the
    outcome (a bounce, an automatic reply noted on its case).
    """

    status = "processed"

    def __init__(self, reason: str, *, keep: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.keep = keep


class Drop(Outcome):
    """Recorded, but nothing more happens (e.g. an auto-reply): no case, no answer."""

    status = "dropped"


class Park(Outcome):
    """Kept for an operator to look at and replay."""

    status = "parked"


class Hold(Outcome):
    """A reply whose writer proved too little to join its case: kept for review, and
    joins it (as a comment, without commands) only if an operator releases it."""

    status = "held"


@dataclass(frozen=True)
class Services:
    """What the stages need besides the message: settings and the helpers built from them."""

    settings: Settings
    signer: TokenSigner
    composer: Composer
    notifier: Notifier
    own: OwnAddresses
    dkim: DkimVerifier
    targets: TargetRules = field(default_factory=TargetRules)  # [[sla]] rules, calendars
    webhooks: Webhooks = field(default_factory=Webhooks)  # told of every case change


@dataclass
class Context:
    """One message in flight; stages fill it in, in order."""

    inbound: InboundMail
    session: Session
    services: Services
    book: CaseBook
    now: datetime
    mail: ParsedMail | None = None
    mailbox: MailboxSettings | None = None
    sender: Contact | None = None
    match: Match | None = None
    case: Case | None = None
    new_case: bool = False
    message: Message | None = None
    comment: Comment | None = None
    auth: Verdict = UNCHECKED  # what the mail proves about its From
    standing: Standing | None = None  # what its writer may do (identity.trust)
    found_by: str | None = None  # how it found a case ("token", "thread"…), joined or not
    acting_agent: Agent | None = None  # the agent a proven writer is
    reply_internal: bool = False  # a reply through an internal note's token
    verp_outbound: OutboundMail | None = None
    alert: list[Agent] = field(default_factory=list)  # agents a new case was given to
    routed_by: str | None = None  # the rule, mailbox or default that placed it
    notes: list[str] = field(default_factory=list)

    @property
    def case_required(self) -> Case:
        """The case the message was recorded on; stages after ``record`` may rely on it."""
        assert self.case is not None, "record stage has not run"
        return self.case

    def raw_slices(self) -> Iterator[bytes]:
        """The mail's raw bytes in slices, from the store unless they are loaded already
        (a large mail is parsed without its whole bytes ever in memory at once)."""
        if "raw" not in inspect(self.inbound).unloaded:
            yield self.inbound.raw
        else:
            yield from raw_slices(self.session, self.inbound.id, self.inbound.size)

    @property
    def log_fields(self) -> dict[str, Any]:
        """``extra=`` for a log line about this mail (see logs.about)."""
        return about(self.inbound.id, self.inbound.message_id)

    @property
    def may_command(self) -> bool:
        """Whether the writer proved enough to give the commands their role allows."""
        return self.standing is not None and self.standing.commands

    @property
    def parsed(self) -> ParsedMail:
        """The parsed mail; stages after ``parse`` may rely on it."""
        assert self.mail is not None, "parse stage has not run"
        return self.mail
