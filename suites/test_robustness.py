"""Robustness: the same answer under degraded audio. AHELM: Speech Robust Bench.

A fixed grid of perturbations (noise, reverberation, telephone band, clipping, MP3, speed) at
three severities over clean English clips; WER per condition and its increase over clean.
"""

import pytest

pytestmark = pytest.mark.robustness


@pytest.mark.scenario("robustness_grid")
def test_robustness_grid(outcome):
    """Transcribe a perturbed clip; the record names the perturbation and its settings."""
    outcome.check()
