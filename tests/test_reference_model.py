"""The offline reference system on real corpus clips: real pocketsphinx, no fakes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ahelm.core import AudioClip, Request
from ahelm.models.reference import ReferenceModel, Settings, answer_from_transcript
from ahelm.scenarios import load_scenario
from ahelm.scoring.asr import score_transcript

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus" / "english_asr"


def _answers(model: ReferenceModel, requests: list[Request]) -> dict[str, str]:
    async def run() -> dict[str, str]:
        out = {r.instance_id: (await model.generate(r)).text for r in requests}
        await model.aclose()
        return out

    return asyncio.run(run())


@pytest.fixture(scope="module")
def requests() -> list[Request]:
    scenario = load_scenario(CORPUS)
    return [Request.for_instance(i) for i in scenario.instances[:8]]


def test_transcribes_the_corpus_reasonably(requests: list[Request]) -> None:
    answers = _answers(ReferenceModel(Settings()), requests)
    scenario = load_scenario(CORPUS)
    truth = {i.id: i.references[0] for i in scenario.instances}
    wers = [score_transcript(truth[k], v)["wer"] for k, v in answers.items()]
    assert sum(wers) / len(wers) < 0.4
    assert all(isinstance(v, str) and v for v in answers.values())


def test_answers_do_not_depend_on_what_was_decoded_before(requests: list[Request]) -> None:
    forward = _answers(ReferenceModel(Settings()), requests)
    backward = _answers(ReferenceModel(Settings()), list(reversed(requests)))
    alone = {r.instance_id: _answers(ReferenceModel(Settings()), [r])[r.instance_id]
             for r in requests[:3]}
    assert forward == backward
    assert all(forward[k] == v for k, v in alone.items())


def test_fingerprint_names_the_engine_and_rules() -> None:
    model = ReferenceModel(Settings())
    assert model.fingerprint.startswith("reference/pocketsphinx-")
    assert "rules-" in model.fingerprint


def test_multiple_choice_rule_picks_the_option_sharing_most_words() -> None:
    prompt = "Which animal was mentioned?\nA. a sleeping cat\nB. the old dog\nC. unclear"
    assert answer_from_transcript(prompt, "the old dog slept in the sun") == "B"
    assert answer_from_transcript(prompt, "nothing in common") == "A"
    assert answer_from_transcript("Transcribe this.", "hello there") == "hello there"


def test_corrupt_audio_is_an_audio_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ogg"
    bad.write_bytes(b"OggS not really")
    import hashlib

    clip = AudioClip(bad, hashlib.sha256(bad.read_bytes()).hexdigest())
    request = Request("bad", "Transcribe.", clip, 100)
    from ahelm.core import AudioError

    model = ReferenceModel(Settings())
    with pytest.raises(AudioError, match="bad.ogg cannot be decoded"):
        asyncio.run(model.generate(request))
