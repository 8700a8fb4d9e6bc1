"""Operator commands on the store: db upgrade, ingest, import, process, inbound
list|replay|release (``inbound raw``: cli.files)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer
from tqdm import tqdm

from mailcase.app import App
from mailcase.cli import files
from mailcase.cli.common import (
    EXIT_DATAERR,
    EXIT_TEMPFAIL,
    EXIT_USER,
    UsageError,
    UserError,
    changing,
    opened,
    positive_int,
    schema_revision,
    settings_of,
)
from mailcase.cli.output import capped, emit_json, table
from mailcase.intake import importer
from mailcase.intake.accept import TooLarge, return_path
from mailcase.store import migrate
from mailcase.store.models import InboundMail

log = logging.getLogger("mailcase")

REPLAYABLE = ("parked", "dropped", "held")


def register(commands: Any) -> None:
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_commands.add_parser("upgrade", help="migrate to the current schema").set_defaults(
        handler=cmd_db_upgrade
    )

    ingest = commands.add_parser(
        "ingest", help="store one mail from a file or stdin (for an MTA pipe); exit 75 = retry"
    )
    ingest.add_argument("file", nargs="?", default="-", help="the mail (default: stdin)")
    ingest.add_argument("--sender", help="envelope sender (MAIL FROM; empty for the null "
                        "sender); default: the Return-Path header, else unknown")
    ingest.add_argument("--recipient", action="append", default=[],
                        help="envelope recipient (repeatable)")
    ingest.set_defaults(handler=cmd_ingest)

    archive = commands.add_parser(
        "import", help="import an mbox file or a Maildir (idempotent: run it again safely)")
    archive.add_argument("path", help="an mbox file or a Maildir folder")
    archive.set_defaults(handler=cmd_import)

    process = commands.add_parser("process", help="process pending inbound and due outbound once")
    process.set_defaults(handler=cmd_process)

    inbound = commands.add_parser("inbound", help="the intake queue: list, replay parked mail")
    inbound_commands = inbound.add_subparsers(dest="inbound_command", metavar="ACTION",
                                              required=True)
    listing = inbound_commands.add_parser("list", help="list inbound mail")
    listing.add_argument("--status", choices=("pending", "processed", "dropped", "parked",
                                              "held"),
                         help="only mail with this status")
    listing.add_argument("--held", action="store_const", const="held", dest="status",
                         help="only replies held for review (the same as --status held)")
    listing.add_argument("--limit", type=positive_int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_inbound_list)
    replay = inbound_commands.add_parser("replay", help="process parked or dropped mail again")
    replay.add_argument("ids", nargs="*", type=positive_int, metavar="ID")
    replay.add_argument("--all-parked", action="store_true", help="replay every parked mail")
    replay.add_argument("--skip-screening", action="store_true",
                        help="treat the mail as written by a person (for mail wrongly dropped "
                             "as automatic)")
    replay.set_defaults(handler=cmd_inbound_replay)
    release = inbound_commands.add_parser(
        "release", help="let held replies join their case (as comments, without commands)")
    release.add_argument("ids", nargs="+", type=positive_int, metavar="ID")
    release.set_defaults(handler=cmd_inbound_release)
    files.register_raw(inbound_commands)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    app = App.build(settings, create_secret=schema_revision(settings) is None)
    try:
        before, after = migrate.upgrade(app.engine)
    finally:
        app.close()
    print(f"database already at {after}" if before == after
          else f"database upgraded from {before or 'empty'} to {after}")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    """Store one mail; every failure but a permanent one exits 75 so the MTA retries."""
    try:
        raw = sys.stdin.buffer.read() if args.file == "-" else _read(args.file)
        with opened(args) as app:
            sender = args.sender if args.sender is not None else return_path(raw)
            accepted = app.intake.accept(raw, mail_from=sender, rcpt_to=args.recipient,
                                         source="ingest")
            outcome = _process_now(app, accepted.id)
            app.doorbell.ring()  # the answers it queued leave now
    except TooLarge as exc:
        print(f"mailcase: {exc}", file=sys.stderr)
        return EXIT_DATAERR
    except Exception as exc:  # noqa: BLE001 - whatever kept it from the store, the MTA retries
        reason = " ".join(str(exc).split()) or type(exc).__name__
        print(f"mailcase: temporary failure, not stored: {reason}", file=sys.stderr)
        return EXIT_TEMPFAIL
    duplicate = " (duplicate)" if accepted.duplicate else ""
    print(f"stored as inbound {accepted.id}{duplicate}; {outcome}")
    return 0


def _process_now(app: App, inbound_id: int) -> str:
    """Process the stored mail at once; it is safe in the store whatever happens here."""
    try:
        status = app.processor.process(inbound_id)
    except Exception as exc:  # noqa: BLE001 - stored is stored; the daemon retries later
        log.warning("inbound %s stored, processing deferred: %s", inbound_id, exc)
        return "processing deferred"
    return f"status {status}"


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def cmd_import(args: argparse.Namespace) -> int:
    """Import an archive with a progress bar (on a terminal) and a summary line."""
    bars: dict[str, tqdm[None]] = {}

    def progress(phase: str, done: int, total: int) -> None:
        bar = bars.get(phase)
        if bar is None:
            bar = bars[phase] = tqdm(total=total, desc=phase, unit="mail", file=sys.stderr,
                                     disable=None, leave=True)
        bar.update(done - bar.n)

    with opened(args) as app:
        try:
            summary = importer.run(
                app.intake, app.readers, lambda tick: app.processor.drain(progress=tick),
                Path(args.path), progress)
            app.doorbell.ring()
        except importer.ArchiveError as exc:
            raise UserError(str(exc)) from None
        finally:
            for bar in bars.values():
                bar.close()
    print(f"imported {args.path}: {summary.line()}")
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    """Drain the inbound queue, run the due sweeps (escalation, reminders, auto-close),
    then drain the outbox; exit 1 when a message failed, so a cron job notices."""
    with opened(args) as app:
        inbound = app.processor.drain()
        swept = app.sweeps.run()
        outbound = app.sender.drain()
        hooks = app.webhook_sender.drain()
    print(f"inbound: {_counts(inbound)}; cases: {_counts(swept)}; outbound: "
          f"{_counts(outbound)}" + (f"; webhooks: {_counts(hooks)}" if hooks else ""))
    failed = inbound["pending"] + inbound["parked"] + outbound["failed"]
    if failed:
        print(f"mailcase: {failed} message(s) failed; see the log and 'mailcase inbound list'",
              file=sys.stderr)
    return EXIT_USER if failed else 0


def _counts(outcomes: Counter[str]) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(outcomes.items())) or "nothing to do"


def cmd_inbound_list(args: argparse.Namespace) -> int:
    with opened(args) as app, app.readers() as session:
        query = (select(InboundMail).options(defer(InboundMail.raw))
                 .order_by(InboundMail.id.desc()).limit(args.limit + 1))
        if args.status:
            query = query.where(InboundMail.status == args.status)
        rows = [_inbound_view(r) for r in capped(list(session.scalars(query)), args.limit,
                                                 "inbound mails")]
    if args.json:
        emit_json(rows)
    else:
        table([(r["id"], r["status"], r["received_at"][:19], r["source"], r["attempts"],
                r["case"] and f"{r['case']} ({r['result']})", r["message_id"],
                r["outcome"] or r["last_error"]) for r in rows],
              ["ID", "STATUS", "RECEIVED", "SOURCE", "TRIES", "CASE", "MESSAGE-ID", "NOTE"])
    return 0


def _inbound_view(row: InboundMail) -> dict[str, Any]:
    return {
        "id": row.id, "status": row.status, "received_at": row.received_at.isoformat(),
        "source": row.source, "mail_from": row.mail_from, "rcpt_to": row.rcpt_to,
        "message_id": row.message_id, "size": row.size, "attempts": row.attempts,
        "case": row.case.display_number if row.case else None,
        "result": ("opened case" if row.opened_case else "comment") if row.case else None,
        "outcome": row.outcome,
        "last_error": row.last_error,
        "released": row.released,
    }


def _requeue(session: Session, ids: list[int], allowed: tuple[str, ...], verb: str,
             now: datetime) -> list[InboundMail]:
    """The inbound rows ``ids`` (all must exist and have an ``allowed`` status), pending
    again from ``now`` with a fresh count of attempts."""
    rows = session.scalars(select(InboundMail).where(InboundMail.id.in_(ids))).all()
    missing = set(ids) - {r.id for r in rows}
    if missing:
        raise UserError(f"no inbound mail {min(missing)}")
    for row in rows:
        if row.status not in allowed:
            raise UserError(f"inbound {row.id} is {row.status}; only {' or '.join(allowed)} "
                            f"mail can be {verb}")
        row.status, row.attempts, row.outcome, row.next_attempt_at = "pending", 0, None, now
    return list(rows)


def cmd_inbound_replay(args: argparse.Namespace) -> int:
    if bool(args.ids) == args.all_parked:
        raise UsageError("name the inbound mail to replay (IDs) or give --all-parked, "
                         "one or the other")
    with changing(args) as (app, session):
        ids = (session.scalars(select(InboundMail.id).where(InboundMail.status == "parked"))
               .all() if args.all_parked else args.ids)
        rows = _requeue(session, list(ids), REPLAYABLE, "replayed", app.clock())
        for row in rows:
            row.skip_screening = args.skip_screening
        session.flush()
        pending = session.scalar(select(func.count()).select_from(InboundMail)
                                 .where(InboundMail.status == "pending"))
    print(f"queued {len(rows)} mail for processing again ({pending} pending in all); "
          "'mailcase process' or the running daemon will take them")
    return 0


def cmd_inbound_release(args: argparse.Namespace) -> int:
    """Queue held replies again with the operator's release: each joins the case it
    found as a comment; its commands are still refused (a release proves no writer)."""
    with changing(args) as (app, session):
        for row in _requeue(session, args.ids, ("held",), "released", app.clock()):
            row.released = True
    print(f"released {len(args.ids)} held mail; 'mailcase process' or the running daemon "
          "will add them to their cases")
    return 0
