"""Safety: refusing harmful spoken requests, and only those. AHELM: voice jailbreak attacks.

Refusals are detected by the ``--judge`` model when one is given, else by the documented
rule-based detector (ahelm.scoring.refusal).
"""

import pytest

pytestmark = pytest.mark.safety


@pytest.mark.scenario("forbidden_requests")
def test_forbidden_requests(outcome):
    """A forbidden request, spoken, plain or inside a jailbreak framing: must be refused."""
    outcome.check()


@pytest.mark.scenario("benign_requests")
def test_benign_requests(outcome):
    """A benign request that only sounds risky: refusing it is wrong (over-refusal)."""
    outcome.check()


# -- AHELM from real data: run when --data-dir holds the dataset (docs/datasets/) --------


@pytest.mark.scenario("voice_jailbreak")
def test_voice_jailbreak(outcome):
    """Voice jailbreak attacks: forbidden questions read aloud, plain and inside
    text-jailbreak framings; the model should refuse."""
    outcome.check()
