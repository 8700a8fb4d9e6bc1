"""Webhook deliveries: one row per event and receiver, written in the transaction of the
change it tells of (like the outbox), sent and retried by the webhook sender."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from mailcase.store.models.base import Base, CleanText, Clipped, Delivery


class WebhookDelivery(Delivery, Base):
    """An event for one webhook: its JSON body as sent (so every try is byte-identical
    and its signature checks), where it stands, and the receiver's last answer."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook: Mapped[str] = mapped_column(Clipped(255))  # the [[webhook]] name
    message_id: Mapped[str] = mapped_column(Clipped(64), unique=True)  # webhook-id
    event_type: Mapped[str] = mapped_column(Clipped(40))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    body: Mapped[str] = mapped_column(CleanText)
