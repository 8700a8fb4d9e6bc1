"""Outbound commands: ``outbox list|retry`` and the addresses bounces made undeliverable."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from mailcase.cli.common import UserError, changing, opened, positive_int
from mailcase.cli.output import capped, emit_json, table
from mailcase.outbound.outbox import UNDELIVERABLE
from mailcase.store.models import Bounce, OutboundMail, RecipientStatus

STATUSES = ("pending", "sent", "failed")


def register(commands: Any) -> None:
    outbox = commands.add_parser("outbox", help="outbound mail: list, retry, undeliverable")
    actions = outbox.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="outbound mail, newest first")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--limit", type=positive_int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)

    retry = actions.add_parser("retry", help="send a failed (or waiting) mail again now")
    retry.add_argument("ids", nargs="+", type=positive_int, metavar="ID")
    retry.set_defaults(handler=cmd_retry)

    blocked = actions.add_parser("undeliverable",
                                 help="addresses a hard bounce stopped mail to, with why")
    blocked.add_argument("--json", action="store_true")
    blocked.set_defaults(handler=cmd_undeliverable)

    clear = actions.add_parser("clear", help="mail an undeliverable address again")
    clear.add_argument("addresses", nargs="+", metavar="ADDRESS")
    clear.set_defaults(handler=cmd_clear)


def _view(row: OutboundMail, bounce: Bounce | None) -> dict[str, Any]:
    return {
        "id": row.id, "status": row.status, "kind": row.kind,
        "case": f"{row.case.number:08d}" if row.case else None, "rcpt_to": row.rcpt_to,
        "mail_from": row.mail_from, "message_id": row.message_id, "attempts": row.attempts,
        "created_at": row.created_at.isoformat(),
        "next_attempt_at": row.next_attempt_at.isoformat() if row.status == "pending" else None,
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "last_error": row.last_error,
        # A relay's 250 is not delivery: a bounce that came back for the mail says so.
        "bounce": None if bounce is None else {
            "permanent": bounce.permanent, "status": bounce.status,
            "diagnostic": bounce.diagnostic, "at": bounce.created_at.isoformat()},
    }


def _bounces(session: Session, rows: list[OutboundMail]) -> dict[int, Bounce]:
    """The latest bounce recorded against each of ``rows``, by outbound id."""
    found = session.scalars(select(Bounce).where(
        Bounce.outbound_id.in_([r.id for r in rows])).order_by(Bounce.id)).all()
    return {b.outbound_id: b for b in found if b.outbound_id is not None}


def _status(view: dict[str, Any]) -> str:
    bounce = view["bounce"]
    if bounce is None:
        return str(view["status"])
    return f"{view['status']}, {'bounced' if bounce['permanent'] else 'soft bounce'}"


def cmd_list(args: argparse.Namespace) -> int:
    with opened(args) as app, app.readers() as session:
        query = (select(OutboundMail).options(defer(OutboundMail.raw))
                 .order_by(OutboundMail.id.desc()).limit(args.limit + 1))
        if args.status:
            query = query.where(OutboundMail.status == args.status)
        listed = capped(list(session.scalars(query)), args.limit, "outbound mails")
        bounces = _bounces(session, listed)
        rows = [_view(r, bounces.get(r.id)) for r in listed]
    if args.json:
        emit_json(rows)
        return 0
    table([(r["id"], _status(r), r["kind"], r["case"], r["rcpt_to"], r["attempts"],
            r["sent_at"] or r["next_attempt_at"] or "",
            r["last_error"] or (r["bounce"] or {}).get("diagnostic")) for r in rows],
          ["ID", "STATUS", "KIND", "CASE", "TO", "TRIES", "SENT/NEXT", "LAST ERROR"])
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    """Queue mail again: due now, attempts reset, a fresh delivery deadline."""
    with changing(args) as (app, session):
        rows = session.scalars(select(OutboundMail).where(OutboundMail.id.in_(args.ids))).all()
        missing = set(args.ids) - {r.id for r in rows}
        if missing:
            raise UserError(f"no outbound mail {min(missing)}")
        sent = [r.id for r in rows if r.status == "sent"]
        if sent:
            raise UserError(f"outbound {sent[0]} was sent already; retrying would send it twice")
        now = app.clock()
        deadline = timedelta(hours=app.settings.outbound.retry_deadline_hours)
        for row in rows:
            row.status, row.attempts, row.next_attempt_at = "pending", 0, now
            row.deadline_at = now + deadline
    print(f"queued {len(rows)} mail(s) to be sent again")
    return 0


def cmd_undeliverable(args: argparse.Namespace) -> int:
    with opened(args) as app, app.readers() as session:
        rows = [{"email": r.email, "reason": r.reason, "soft_bounces": r.soft_bounces,
                 "last_bounce_at": r.last_bounce_at.isoformat() if r.last_bounce_at else None}
                for r in session.scalars(select(RecipientStatus)
                                         .where(RecipientStatus.undeliverable.is_(True))
                                         .order_by(RecipientStatus.email))]
    if args.json:
        emit_json(rows)
    else:
        table([(r["email"], r["last_bounce_at"], r["reason"]) for r in rows],
              ["ADDRESS", "LAST BOUNCE", "REASON"])
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    addresses = [a.strip().lower() for a in args.addresses]
    with changing(args) as (app, session):
        rows = session.scalars(select(RecipientStatus).where(
            RecipientStatus.email.in_(addresses), RecipientStatus.undeliverable.is_(True))).all()
        unknown = set(addresses) - {r.email for r in rows}
        if unknown:
            raise UserError(f"{min(unknown)} is not marked undeliverable")
        for row in rows:
            row.undeliverable, row.reason, row.soft_bounces = False, None, 0
        held = session.scalars(select(OutboundMail).where(
            OutboundMail.rcpt_to.in_(addresses), OutboundMail.status == "failed",
            OutboundMail.last_error == UNDELIVERABLE)).all()
        now = app.clock()
        for mail in held:  # what was held back only because of the mark goes out now
            mail.status, mail.attempts, mail.next_attempt_at = "pending", 0, now
            mail.deadline_at = now + timedelta(hours=app.settings.outbound.retry_deadline_hours)
    print(f"mailcase will mail {', '.join(addresses)} again"
          + (f"; {len(held)} held mail(s) queued again" if held else "")
          + "; mail skipped while it was marked is not sent (each case's history lists it)")
    return 0
