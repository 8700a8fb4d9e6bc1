"""The typed tables of mailcase's store (SQLAlchemy 2), imported from one place."""

from mailcase.store.models.base import Base, UTCDateTime
from mailcase.store.models.case import (
    DESCRIPTION_MAX_BYTES,
    SUBJECT_MAX,
    Attachment,
    Blob,
    Case,
    Collaborator,
    Comment,
    Counter,
    Event,
)
from mailcase.store.models.clock import CaseTarget
from mailcase.store.models.hooks import WebhookDelivery
from mailcase.store.models.mail import (
    MESSAGE_ID_MAX,
    Bounce,
    InboundMail,
    MailboxPoll,
    Message,
    OutboundMail,
    RecipientStatus,
)
from mailcase.store.models.people import (
    Account,
    Agent,
    ApiKey,
    ConsoleSession,
    Contact,
    Queue,
    QueueMember,
)

__all__ = [
    "DESCRIPTION_MAX_BYTES",
    "MESSAGE_ID_MAX",
    "SUBJECT_MAX",
    "Account",
    "Agent",
    "ApiKey",
    "Attachment",
    "Base",
    "Blob",
    "Bounce",
    "Case",
    "CaseTarget",
    "Collaborator",
    "Comment",
    "ConsoleSession",
    "Contact",
    "Counter",
    "Event",
    "InboundMail",
    "MailboxPoll",
    "Message",
    "OutboundMail",
    "Queue",
    "QueueMember",
    "RecipientStatus",
    "UTCDateTime",
    "WebhookDelivery",
]
