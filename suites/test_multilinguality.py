"""Multilinguality: the same tasks in other languages.

AHELM: FLEURS and Multilingual LibriSpeech (ASR), CoVoST2 (speech translation into English).
"""

import pytest

pytestmark = pytest.mark.multilinguality


@pytest.mark.scenario("multilingual_asr")
def test_multilingual_asr(outcome):
    """Transcribe speech in other languages; unspaced scripts are scored by characters (ter)."""
    outcome.check()


@pytest.mark.scenario("speech_translation")
def test_speech_translation(outcome):
    """Translate speech into English; sentence chrF per answer, corpus BLEU and chrF overall."""
    outcome.check()
