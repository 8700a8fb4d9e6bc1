"""Templates: built into the package, overridden set by set from the operator's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailcase.outbound.templates import BUILT_IN, REQUIRED_SETS, Templates, sample_context
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
