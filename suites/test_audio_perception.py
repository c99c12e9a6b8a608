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
