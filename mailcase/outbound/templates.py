"""Jinja templates for the mail mailcase writes: a subject, a text part and an optional HTML part.

A template set ``NAME`` is three files: ``NAME.subject.j2``, ``NAME.txt.j2`` and
optionally ``NAME.html.j2`` (autoescaped: a customer's ``<script>`` arrives as text). The
default sets ship inside the package (``mailcase/templates``, the project's
``templates/`` folder), each with an HTML part framed by ``layout.html.j2``, so an
installed mailcase needs no template files of its own. ``[templates] dir`` names a folder
of the operator's own: a set whose ``NAME.txt.j2`` is there is taken from there whole
(subject, text and HTML if present), every other set is the built-in one, so one file
pair overrides one mail and an HTML part of ours never goes out beside a text of theirs.
Their HTML may extend ``layout.html.j2`` (theirs if the folder has one, else ours).
Undefined variables are errors, not blanks, so a typo in a template is caught by
``check-config``. The ``paragraphs`` filter turns plain text (a comment, a resolution)
into escaped HTML paragraphs that keep the writer's line breaks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    select_autoescape,
)
from markupsafe import Markup, escape

BUILT_IN = "built in"  # where a set comes from when the operator's folder lacks it
REQUIRED_SETS = (
    "acknowledgement", "agent_reply", "case_logged", "new_comment", "internal_note",
    "case_closed", "collaborator_welcome", "command_refused", "case_assigned", "case_merged",
    "sla_warning", "sla_breach", "hold_reminder", "auto_closed", "satisfaction_survey",
    "satisfaction_bad",
)
# Variables a set gets beyond case, recipient, mailbox and reply_address.
EXTRA_VARIABLES = {
    "agent_reply": ("comment", "attachments"), "new_comment": ("comment", "attachments"),
    "internal_note": ("comment", "attachments"),
    "collaborator_welcome": ("history",), "command_refused": ("refusals",),
    "case_assigned": ("why", "owner"), "case_merged": ("merged",),
    "sla_warning": ("target", "owner"), "sla_breach": ("target", "owner"),
    "hold_reminder": ("closes_at",),
    "satisfaction_survey": ("good_url", "bad_url"), "satisfaction_bad": ("comment",),
}


class TemplateProblem(Exception):
    """A template is missing or broken; the message names the file and, if known, the line."""


@dataclass(frozen=True)
class Rendered:
    """One rendered mail body: subject line, text part, HTML part if the set has one."""

    subject: str
    text: str
    html: str | None


class Templates:
    """Loads and renders template sets: the operator's folder first, set by set, then the
    ones built into the package."""

    def __init__(self, directory: Path | None = None) -> None:
        if directory is not None and not directory.is_dir():
            raise TemplateProblem(f"templates folder {directory} does not exist")
        self.directory = directory
        # Each place's environment and its own file names, read once: a running daemon
        # takes new files on a reload.
        built_in = PackageLoader("mailcase", "templates")
        self._places = {BUILT_IN: _place(built_in, built_in)}
        if directory is not None:
            own = FileSystemLoader(directory)
            # What their sets extend or include may be built in (the HTML frame).
            self._places[str(directory)] = _place(ChoiceLoader([own, built_in]), own)

    def source(self, name: str) -> str:
        """Where set ``name`` comes from: the operator's folder, or ``BUILT_IN``."""
        if self.directory is not None and f"{name}.txt.j2" in self._places[str(self.directory)][1]:
            return str(self.directory)
        return BUILT_IN

    def render(self, name: str, context: dict[str, Any]) -> Rendered:
        """Render set ``name`` with ``context``; a missing or broken file raises TemplateProblem."""
        where = self.source(name)
        env, files = self._places[where]
        if f"{name}.txt.j2" not in files:
            where_not = (f"neither in {self.directory} nor built in" if self.directory
                         else "not built in (set [templates] dir to add sets)")
            raise TemplateProblem(f"template set {name!r} ({name}.txt.j2) is {where_not}")
        subject = " ".join(_render(env, where, files, f"{name}.subject.j2", context).split())
        text = _render(env, where, files, f"{name}.txt.j2", context)
        html_name = f"{name}.html.j2"
        html = _render(env, where, files, html_name, context) if html_name in files else None
        return Rendered(subject=subject, text=text, html=html)

    def check(self, extra_sets: Iterable[str] = ()) -> list[str]:
        """Render every required set (and ``extra_sets``, e.g. those auto-response rules
        name) with the sample data it will really get; one message per problem."""
        problems = []
        for name in dict.fromkeys((*REQUIRED_SETS, *extra_sets)):
            try:
                self.render(name, sample_context(name))
            except TemplateProblem as exc:
                problems.append(str(exc))
        return problems


def _place(loader: BaseLoader, own: BaseLoader) -> tuple[Environment, frozenset[str]]:
    """An environment over ``loader``, and the files ``own`` holds (which sets are there)."""
    env = Environment(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["paragraphs"] = paragraphs
    return env, frozenset(own.list_templates())


def paragraphs(text: str | None) -> Markup:
    """Plain text as HTML that reads as it was typed: escaped, a blank line between
    paragraphs, each other line break a ``<br>``, and runs of spaces kept (an indented
    line or a pasted table stays aligned). None (no resolution yet) is no text."""
    text = str(text or "").replace("\r\n", "\n").expandtabs(4)
    blocks = [block.strip("\n") for block in re.split(r"\n(?:[ \t]*\n)+", text)]
    return Markup("\n").join(
        Markup("<p>{}</p>").format(Markup("<br>\n").join(map(_spaced, block.split("\n"))))
        for block in blocks if block.strip()
    )


def _spaced(line: str) -> Markup:
    """One line escaped, its leading spaces and every space after another made
    no-break spaces (U+00A0), which HTML does not fold into one."""
    return escape(re.sub(r"(?<= ) |^ ", "\u00a0", line))


def _render(env: Environment, where: str, files: frozenset[str], filename: str,
            context: dict[str, Any]) -> str:
    """One file of a set, which must be in its place's own ``files`` (a set is never
    made up of theirs and ours); problems name the file as the operator knows it."""
    shown = f"{filename} ({BUILT_IN})" if where == BUILT_IN else str(Path(where) / filename)
    if filename not in files:
        raise TemplateProblem(f"template {shown} is missing")
    try:
        return env.get_template(filename).render(context)
    except TemplateNotFound as exc:  # what it extends or includes
        raise TemplateProblem(f"template {shown} needs {exc.name}, which is missing") from None
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"template {shown}, line {exc.lineno}: {exc.message}") from None
    except TemplateError as exc:
        raise TemplateProblem(f"template {shown}{_line_of(exc, filename)}: {exc}") from None


def _line_of(exc: BaseException, filename: str) -> str:
    """The template line a render error came from, read off its traceback."""
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(filename):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f", line {line}" if line else ""


def sample_context(name: str) -> dict[str, Any]:
    """Data shaped like what set ``name`` really gets, to check it before it is needed."""
    context = {
        "case": {
            "number": "00001000", "subject": "Printer on fire", "status": "New",
            "priority": "Medium", "description": "It is on fire.", "resolution": None,
            "tag": "[Case #00001000]",
        },
        "recipient": {"email": "ann@example.org", "name": "Ann"},
        "mailbox": {"address": "support@example.com", "name": "Support"},
        "comment": {"body": "We are on it.", "author": "Bob", "public": True,
                    "by_mailbox": False},
        "history": [{"body": "We are on it.", "author": "Bob",
                     "created_at": "2026-11-23 10:00 UTC"}],
        "attachments": [{"filename": "log.txt", "size": 120, "attached": True}],
        "refusals": ["/cc eve@evil.example: only addresses at example.org may be added"],
        "merged": {"number": "00000999", "subject": "Printer smokes"},
        "reply_address": "support+1000-c1-aaaaaaaaaaaaaaaaaaaa@example.com",
        "why": "a new case (rule billing)", "owner": "queue:Billing",
        "target": {"name": "first_response", "label": "first response", "target": "4h",
                   "sla": "standard", "due_at": "2026-11-23 14:00 UTC", "state": "warned"},
        "closes_at": "2026-11-30 10:00 UTC",
        "good_url": "https://support.example.com/satisfaction/survey-1000-1800000000-x"
                    "?rating=good",
        "bad_url": "https://support.example.com/satisfaction/survey-1000-1800000000-x"
                   "?rating=bad",
    }
    extra = EXTRA_VARIABLES.get(name, ())
    return {k: v for k, v in context.items() if k in BASE_VARIABLES or k in extra}


BASE_VARIABLES = ("case", "recipient", "mailbox", "reply_address")
