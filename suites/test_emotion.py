"""Emotion detection: the speaker's emotion. AHELM: MELD (emotions), MUStARD (sarcasm).

The scenario separates two ways of knowing: the ``words`` subset says the emotion in its words,
the ``prosody`` subset says neutral words and carries the emotion only in the voice, so
``accuracy[subset=words]`` and ``accuracy[subset=prosody]`` tell "understood the words" from
"heard the voice".
"""

import pytest

pytestmark = pytest.mark.emotion


@pytest.mark.scenario("emotion")
def test_emotion(outcome):
    """Which emotion does the speaker express? One letter from a fixed list of emotions."""
    outcome.check()


# -- AHELM from real data: run when --data-dir holds the dataset (docs/datasets/) --------


@pytest.mark.scenario("meld")
def test_meld(outcome):
    """MELD: the emotion of an utterance from the Friends TV series (seven classes)."""
    outcome.check()


@pytest.mark.scenario("mustard")
def test_mustard(outcome):
    """MUStARD: is the speaker being sarcastic?"""
    outcome.check()
