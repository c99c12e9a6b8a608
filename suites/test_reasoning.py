"""Reasoning: inference over what was heard.

AHELM: CoRe-Bench (multi-speaker conversations, some questions unanswerable) and AIR-Bench chat.
"""

import pytest

pytestmark = pytest.mark.reasoning


@pytest.mark.scenario("conversations")
def test_conversations(outcome):
    """A conversation of two to four voices, a question that needs several turns; "unanswerable"
    when the conversation never settles it."""
    outcome.check()


@pytest.mark.scenario("word_problems")
def test_word_problems(outcome):
    """Spoken arithmetic and logic word problems with one short answer."""
    outcome.check()


# -- AHELM from real data: run when --data-dir holds the dataset (docs/datasets/) --------


@pytest.mark.scenario("air_bench_chat_reasoning")
def test_air_bench_chat_reasoning(outcome):
    """AIR-Bench chat (speech, mixed audio): open questions that need inference,
    graded by the --judge model."""
    outcome.check()


@pytest.mark.scenario("corebench")
def test_corebench(outcome):
    """CoRe-Bench: questions about long multi-speaker conversations; some unanswerable."""
    outcome.check()
