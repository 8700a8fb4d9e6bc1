"""Files in and out on the command line: ``cases attachment``, ``inbound raw``, and the
``--attach`` files of ``cases reply|note``.

Bytes go where the user names them and nowhere else: to the PATH of ``-o`` as given; into
a folder given as ``-o`` under the file's stored name (cleaned when it came: no folders,
no control characters), never over anything already there; or to stdout when it is a
pipe or a file. A terminal is refused: a file's bytes would drive it (see cli.output).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mailcase.cases.book import parse_number
from mailcase.cases.errors import CaseError
from mailcase.cases.files import NewFile, StoredFile, refuse_size
from mailcase.cli.common import UsageError, UserError, opened, positive_int
from mailcase.cli.output import shown

OUTPUT_HELP = ("write it to PATH; when PATH is a folder, to the file's own name in it "
               "(never over an existing file). Default: stdout, unless it is a terminal")


def register_attachment(actions: Any) -> None:
    """``cases attachment NUMBER ID [-o PATH]``."""
    attachment = actions.add_parser(
        "attachment", help="write out a file of a case (its ID as `cases show --json` "
                           "lists it)")
    attachment.add_argument("number")
    attachment.add_argument("id", type=positive_int, metavar="ID")
    attachment.add_argument("-o", "--output", metavar="PATH", help=OUTPUT_HELP)
    attachment.set_defaults(handler=cmd_attachment)


def register_raw(inbound_commands: Any) -> None:
    """``inbound raw ID [-o PATH]``."""
    raw = inbound_commands.add_parser(
        "raw", help="write out an accepted mail exactly as it was stored (.eml)")
    raw.add_argument("id", type=positive_int, metavar="ID")
    raw.add_argument("-o", "--output", metavar="PATH", help=OUTPUT_HELP)
    raw.set_defaults(handler=cmd_raw)


def cmd_attachment(args: argparse.Namespace) -> int:
    number = parse_number(args.number)
    _no_terminal(args.output)
    with opened(args) as app, app.desk().attachment(number, args.id) as stored:
        where = write_out(stored, args.output)
    if where is not None:
        print(f"attachment {args.id} of case {number:08d} written to {shown(where)} "
              f"({stored.size} bytes)")
    return 0


def cmd_raw(args: argparse.Namespace) -> int:
    _no_terminal(args.output)
    with opened(args) as app, app.desk().raw_mail(args.id) as stored:
        where = write_out(stored, args.output)
    if where is not None:
        print(f"inbound {args.id} written to {shown(where)} ({stored.size} bytes)")
    return 0


def _no_terminal(output: str | None) -> None:
    if output is None and sys.stdout.isatty():
        raise UsageError("stdout is a terminal, which raw bytes would garble: give -o PATH "
                         "(or pipe the output into a file or a program)")


def write_out(stored: StoredFile, output: str | None) -> str | None:
    """Write ``stored`` to stdout (``output`` None), to the path ``output`` names, or into
    the folder it names under the file's own name; where it went (None: stdout)."""
    if output is None:
        sink = sys.stdout.buffer
        for chunk in stored.chunks:
            sink.write(chunk)
        sink.flush()
        return None
    path = Path(output)
    if path.is_dir():
        path /= stored.filename  # cleaned when stored and again when read (cases.files)
        _to_file(path, stored.chunks, overwrite=False)
    else:
        _to_file(path, stored.chunks, overwrite=True)
    return str(path)


def _to_file(path: Path, chunks: Iterable[bytes], *, overwrite: bool) -> None:
    """Write ``chunks`` to ``path``; a file this made is removed again when writing fails.
    Without ``overwrite``, anything at ``path`` (a file, a link) stops it."""
    created = True
    try:
        try:  # O_EXCL: neither an existing file nor a planted symlink is followed
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            if not overwrite:
                raise UserError(f"{shown(str(path))} exists already; not overwritten (move "
                                "it away, or name another path with -o)") from None
            fd, created = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC), False
    except OSError as exc:
        raise UserError(f"cannot write {shown(str(path))}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
    except BaseException as exc:
        if created:
            path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UserError(f"cannot write {shown(str(path))}: {exc.strerror or exc}") from None
        raise


def read_files(paths: Sequence[str], limit: int) -> list[NewFile]:
    """The files of ``--attach``, read whole: a missing, unreadable or too large one is
    refused before anything is recorded."""
    return [_read(path, limit) for path in paths]


def _read(path: str, limit: int) -> NewFile:
    try:
        with open(path, "rb") as handle:
            refuse_size(path, os.fstat(handle.fileno()).st_size, limit)
            content = handle.read(limit + 1)  # no more, whatever the file turns out to be
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(content) > limit:  # a pipe, or a file that grew
        raise CaseError(f"{path} is over the limit for a file (attachments.max_size = "
                        f"{limit}); nothing was recorded")
    return NewFile(Path(path).name, None, content)
