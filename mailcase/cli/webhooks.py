"""Webhook deliveries: ``mailcase webhooks list|retry`` (the sending is in
outbound.webhooks)."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from mailcase.app import App
from mailcase.cli.common import UserError, changing, opened, positive_int
from mailcase.cli.output import capped, emit_json, minute, table
from mailcase.store.models import Case, WebhookDelivery

STATUSES = ("pending", "sent", "failed")


def register(commands: Any) -> None:
    hooks = commands.add_parser("webhooks", help="case events sent to other programs")
    actions = hooks.add_subparsers(dest="webhooks_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="deliveries, newest first")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--limit", type=positive_int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)
    retry = actions.add_parser("retry", help="send failed or waiting deliveries again now")
    retry.add_argument("ids", nargs="+", type=positive_int, metavar="ID")
    retry.set_defaults(handler=cmd_retry)


def cmd_list(args: argparse.Namespace) -> int:
    with opened(args) as app, app.readers() as session:
        query = (select(WebhookDelivery, Case.number)
                 .outerjoin(Case, Case.id == WebhookDelivery.case_id)
                 .order_by(WebhookDelivery.id.desc()).limit(args.limit + 1))
        if args.status:
            query = query.where(WebhookDelivery.status == args.status)
        rows = capped([_view(row, number) for row, number in session.execute(query)],
                      args.limit, "deliveries")
    if args.json:
        emit_json(rows)
    else:
        table([(r["id"], r["webhook"], r["type"], r["case"] or "-", r["status"],
                r["attempts"], minute(r["created_at"]), r["last_error"] or "")
               for r in rows],
              ["ID", "WEBHOOK", "EVENT", "CASE", "STATUS", "TRIES", "CREATED", "LAST ERROR"])
    return 0


def _view(row: WebhookDelivery, number: int | None) -> dict[str, Any]:
    return {"id": row.id, "webhook": row.webhook, "webhook_id": row.message_id,
            "type": row.event_type, "case": f"{number:08d}" if number else None,
            "status": row.status, "attempts": row.attempts,
            "created_at": row.created_at.isoformat(),
            "next_attempt_at": row.next_attempt_at.isoformat(),
            "sent_at": row.sent_at.isoformat() if row.sent_at else None,
            "last_error": row.last_error}


def cmd_retry(args: argparse.Namespace) -> int:
    with changing(args) as (app, session):
        now = app.clock()
        rows = {row.id: row for row in session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.id.in_(args.ids)))}
        missing = [str(i) for i in args.ids if i not in rows]
        if missing:
            raise UserError(f"no webhook delivery {', '.join(missing)}")
        sent = [str(i) for i, row in rows.items() if row.status == "sent"]
        if sent:
            raise UserError(f"delivery {', '.join(sent)} was delivered already")
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(args.ids))
                        .values(status="pending", next_attempt_at=now,
                                deadline_at=now + _renewal(app, rows)))
    print(f"{len(args.ids)} deliver{'y' if len(args.ids) == 1 else 'ies'} queued again")
    return 0


def _renewal(app: App, rows: dict[int, WebhookDelivery]) -> timedelta:
    """A retried delivery gets its webhook's whole deadline again (the longest)."""
    hours = {hook.name: hook.deadline_hours for hook in app.settings.webhook}
    return timedelta(hours=max((hours.get(r.webhook, 24.0) for r in rows.values()),
                               default=24.0))
