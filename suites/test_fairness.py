"""Fairness: equal quality across speaker groups. AHELM: LibriSpeech and FLEURS by gender.

The same sentences are read by female and male voices of several accents; the gates compare the
groups' WER with paired tests over the sentences.
"""

import pytest

pytestmark = pytest.mark.fairness


@pytest.mark.scenario("fairness_asr")
def test_fairness_asr(outcome):
    """Transcribe; the gap between groups is judged by the fairness gates."""
    outcome.check()


# -- AHELM from real data: run when --data-dir holds the dataset (docs/datasets/) --------


@pytest.mark.scenario("librispeech_fairness")
def test_librispeech_fairness(outcome):
    """LibriSpeech test-clean by reader sex: the WER gap and its significance."""
    outcome.check()


@pytest.mark.scenario("fleurs_fairness")
def test_fleurs_fairness(outcome):
    """FLEURS English by speaker gender: the WER gap and its significance."""
    outcome.check()
