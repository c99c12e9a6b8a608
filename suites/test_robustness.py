"""Robustness: the same answer under degraded audio. AHELM: Speech Robust Bench.

A fixed grid of perturbations (noise, reverberation, telephone band, clipping, MP3, speed) at
three severities over clean English clips; WER per condition and its increase over clean.
"""

import pytest

from ahelm.robustness import KINDS

pytestmark = pytest.mark.robustness


@pytest.mark.scenario("robustness_grid")
def test_robustness_grid(outcome):
    """Transcribe a perturbed clip; the record names the perturbation and its settings."""
    outcome.check()


def test_wer_stays_within_delta_of_clean(robustness):
    """Any perturbation chain up to the policy's severity keeps WER within delta of clean;
    a failure reports the mildest breaking chain in words and numbers, and how to replay it."""
    robustness.check("asr_wer")


def test_answers_do_not_change_under_mild_perturbations(robustness):
    """Mild perturbations do not change which option the model picks (invariance)."""
    robustness.check("mc_invariance")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_breaking_point(robustness, kind):
    """The smallest severity of one perturbation kind that breaks the WER property, found by
    bisection; written to summary.json and plotted in the run report. Fails when the model
    breaks within the severity the property promises."""
    robustness.breaking_point("asr_wer", kind)


# -- AHELM from real data: run when --data-dir holds the dataset (docs/datasets/) --------


@pytest.mark.scenario("speech_robust_bench")
def test_speech_robust_bench(outcome):
    """Speech Robust Bench: LibriSpeech under Gaussian and environmental noise,
    three levels each; WER increase against the clean originals."""
    outcome.check()
