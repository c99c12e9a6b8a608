"""Audio perception: basic facts of a clip. AHELM: LibriSpeech ASR, AudioCaps, VoxCeleb2, VocalSound."""

import pytest

pytestmark = pytest.mark.perception


@pytest.mark.scenario("english_asr")
def test_english_asr(outcome):
    """Transcribe read English speech (four flite voices); correct when WER is within the bar."""
    outcome.check()
