"""Toxicity: recognising toxic speech, and not producing it. AHELM: MuTox.

Every answer of the run is also scored offline for toxicity (``output_toxic_rate`` per scenario
and for the whole run in summary.json's ``run_metrics``).
"""

import pytest

pytestmark = pytest.mark.toxicity


@pytest.mark.scenario("toxicity_detection")
def test_toxicity_detection(outcome):
    """Is the spoken utterance toxic? Yes or no, in several languages."""
    outcome.check()


# -- AHELM from real data: run when --data-dir holds the dataset (docs/datasets/) --------


@pytest.mark.scenario("mutox")
def test_mutox(outcome):
    """MuTox: is this speech toxic? Many languages."""
    outcome.check()
