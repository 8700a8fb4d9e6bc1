"""``collaborators add|remove|list``: who is kept informed of a case, from the command line.

The same rules hold as for collaborators added by mail: at most twenty per case, and
only addresses the case's mailbox policy allows.
"""

from __future__ import annotations

import argparse
from typing import Any

from mailcase.cases.book import CaseBook, parse_number
from mailcase.cli.common import opened
from mailcase.cli.output import emit_json, table


def register(commands: Any) -> None:
    parser = commands.add_parser("collaborators", help="who is kept informed of a case")
    actions = parser.add_subparsers(dest="collaborators_command", metavar="ACTION",
                                    required=True)
    add = actions.add_parser("add", help="keep an address informed of a case")
    add.add_argument("number")
    add.add_argument("email")
    add.add_argument("--name", default="")
    add.add_argument("--as", dest="author", metavar="EMAIL", help="who adds (for the feed)")
    add.set_defaults(handler=cmd_add)
    remove = actions.add_parser("remove", help="stop informing an address")
    remove.add_argument("number")
    remove.add_argument("email")
    remove.add_argument("--as", dest="author", metavar="EMAIL")
    remove.set_defaults(handler=cmd_remove)
    listing = actions.add_parser("list", help="a case's collaborators")
    listing.add_argument("number")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)


def cmd_add(args: argparse.Namespace) -> int:
    number = parse_number(args.number)
    with opened(args) as app:
        desk = app.desk()
        added = desk.add_collaborator(number, args.email, args.name,
                                      desk.author(args.author) if args.author else None)
    email = args.email.strip().lower()
    print(f"{email} {'added to' if added else 'already collaborates on'} case {number:08d}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    number = parse_number(args.number)
    with opened(args) as app:
        desk = app.desk()
        desk.remove_collaborator(number, args.email,
                                 desk.author(args.author) if args.author else None)
    print(f"{args.email.lower()} removed from case {number:08d}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    number = parse_number(args.number)
    with opened(args) as app, app.readers() as session:
        case = CaseBook(session, app.settings.cases, app.clock()).get(number, lock=False)
        rows = [{"email": c.email, "name": c.name, "added_by": c.added_by,
                 "created_at": c.created_at.isoformat()} for c in case.collaborators]
    if args.json:
        emit_json(rows)
    else:
        table([(r["email"], r["name"], r["added_by"], str(r["created_at"])[:16]) for r in rows],
              ["EMAIL", "NAME", "ADDED BY", "ADDED"])
    return 0
