"""Keys for the HTTP API: ``mailcase api-keys create|list|revoke`` (the rules are in
cases.apikeys)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mailcase.cases.apikeys import SCOPES, ApiKeys
from mailcase.cli.common import changing, opened
from mailcase.cli.output import emit_json, minute, table


def register(commands: Any) -> None:
    keys = commands.add_parser("api-keys", help="keys for programs using the HTTP API")
    actions = keys.add_subparsers(dest="api_keys_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="make a key; it is shown this once")
    create.add_argument("name", help="who or what uses it (e.g. crm-sync)")
    create.add_argument("--scope", choices=SCOPES, default="read",
                        help="read (default), write (change cases too) or admin")
    create.set_defaults(handler=cmd_create)
    listing = actions.add_parser("list", help="every key, in use or revoked (never the key)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)
    revoke = actions.add_parser("revoke", help="stop a key working, at once")
    revoke.add_argument("name")
    revoke.set_defaults(handler=cmd_revoke)


def cmd_create(args: argparse.Namespace) -> int:
    with changing(args) as (app, session):
        made = ApiKeys(session, app.clock()).create(args.name, args.scope)
    print(made.text)
    print(f"mailcase: API key {made.name!r} ({made.scope}); it is not shown again: keep it "
          "now", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with opened(args) as app, app.readers() as session:
        rows: list[dict[str, Any]] = [{"name": k.name, "scope": k.scope, "key_id": k.key_id,
                 "created_at": k.created_at.isoformat(),
                 "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                 "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None}
                for k in ApiKeys(session, app.clock()).all()]
    if args.json:
        emit_json(rows)
    else:
        table([(r["name"], r["scope"], f"mck_{r['key_id']}_…", minute(r["created_at"]),
                minute(r["last_used_at"]) or "never", "revoked" if r["revoked_at"] else "")
               for r in rows], ["NAME", "SCOPE", "KEY", "CREATED", "LAST USED", ""])
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    with changing(args) as (app, session):
        key = ApiKeys(session, app.clock()).revoke(args.name)
        name = key.name
    print(f"API key {name!r} is revoked")
    return 0

