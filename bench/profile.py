"""Where processing spends its time: a sampling profile of ``Processor.drain``.

Run by hand, under py-spy (``pip install py-spy``)::

    py-spy record --format raw --rate 250 -o /tmp/drain.txt -- \\
        .venv/bin/python -m bench.profile drain --mails 600 --engine sqlite
    .venv/bin/python -m bench.profile summary /tmp/drain.txt > bench/profiles/NAME.txt

``drain`` accepts ``--mails`` mails of the benchmark corpus into a fresh database (not
sampled apart: the summary keeps only the samples inside ``Processor.drain``), then
processes them all in one process, in batches as the daemon does. ``summary`` turns
py-spy's collapsed stacks into each frame's inclusive share of those samples, the
project's frames first, then the libraries' heaviest.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from pathlib import Path

from bench.corpus import generate

ROOT_FRAME = "Processor.drain"
TOP_LIBRARY_FRAMES = 40

_headers = BytesHeaderParser()
_FRAME = re.compile(r"^(?P<name>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def drain(mails: int, engine: str, pg_url: str | None) -> None:
    """Accept ``mails`` corpus mails, then time processing them all."""
    from mailcase import config  # noqa: PLC0415 - the measure's own imports
    from mailcase.app import App  # noqa: PLC0415
    from mailcase.intake.accept import Incoming  # noqa: PLC0415

    folder = Path(tempfile.mkdtemp(prefix="mailcase-profile-"))
    url = pg_url if engine == "postgresql" and pg_url else f"sqlite:///{folder / 'p.db'}"
    (folder / "mailcase.toml").write_text(
        f'[database]\nurl = "{url}"\n[outbound]\ntransport = "maildir"\n'
        f'maildir = "{folder / "out"}"\n[tokens]\nsecret_file = "{folder / "secret"}"\n'
        '[[mailbox]]\naddress = "support@example.com"\nname = "Support"\n',
        encoding="utf-8")
    app = App.build(config.load(folder / "mailcase.toml"), create_secret=True)
    app.ensure_schema()
    corpus = generate(mails, seed=9)
    for first in range(0, len(corpus), 100):
        app.intake.accept_batch([
            Incoming(raw, parseaddr(str(_headers.parsebytes(raw)["From"]))[1],
                     ["support@example.com"]) for raw in corpus[first:first + 100]],
            source="profile")
    started = time.perf_counter()
    app.processor.drain()
    took = time.perf_counter() - started
    app.close()
    print(f"{mails} mails processed in {took:.2f} s: {mails / took:.0f} mails/s",
          file=sys.stderr)


def summary(raw: Path) -> str:
    """Each frame's inclusive share of the samples that pass through ROOT_FRAME."""
    inside = 0
    ours: Counter[str] = Counter()
    theirs: Counter[str] = Counter()
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        names = [_name(frame) for frame in frames]
        if not count.isdigit() or ROOT_FRAME not in [n for n, _ in names]:
            continue
        weight = int(count)
        inside += weight
        start = [n for n, _ in names].index(ROOT_FRAME)
        seen: set[str] = set()
        for name, file in names[start:]:
            label = f"{name} ({file})"
            if label in seen:
                continue
            seen.add(label)
            (ours if file.startswith("mailcase/") else theirs)[label] += weight
    lines = [f"Samples inside {ROOT_FRAME}: {inside}. Inclusive share of those samples "
             "per frame.", "", "-- mailcase --"]
    lines += [f"{100 * n / inside:5.1f}%  {label}" for label, n in ours.most_common()
              if n / inside >= 0.01]
    lines += ["", f"-- libraries (the {TOP_LIBRARY_FRAMES} heaviest) --"]
    lines += [f"{100 * n / inside:5.1f}%  {label}"
              for label, n in theirs.most_common(TOP_LIBRARY_FRAMES)]
    return "\n".join(lines) + "\n"


def _name(frame: str) -> tuple[str, str]:
    """A collapsed frame's function and file, the file from the project's or the
    site-packages' root."""
    found = _FRAME.match(frame.strip())
    if found is None:
        return frame.strip(), ""
    file = found["file"]
    for marker in ("/site-packages/", "/lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    else:
        file = file[file.find("mailcase/"):] if "mailcase/" in file else file
    return found["name"], file


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("drain", help="accept and then process corpus mails")
    run.add_argument("--mails", type=int, default=600)
    run.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    run.add_argument("--pg-url", help="an empty PostgreSQL database for --engine postgresql")
    report = commands.add_parser("summary", help="summarize py-spy's raw output")
    report.add_argument("raw", type=Path)
    args = parser.parse_args(argv)
    if args.command == "drain":
        drain(args.mails, args.engine, args.pg_url)
    else:
        sys.stdout.write(summary(args.raw))


if __name__ == "__main__":
    main()
