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


# -- AHELM from real data: run when --data-dir holds the dataset (docs/datasets/) --------


@pytest.mark.scenario("fleurs_asr")
def test_fleurs_asr(outcome):
    """FLEURS: transcribe Finnish, English, Hebrew, Zulu, Bengali and Thai (Thai by characters)."""
    outcome.check()


@pytest.mark.scenario("mls_asr")
def test_mls_asr(outcome):
    """Multilingual LibriSpeech: transcribe Dutch, Spanish, Italian, German, French,
    Portuguese and Polish audiobooks."""
    outcome.check()


@pytest.mark.scenario("covost2")
def test_covost2(outcome):
    """CoVoST 2: translate Chinese and Spanish speech into English (BLEU, chrF)."""
    outcome.check()
