"""How well reply extractors keep only the writer's new text: mailcase's and the well-kept
libraries, side by side on the public reply corpora of tests/data and on mailcase's own.

Run by hand (not part of the test suite), in a scratch environment that has the libraries;
they are not mailcase's dependencies:

    python -m venv /tmp/replybench
    /tmp/replybench/bin/pip install -e . quotequail mail-parser-reply email_reply_parser talon
    /tmp/replybench/bin/python -m bench.replies [--output bench/replies.md] [--misses NAME]

A library that is not installed gets "not installed" in its column. Each cell is the share
of a corpus's cases whose extracted text equals the expected text exactly (LF line ends,
no trailing blanks, trimmed: tests/support/replycorpora.normalized).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from mailcase.reading import parsing, replytext
from tests.support.paths import DATA
from tests.support.replycorpora import CORPORA, ReplyCase, cases, normalized

Extractor = Callable[[str], str]


@dataclass(frozen=True)
class Sample:
    """One reply: the text an extractor reads, mailcase's own reading, and the answer."""

    case: ReplyCase
    ours: Callable[[], str]


def own_corpus() -> list[Sample]:
    """tests/data/replies: raw mails; the libraries read the text part (or the text made
    from the HTML part), mailcase reads the mail as it does in production."""
    samples = []
    for path in sorted((DATA / "replies").glob("*.eml")):
        mail = parsing.parse(path.read_bytes())
        expected = path.with_name(f"{path.stem}.expected.txt").read_text(encoding="utf-8")
        case = ReplyCase("mailcase", path.stem, mail.text, normalized(expected))
        samples.append(Sample(case, partial(replytext.comment_text, mail)))
    return samples


def public_corpus(corpus: str) -> list[Sample]:
    """A public corpus: every extractor, mailcase's included, reads the same text."""
    return [Sample(case, partial(replytext.new_text, case.body)) for case in cases(corpus)]


def _quotequail() -> Extractor:
    quotequail = importlib.import_module("quotequail")
    return lambda text: "\n".join(chunk for shown, chunk in quotequail.quote(text) if shown)


def _mail_parser_reply() -> Extractor:
    module = importlib.import_module("mailparser_reply")
    constants = importlib.import_module("mailparser_reply.constants")
    parser = module.EmailReplyParser(languages=list(constants.MAIL_LANGUAGES))
    return lambda text: str(parser.parse_reply(text))


def _email_reply_parser() -> Extractor:
    module = importlib.import_module("email_reply_parser")
    return lambda text: str(module.EmailReplyParser.parse_reply(text))


def _talon() -> Extractor:
    quotations = importlib.import_module("talon.quotations")
    return lambda text: str(quotations.extract_from_plain(text))


LIBRARIES: dict[str, Callable[[], Extractor]] = {
    "quotequail 0.5": _quotequail,
    "mail-parser-reply": _mail_parser_reply,
    "email_reply_parser (Python port)": _email_reply_parser,
    "talon quotations": _talon,
}


def misses(samples: list[Sample], extract: Callable[[Sample], str]) -> list[str]:
    """The names of the samples whose extraction is not exactly the expected text."""
    failed = []
    for sample in samples:
        try:
            text = extract(sample)
        except Exception:  # noqa: BLE001 — a library's crash is a miss, not the end of the run
            text = "\0"
        if normalized(text) != sample.case.expected:
            failed.append(sample.case.name)
    return failed


def _on_body(extractor: Extractor, sample: Sample) -> str:
    return extractor(sample.case.body)


def table(corpora: dict[str, list[Sample]], only: str | None) -> list[str]:
    """The markdown table: one row per corpus, one column per extractor, and the time."""
    columns: dict[str, Callable[[Sample], str] | None] = {"mailcase": lambda s: s.ours()}
    for name, load in LIBRARIES.items():
        try:
            extractor = load()
        except ImportError:
            columns[name] = None
            continue
        columns[name] = partial(_on_body, extractor)
    rows = ["| corpus | cases | " + " | ".join(columns) + " |",
            "|---|---|" + "---|" * len(columns)]
    for corpus, samples in corpora.items():
        cells = []
        for name, extract in columns.items():
            if extract is None:
                cells.append("not installed")
                continue
            started = time.perf_counter()
            failed = misses(samples, extract)
            seconds = time.perf_counter() - started
            matched = len(samples) - len(failed)
            cells.append(f"{matched} ({100 * matched / len(samples):.1f} %), {seconds:.2f} s")
            if only == name:
                print(f"{name} misses on {corpus}: {' '.join(failed)}", file=sys.stderr)
        rows.append(f"| {corpus} | {len(samples)} | " + " | ".join(cells) + " |")
    return rows


def main(argv: list[str] | None = None) -> list[str]:
    """Print (and with --output write) the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path)
    parser.add_argument("--misses", metavar="EXTRACTOR",
                        help="list the cases an extractor (a column's name) gets wrong")
    args = parser.parse_args(argv)
    corpora = {f"{corpus} (tests/data/replies-{corpus})": public_corpus(corpus)
               for corpus in CORPORA}
    corpora["mailcase's own (tests/data/replies)"] = own_corpus()
    rows = table(corpora, args.misses)
    print("\n".join(rows))
    if args.output:
        args.output.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
