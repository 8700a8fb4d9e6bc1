"""Templates: built into the package, overridden set by set from the operator's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailcase.outbound.templates import (
    BUILT_IN,
    REQUIRED_SETS,
    Templates,
    paragraphs,
    sample_context,
)
from tests.support.paths import ROOT


def test_without_a_folder_every_set_is_built_in_and_renders() -> None:
    templates = Templates()
    assert templates.check() == []
    assert {templates.source(name) for name in REQUIRED_SETS} == {BUILT_IN}
    rendered = templates.render("acknowledgement", sample_context("acknowledgement"))
    assert "00001000" in rendered.subject
    assert rendered.html is not None and "<" in rendered.html


def test_the_built_in_sets_are_the_projects_templates_folder() -> None:
    """The package's templates are the files under templates/, not a copy that drifts."""
    built_in = Path(__file__).resolve().parents[2] / "mailcase" / "templates"
    assert built_in.resolve() == (ROOT / "templates").resolve()


def test_a_set_in_the_operators_folder_replaces_the_built_in_one_whole(tmp_path: Path) -> None:
    """Their text and subject for the acknowledgement, and no HTML part of ours beside
    it; every other set stays built in."""
    (tmp_path / "acknowledgement.subject.j2").write_text("Got it: {{ case.number }}\n")
    (tmp_path / "acknowledgement.txt.j2").write_text("Thanks {{ recipient.name }}.\n")
    templates = Templates(tmp_path)
    assert templates.source("acknowledgement") == str(tmp_path)
    assert templates.source("agent_reply") == BUILT_IN
    rendered = templates.render("acknowledgement", sample_context("acknowledgement"))
    assert (rendered.subject, rendered.text, rendered.html) == (
        "Got it: 00001000", "Thanks Ann.\n", None)
    assert templates.check() == []


def test_a_set_without_its_subject_is_a_problem_named_by_its_file(tmp_path: Path) -> None:
    (tmp_path / "case_closed.txt.j2").write_text("Closed.\n")
    problems = Templates(tmp_path).check()
    assert problems == [f"template {tmp_path / 'case_closed.subject.j2'} is missing"]


def test_a_rule_naming_a_set_nobody_has_is_one_clear_problem(tmp_path: Path) -> None:
    assert Templates(tmp_path).check(["vip_ack"]) == [
        f"template set 'vip_ack' (vip_ack.txt.j2) is neither in {tmp_path} nor built in"]
    assert Templates().check(["vip_ack"]) == [
        "template set 'vip_ack' (vip_ack.txt.j2) is not built in "
        "(set [templates] dir to add sets)"]


def test_a_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="does not exist"):
        Templates(tmp_path / "nowhere")


def test_every_built_in_set_has_an_html_part_in_the_shared_frame() -> None:
    """Each set ships NAME.html.j2 beside its text; all render in layout.html.j2."""
    templates = Templates()
    for name in REQUIRED_SETS:
        html = templates.render(name, sample_context(name)).html
        assert html is not None, name
        assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>"), name
        assert "max-width:640px" in html, name


def test_html_templates_escape_what_they_are_given() -> None:
    """Autoescaping is on for .html.j2 (and off for the text part): a writer's markup
    is shown, never run."""
    context = sample_context("new_comment")
    context["comment"]["body"] = "<script>alert(1)</script>"
    context["comment"]["author"] = '"><img src=x onerror=alert(2)>'
    rendered = Templates().render("new_comment", context)
    assert rendered.html is not None
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "&#34;&gt;&lt;img src=x" in rendered.html
    assert "<script" not in rendered.html and "<img" not in rendered.html
    assert "<script>alert(1)</script>" in rendered.text


def test_paragraphs_keep_the_writers_lines_and_spaces() -> None:
    """Blank lines part paragraphs, single line breaks become <br>, runs of spaces and
    indentation survive HTML's folding; Windows line ends read the same."""
    text = "Hi,\r\nline two\n\n\n  indented  twice\n\t tab\n"
    assert str(paragraphs(text)) == (
        "<p>Hi,<br>\nline two</p>\n"
        "<p>\u00a0\u00a0indented \u00a0twice<br>\n\u00a0\u00a0\u00a0\u00a0\u00a0tab</p>")
    assert str(paragraphs(None)) == ""
    assert str(paragraphs("a < b & c")) == "<p>a &lt; b &amp; c</p>"


def test_an_operators_html_may_extend_the_built_in_frame_or_their_own(tmp_path: Path) -> None:
    """Their set's HTML extends layout.html.j2: ours while their folder has none, theirs
    once it has; a frame nobody has is one clear problem."""
    (tmp_path / "case_closed.subject.j2").write_text("Closed\n")
    (tmp_path / "case_closed.txt.j2").write_text("Closed.\n")
    (tmp_path / "case_closed.html.j2").write_text(
        '{% extends "layout.html.j2" %}{% block content %}<p>Closed, {{ recipient.name }}.'
        "</p>{% endblock %}\n")
    rendered = Templates(tmp_path).render("case_closed", sample_context("case_closed"))
    assert rendered.html is not None
    assert "<p>Closed, Ann.</p>" in rendered.html and "max-width:640px" in rendered.html
    (tmp_path / "layout.html.j2").write_text("<div class=ours>{% block content %}{% endblock %}"
                                             "</div>\n")
    rendered = Templates(tmp_path).render("case_closed", sample_context("case_closed"))
    assert rendered.html == "<div class=ours><p>Closed, Ann.</p></div>\n"
    assert Templates(tmp_path).source("acknowledgement") == BUILT_IN
    (tmp_path / "case_closed.html.j2").write_text('{% extends "frame.html.j2" %}\n')
    assert Templates(tmp_path).check() == [
        f"template {tmp_path / 'case_closed.html.j2'} needs frame.html.j2, which is missing"]
