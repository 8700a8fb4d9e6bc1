"""Agent commands: ``cases list|search|show|new|clone|reply|note|update|close|reopen|merge|
attachment``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mailcase.cases import searchindex
from mailcase.cases.book import parse_number
from mailcase.cases.desk import Desk, NewCase
from mailcase.cases.files import NewFile
from mailcase.cases.finder import CaseFilter
from mailcase.cases.search import MAX_LIMIT
from mailcase.cli import files
from mailcase.cli.common import UsageError, opened, positive_int, read_text_arg
from mailcase.cli.output import capped, emit_json, indent, minute, shown, table, tell_more
from mailcase.config import Duration


def register(commands: Any) -> None:
    cases = commands.add_parser("cases", help="list, read and work on cases")
    actions = cases.add_subparsers(dest="cases_command", metavar="ACTION", required=True)

    _register_list(actions)
    _register_search(actions)

    show = actions.add_parser("show", help="one case with its comments")
    show.add_argument("number")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.add_argument("--as", dest="author", metavar="EMAIL",
                      help="the agent reading: the owner's reading marks the case read")
    show.set_defaults(handler=cmd_show)

    _register_new(actions)
    files.register_attachment(actions)

    clone = actions.add_parser("clone", help="a new case with this one's contact, fields "
                               "and collaborators (not its comments)")
    clone.add_argument("number")
    clone.add_argument("--subject", help="the new case's subject (default: the same)")
    _author(clone)
    clone.set_defaults(handler=cmd_clone)

    merge = actions.add_parser("merge", help="close a case as merged into another, which "
                               "gets its comments, files, people and later mail")
    merge.add_argument("source")
    merge.add_argument("--into", required=True, metavar="TARGET", help="the case that stays")
    _author(merge)
    merge.set_defaults(handler=cmd_merge)

    for name, help_text in (("reply", "answer the customer (mailed, public comment)"),
                            ("note", "add an internal note (never mailed to the customer)")):
        parser = actions.add_parser(name, help=help_text)
        parser.add_argument("number")
        text = parser.add_mutually_exclusive_group(required=True)
        text.add_argument("--body", help="the text")
        text.add_argument("--body-file", metavar="PATH",
                          help="read the text from a file (- for stdin)")
        parser.add_argument("--attach", action="append", default=[], metavar="FILE",
                            help="a file to go with it, at most attachments.max_size "
                                 "(repeatable)")
        _author(parser)
        parser.set_defaults(handler=cmd_reply if name == "reply" else cmd_note)
        if name == "reply":
            parser.add_argument(
                "--hold", action=argparse.BooleanOptionalAction, default=None,
                help="put the case on hold ([cases] hold_status): it waits on the customer; "
                     "--no-hold keeps its status (default: as the mailbox's hold_on_reply)")

    update = actions.add_parser("update", help="change status, priority or owner")
    update.add_argument("number")
    update.add_argument("--status")
    update.add_argument("--priority", help="High, Medium or Low")
    update.add_argument("--owner", help="an agent's address, queue:NAME, or 'none'")
    update.add_argument("--parent", metavar="NUMBER", help="the parent case, or 'none'")
    _author(update)
    update.set_defaults(handler=cmd_update)

    close = actions.add_parser("close", help="close a case with a resolution")
    close.add_argument("number")
    close.add_argument("--resolution", required=True, help="what solved it")
    _author(close)
    close.set_defaults(handler=cmd_close)

    reopen = actions.add_parser("reopen", help="reopen a closed case")
    reopen.add_argument("number")
    _author(reopen)
    reopen.set_defaults(handler=cmd_reopen)


def _register_list(actions: Any) -> None:
    listing = actions.add_parser("list", help="list cases, newest first")
    listing.add_argument("--status", help="only cases in this status")
    listing.add_argument("--open", action="store_true", help="only cases that are not closed")
    whose = listing.add_mutually_exclusive_group()
    whose.add_argument("--owner", metavar="EMAIL", help="only cases this agent owns")
    whose.add_argument("--queue", metavar="NAME", help="only cases of this queue")
    whose.add_argument("--unassigned", action="store_true", help="only cases nobody owns")
    clock = listing.add_mutually_exclusive_group()
    clock.add_argument("--due", dest="clock", action="store_const", const="due",
                       help="only open cases with a service target running, soonest due "
                            "first")
    clock.add_argument("--escalated", dest="clock", action="store_const", const="escalated",
                       help="only cases marked escalated")
    clock.add_argument("--breached", dest="clock", action="store_const", const="breached",
                       help="only cases with a target overdue and not yet met")
    listing.add_argument("--limit", type=positive_int, default=50,
                         help="at most this many (default 50)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_list)


def _register_search(actions: Any) -> None:
    search = actions.add_parser(
        "search", help="find cases by words, \"phrases\", prefix*, an address or a domain",
        description="Cases whose subject, description, comments (internal notes too) or "
                    "senders hold every word, best match first, then newest.")
    search.add_argument("query", help='what to look for: printer toner, "on fire", '
                                      "print*, ann@customer.org, @customer.org")
    search.add_argument("--open", action="store_true", help="only cases that are not closed")
    search.add_argument("--limit", type=positive_int, default=20,
                        help=f"at most this many (default 20, at most {MAX_LIMIT})")
    search.add_argument("--json", action="store_true", help="print JSON")
    search.set_defaults(handler=cmd_search)


def _register_new(actions: Any) -> None:
    new = actions.add_parser("new", help="open a case by hand (a call, a visit)")
    new.add_argument("--email", required=True, help="the contact's address")
    new.add_argument("--subject", required=True)
    text = new.add_mutually_exclusive_group()
    text.add_argument("--body", help="the description")
    text.add_argument("--body-file", metavar="PATH",
                      help="read the description from a file (- for stdin)")
    new.add_argument("--origin", default="Phone", help="where it came from (default Phone)")
    new.add_argument("--priority", default="Medium", help="High, Medium (default) or Low")
    new.add_argument("--parent", metavar="NUMBER", help="the parent case")
    new.add_argument("--notify-contact", action="store_true",
                     help="mail the contact the acknowledgement, with their reply address")
    new.add_argument("--close", action="store_true",
                     help="close it at once (solved on the call); needs --resolution")
    new.add_argument("--resolution", help="what solved it, with --close")
    new.add_argument("--assign-using-rules", action="store_true",
                     help="give it an owner as if it had come by mail (assignment rules, "
                          "the mailbox's owner, the default owner); the owner is alerted")
    _author(new)
    new.set_defaults(handler=cmd_new)


def _author(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as", dest="author", metavar="EMAIL",
                        help="the agent acting (default: the first mailbox)")


@contextmanager
def _desk(args: argparse.Namespace) -> Iterator[Desk]:
    with opened(args) as app:
        yield app.desk()


def cmd_list(args: argparse.Namespace) -> int:
    with _desk(args) as desk:
        wanted = CaseFilter(status=args.status, open_only=args.open, owner=args.owner,
                            queue=args.queue, unassigned=args.unassigned, clock=args.clock)
        rows = capped(desk.list(wanted, args.limit + 1), args.limit, "cases")
    if args.json:
        emit_json(rows)
        return 0
    table([(r["number"], r["status"], r["priority"], minute(r["created_at"]),
            minute(r["due_at"]) or "-", r["supplied_email"], r["owner"] or "-", r["subject"])
           for r in rows],
          ["NUMBER", "STATUS", "PRIORITY", "CREATED", "DUE", "FROM", "OWNER", "SUBJECT"])
    return 0



def cmd_search(args: argparse.Namespace) -> int:
    with _desk(args) as desk:
        page = desk.search(args.query, limit=args.limit, open_only=args.open)
    if page.next_cursor is not None:
        tell_more(args.limit, "matches", order="best")
    if page.limited:
        window = searchindex.CANDIDATES
        print(f"mailcase: every word is in {searchindex.WHOLE:,} texts or more, so only the "
              f"newest {window:,} case texts and {window:,} comments holding each were "
              "searched; add a rarer word, an address or an order number to reach older "
              "cases", file=sys.stderr)
    if args.json:
        emit_json(page.rows)
        return 0
    for row in page.rows:
        print(shown(f"{row['number']}  [{row['status']}]  {minute(row['created_at'])}  "
                    f"{row['supplied_email'] or '-'}  matched: {', '.join(row['matched'])}",
                    lines=False))
        print(indent(shown(row["subject"], lines=False)))
        print(indent(shown(row["snippet"], lines=False)) + "\n")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with _desk(args) as desk:
        case = desk.show(parse_number(args.number),
                         viewer=desk.author(args.author).email if args.author else None)
    if args.json:
        emit_json(case)
    else:
        print(shown(_render(case)))
    return 0


def _render(case: dict[str, Any]) -> str:
    lines = [
        f"Case {case['number']}  [{case['status']}]  priority {case['priority']}  "
        f"origin {case['origin']}",
        f"Subject:  {case['subject']}",
        f"From:     {_person(case['supplied_name'], case['supplied_email'])}",
        f"Owner:    {case['owner'] or '-'}    Parent: {case['parent'] or '-'}"
        f"    Children: {', '.join(case['children']) or '-'}",
        f"Created:  {case['created_at']}    Closed: {case['closed_at'] or '-'}",
    ]
    if case["supplied_company"] or case["supplied_phone"]:
        lines.append(f"Company:  {case['supplied_company'] or '-'}    "
                     f"Phone: {case['supplied_phone'] or '-'}")
    if case["merged_into"]:
        lines.append(f"Merged into: {case['merged_into']} (its mail goes there)")
    if case["sender_auth"]:
        lines.append(f"Sender:   {case['sender_auth']}")
    if case["resolution"]:
        lines.append(f"Resolution: {case['resolution']}")
    if case["collaborators"]:
        lines.append("Collaborators: " + ", ".join(c["email"] for c in case["collaborators"]))
    lines += _clock_lines(case)
    lines += ["", "Description:", indent(case["description"] or "(empty)")]
    lines += [_file_line(a) for a in case["attachments"]]
    for index, comment in enumerate(case["comments"], 1):
        kind = "public" if comment["public"] else "INTERNAL"
        lines += ["", f"#{index}  {comment['created_at']}  {comment['author'] or '-'}  ({kind})"]
        if comment["sender_auth"]:
            lines.append(f"    sender {comment['sender_auth']}")
        lines.append(indent(comment["body"]))
        lines += [_file_line(a) for a in comment["attachments"]]
    if case["events"]:
        lines += ["", "History:"]
        lines += [f"  {(e['at'] or '')[:19]}  {e['actor'] or 'mailcase'}  {e['summary']}"
                  for e in case["events"]]
    return "\n".join(lines)


def _file_line(attachment: dict[str, Any]) -> str:
    """A file under its text: its ID for `cases attachment`, or why it cannot be had."""
    kept = "" if attachment["stored"] else ", over attachments.max_size: only in its mail"
    return (f"    [file {attachment['id']}] {attachment['filename']} "
            f"({attachment['content_type']}, {attachment['size']} bytes{kept})")


def _clock_lines(case: dict[str, Any]) -> list[str]:
    """The service targets and the frozen times, for ``cases show``."""
    lines = []
    if case["sla"] or case["targets"]:
        lines.append(f"Targets ({case['sla'] or 'no rule now'}"
                     f"{', escalated' if case['is_escalated'] else ''}):")
        lines += [f"    {t['name'].replace('_', ' '):<15} {t['target']:>6}  due "
                  f"{minute(t['due_at'])} UTC  {t['state']}"
                  + (f" {minute(t['met_at'])} UTC" if t["met_at"] else "")
                  for t in case["targets"]]
    for key, label in (("first_response_seconds", "First response"),
                       ("resolution_seconds", "Resolution")):
        if case[key] is not None:
            lines.append(f"{label}: {_span(case[key])} "
                         f"({_span(case['business_' + key])} business time)")
    return lines


def _span(seconds: int) -> str:
    """Seconds as people read a span: ``1d2h5m``."""
    return str(Duration(*divmod(seconds, 86400)))


def _person(name: str | None, email: str | None) -> str:
    return f"{name} <{email}>" if name else (email or "-")


def cmd_new(args: argparse.Namespace) -> int:
    if args.close != (args.resolution is not None):
        raise UsageError("--close needs --resolution TEXT (what solved it), and --resolution "
                         "goes with --close")
    given = args.body is not None or args.body_file is not None
    request = NewCase(
        email=args.email, subject=args.subject,
        body=read_text_arg(args.body, args.body_file) if given else "",
        origin=args.origin, priority=args.priority,
        parent=parse_number(args.parent) if args.parent is not None else None,
        notify_contact=args.notify_contact, resolution=args.resolution,
        assign_using_rules=args.assign_using_rules,
    )
    with _desk(args) as desk:
        opened_case = desk.new(request, desk.author(args.author))
    closed = " and closed" if args.close else ""
    print(f"case {opened_case.number:08d} opened{closed}; {opened_case.queued} mail(s) queued")
    return 0


def cmd_clone(args: argparse.Namespace) -> int:
    number = parse_number(args.number)
    with _desk(args) as desk:
        clone = desk.clone(number, args.subject, desk.author(args.author))
    print(f"case {clone:08d} cloned from {number:08d}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    source, target = parse_number(args.source), parse_number(args.into)
    with _desk(args) as desk:
        merged, queued = desk.merge(source, target, desk.author(args.author))
    print(f"case {source:08d} merged into {target:08d}: {merged.comments} comment(s) and "
          f"{merged.files} file(s) moved, {len(merged.collaborators)} collaborator(s) "
          f"added; {queued} mail(s) queued")
    if merged.left_out:
        print("not added, the case has the most collaborators it can: "
              + ", ".join(merged.left_out))
    return 0


def cmd_reply(args: argparse.Namespace) -> int:
    body = read_text_arg(args.body, args.body_file)
    number = parse_number(args.number)
    with _desk(args) as desk:
        author = desk.author(args.author)
        attached = files.read_files(args.attach, desk.settings.attachments.max_size)
        queued = desk.reply(number, body, author, hold=args.hold, files=attached)
    print(f"reply recorded on case {number:08d}{_with(attached)}; {queued} mail(s) queued")
    return 0


def cmd_note(args: argparse.Namespace) -> int:
    body = read_text_arg(args.body, args.body_file)
    number = parse_number(args.number)
    with _desk(args) as desk:
        author = desk.author(args.author)
        attached = files.read_files(args.attach, desk.settings.attachments.max_size)
        desk.note(number, body, author, files=attached)
    print(f"internal note recorded on case {number:08d}{_with(attached)}")
    return 0


def _with(attached: list[NewFile]) -> str:
    return f" with {len(attached)} file(s)" if attached else ""


def cmd_update(args: argparse.Namespace) -> int:
    if (args.status is None and args.priority is None and args.owner is None
            and args.parent is None):
        raise UsageError("give what to change: --status, --priority, --owner or --parent")
    with _desk(args) as desk:
        desk.update(parse_number(args.number), status=args.status, priority=args.priority,
                    owner=args.owner, parent=args.parent, author=desk.author(args.author))
    print(f"case {parse_number(args.number):08d} updated")
    return 0


def cmd_close(args: argparse.Namespace) -> int:
    with _desk(args) as desk:
        desk.close(parse_number(args.number), args.resolution, desk.author(args.author))
    print(f"case {parse_number(args.number):08d} closed")
    return 0


def cmd_reopen(args: argparse.Namespace) -> int:
    with _desk(args) as desk:
        desk.reopen(parse_number(args.number), desk.author(args.author))
    print(f"case {parse_number(args.number):08d} reopened")
    return 0
