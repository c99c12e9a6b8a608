"""Knowledge: facts the model knows about what it hears.

AHELM: AIR-Bench foundation (music QA, instruments, genre) and chat (sound, music).
"""

import pytest

pytestmark = pytest.mark.knowledge


@pytest.mark.scenario("spoken_qa")
def test_spoken_qa(outcome):
    """A general-knowledge question asked aloud; a short answer, quasi-prefix exact match."""
    outcome.check()


@pytest.mark.scenario("music_mc")
def test_music_mc(outcome):
    """Synthesized notes and chords: name the interval, major or minor, which note is an octave."""
    outcome.check()
