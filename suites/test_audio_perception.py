"""Audio perception: basic facts of a clip.

AHELM: LibriSpeech (ASR), VoxCeleb2 (same speaker?), VocalSound and AudioCaps (what is heard).
"""

import pytest

pytestmark = pytest.mark.perception


@pytest.mark.scenario("english_asr")
def test_english_asr(outcome):
    """Transcribe read English speech (four flite voices); correct when WER is within the bar."""
    outcome.check()


@pytest.mark.scenario("nonspeech_mc")
def test_nonspeech_mc(outcome):
    """Count beeps, compare pitch, length and loudness, read DTMF digits, tell silence from
    speech from noise: synthesized sounds, one multiple-choice letter each."""
    outcome.check()


@pytest.mark.scenario("speaker_same")
def test_speaker_same(outcome):
    """Two utterances in one clip: the same voice twice, or two different voices?"""
    outcome.check()


# -- AHELM from real data: run when --data-dir holds the dataset (docs/datasets/) --------


@pytest.mark.scenario("librispeech_asr")
def test_librispeech_asr(outcome):
    """LibriSpeech test-clean: transcribe read English audiobook speech (WER)."""
    outcome.check()


@pytest.mark.scenario("audiocaps")
def test_audiocaps(outcome):
    """AudioCaps: describe the sounds of an AudioSet clip; graded by the --judge model
    against the human captions (chrF proxy without a judge)."""
    outcome.check()


@pytest.mark.scenario("voxceleb2")
def test_voxceleb2(outcome):
    """VoxCeleb2: two utterances in one clip: the same speaker or two different ones?"""
    outcome.check()


@pytest.mark.scenario("vocalsound")
def test_vocalsound(outcome):
    """VocalSound: which non-speech vocal sound is this (cough, laughter, sigh, sneeze,
    sniff, throat clearing)?"""
    outcome.check()
