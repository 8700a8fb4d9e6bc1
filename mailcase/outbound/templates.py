"""Jinja templates for the mail mailcase writes: a subject, a text part and an optional HTML part.

A template set ``NAME`` is three files in the templates folder: ``NAME.subject.j2``,
``NAME.txt.j2`` and optionally ``NAME.html.j2`` (autoescaped). Undefined variables are
errors, not blanks, so a typo in a template is caught by ``check-config``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    select_autoescape,
)

REQUIRED_SETS = (
    "acknowledgement", "agent_reply", "case_logged", "new_comment", "internal_note",
    "case_closed", "collaborator_welcome", "command_refused",
)
# Variables a set gets beyond case, recipient, mailbox and reply_address.
EXTRA_VARIABLES = {
    "agent_reply": ("comment", "attachments"), "new_comment": ("comment", "attachments"),
    "internal_note": ("comment", "attachments"),
    "collaborator_welcome": ("history",), "command_refused": ("refusals",),
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
    """Loads and renders template sets from one folder."""

    def __init__(self, directory: Path) -> None:
        if not directory.is_dir():
            raise TemplateProblem(f"templates folder {directory} does not exist")
        self.directory = directory
        self._env = Environment(
            loader=FileSystemLoader(directory),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            keep_trailing_newline=True,
            auto_reload=False,
        )

    def render(self, name: str, context: dict[str, Any]) -> Rendered:
        """Render set ``name`` with ``context``; a missing or broken file raises TemplateProblem."""
        subject = " ".join(self._render(f"{name}.subject.j2", context).split())
        text = self._render(f"{name}.txt.j2", context)
        html_name = f"{name}.html.j2"
        html = self._render(html_name, context) if (self.directory / html_name).exists() else None
        return Rendered(subject=subject, text=text, html=html)

    def _render(self, filename: str, context: dict[str, Any]) -> str:
        try:
            return self._env.get_template(filename).render(context)
        except TemplateNotFound:
            raise TemplateProblem(f"template {self.directory / filename} is missing") from None
        except TemplateSyntaxError as exc:
            raise TemplateProblem(
                f"template {self.directory / filename}, line {exc.lineno}: {exc.message}"
            ) from None
        except TemplateError as exc:
            raise TemplateProblem(
                f"template {self.directory / filename}{_line_of(exc, filename)}: {exc}"
            ) from None

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
        "comment": {"body": "We are on it.", "author": "Bob", "public": True},
        "history": [{"body": "We are on it.", "author": "Bob",
                     "created_at": "2026-11-23 10:00 UTC"}],
        "attachments": [{"filename": "log.txt", "size": 120, "attached": True}],
        "refusals": ["/cc eve@evil.example: only addresses at example.org may be added"],
        "reply_address": "support+1000-c1-aaaaaaaaaaaaaaaaaaaa@example.com",
    }
    extra = EXTRA_VARIABLES.get(name, ())
    return {k: v for k, v in context.items() if k in BASE_VARIABLES or k in extra}


BASE_VARIABLES = ("case", "recipient", "mailbox", "reply_address")
