"""``mailcase mailboxes``: each configured mailbox, how mail reaches it, how polling goes."""

from __future__ import annotations

import argparse
from typing import Any

from mailcase.cli.common import opened
from mailcase.cli.output import emit_json, table


def register(commands: Any) -> None:
    mailboxes = commands.add_parser(
        "mailboxes", help="the configured mailboxes and the health of their IMAP polling")
    mailboxes.add_argument("--json", action="store_true")
    mailboxes.set_defaults(handler=cmd_mailboxes)


def cmd_mailboxes(args: argparse.Namespace) -> int:
    """One row per mailbox: a quiet mailbox shows a recent good poll, a stalled poller an
    old one and its failures in a row."""
    with opened(args) as app:
        polls = {row.address: row for row in app.polls.all()}
        now = app.clock()
        rows: list[dict[str, Any]] = []
        for mailbox in app.settings.mailbox:
            imap = mailbox.imap
            poll = polls.get(mailbox.address)
            last = poll.last_success_at if poll else None
            rows.append({
                "address": mailbox.address,
                "intake": (f"imap {imap.username}@{imap.host}:{imap.port}/{imap.folder}"
                           if imap else "smtp"),
                "last_poll_at": last.isoformat() if last else None,
                "last_poll_age_seconds": round((now - last).total_seconds()) if last else None,
                "failures_in_a_row": poll.failures if poll else 0,
                "last_error": poll.last_error if poll and poll.failures else None,
            })
    if args.json:
        emit_json(rows)
    else:
        table([(r["address"], r["intake"], _when(r), r["failures_in_a_row"], r["last_error"])
               for r in rows],
              ["MAILBOX", "INTAKE", "LAST GOOD POLL", "FAILURES", "LAST ERROR"])
    return 0


def _when(row: dict[str, Any]) -> str | None:
    if row["last_poll_at"] is None:
        return None
    return f"{row['last_poll_at'][:19]} ({row['last_poll_age_seconds']} s ago)"
