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


# -- AHELM from real data: run when --data-dir holds the dataset (docs/datasets/) --------


@pytest.mark.scenario("air_bench_foundation")
def test_air_bench_foundation(outcome):
    """AIR-Bench foundation: multiple-choice questions on instruments, genres and music."""
    outcome.check()


@pytest.mark.scenario("air_bench_chat_knowledge")
def test_air_bench_chat_knowledge(outcome):
    """AIR-Bench chat (sound, music): open questions, graded by the --judge model."""
    outcome.check()
