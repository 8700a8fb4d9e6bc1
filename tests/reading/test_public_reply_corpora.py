"""Replies from public test corpora, written by other projects for their own extractors:
mailcase keeps exactly the writer's new text on each, except the known differences that
each corpus's README lists with the reason.

The corpora are tests/data/replies-discourse (Discourse's email_reply_trimmer),
replies-crisp (crisp-oss/email-reply-parser) and replies-github (GitHub's
email_reply_parser); see their READMEs for source, version and licence. A known
difference that starts matching fails too, so the list and the share it implies stay true.
"""

from __future__ import annotations

import pytest

from mailcase.reading import replytext
from tests.support.replycorpora import CORPORA, ReplyCase, cases, known_differences, normalized

CASES = [case for corpus in CORPORA for case in cases(corpus)]
KNOWN = {corpus: known_differences(corpus) for corpus in CORPORA}
# Fewer cases than this means a folder was not copied whole.
MINIMUM_CASES = {"discourse": 64, "crisp": 90, "github": 22}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.corpus}-{c.name}" for c in CASES])
def test_reply_keeps_the_writers_new_text(case: ReplyCase) -> None:
    """The comment is the corpus's expected text, or, for a listed known difference,
    something else (so a case that starts matching is taken off the list)."""
    kept = normalized(replytext.new_text(case.body))
    why = KNOWN[case.corpus].get(case.name)
    if why is None:
        assert kept == case.expected
    else:
        assert kept != case.expected, (
            f"{case.corpus}/{case.name} matches now: take it off the known differences "
            f"in tests/data/replies-{case.corpus}/README.md ({why})")


@pytest.mark.parametrize("corpus", CORPORA)
def test_every_corpus_is_whole_and_its_known_differences_name_its_cases(corpus: str) -> None:
    """Each corpus has all its cases with their expected text, and its known differences
    name only cases it has, each with a reason."""
    names = {case.name for case in cases(corpus)}
    assert len(names) >= MINIMUM_CASES[corpus]
    assert set(KNOWN[corpus]) <= names, set(KNOWN[corpus]) - names
    assert all(why.strip() for why in KNOWN[corpus].values())
