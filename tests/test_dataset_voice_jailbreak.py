"""Voice jailbreak loader: the two folders the authors' TTS script writes (question alone, and
question inside jailbreak templates), with files named as the script names them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasetkit import CORPUS, corpus_clips, records, run_real, write_audio

from ahelm.datasets import DatasetError, load


def requests() -> list[str]:
    """Our own forbidden requests (the corpus's), standing in for questions_tiny.csv."""
    rows = [json.loads(line) for line in
            (CORPUS / "forbidden_requests" / "manifest.jsonl").read_text().splitlines()]
    return [r["request"] for r in rows if r["framing"] == "plain"][:2]


def make_voice_jailbreak(base: Path) -> dict[str, str]:
    """2 questions alone and inside 2 templates: 6 WAV files; returns id -> request."""
    clips = corpus_clips("english_asr", 6, where={"voice": "slt"})
    questions = requests()
    truth: dict[str, str] = {}
    for index, question in enumerate(questions):
        write_audio(base / "baseline_fable" / f"{index}_{question}.wav", clips[index].samples)
        truth[f"baseline-{index:02d}"] = question
        for offset, template in enumerate(("0Anarchy", "3Narrative")):
            clip = clips[2 + 2 * offset + index]
            write_audio(base / "textjailbreak_fable" / f"{template}_{index}_{question}.wav",
                        clip.samples)
            truth[f"textjailbreak-{template}-{index:02d}"] = question
    return truth


def test_both_subsets_load_with_the_question_as_request(tmp_path: Path) -> None:
    root = tmp_path / "voice_jailbreak"
    truth = make_voice_jailbreak(root)
    scenario = load("voice_jailbreak", tmp_path, tmp_path / "cache")
    assert [i.id for i in scenario.instances] == [
        "baseline-00", "baseline-01", "textjailbreak-0Anarchy-00", "textjailbreak-0Anarchy-01",
        "textjailbreak-3Narrative-00", "textjailbreak-3Narrative-01"]
    assert {i.id: i.references[0] for i in scenario.instances} == truth
    assert all(i.attribute("expected") == "refuse" for i in scenario.instances)
    groups = {i.id: (i.group("subset"), i.group("template")) for i in scenario.instances}
    assert groups["baseline-01"] == ("baseline", "none")
    assert groups["textjailbreak-3Narrative-00"] == ("textjailbreak", "3Narrative")
    last = scenario.instances[-1]
    assert last.audio is not None
    assert last.audio.path == root / "textjailbreak_fable" / f"3Narrative_1_{truth[last.id]}.wav"
    assert last.max_tokens == 1024
    assert scenario.spec.aspect == "safety" and scenario.spec.dataset == "voice_jailbreak"


def test_the_scripts_own_output_folder_works_too(tmp_path: Path) -> None:
    root = tmp_path / "voice_jailbreak"
    (root / "tts").mkdir(parents=True)
    truth = make_voice_jailbreak(root / "data" / "audio" / "standard_voice")
    scenario = load("voice_jailbreak", tmp_path, tmp_path / "cache")
    assert {i.id for i in scenario.instances} == set(truth)


def test_bad_file_names_and_empty_folders_are_named(tmp_path: Path) -> None:
    root = tmp_path / "voice_jailbreak"
    make_voice_jailbreak(root)
    odd = root / "textjailbreak_fable" / "Anarchy_How do I pick a lock.wav"
    odd.write_bytes(b"RIFF")
    with pytest.raises(DatasetError, match=r"textjailbreak_fable/Anarchy_How do I pick a lock: "
                                           r"file name should be <template>_<q>_<question>"):
        load("voice_jailbreak", tmp_path, tmp_path / "cache")
    odd.unlink()
    (root / "baseline_fable" / "first_question.wav").write_bytes(b"RIFF")
    with pytest.raises(DatasetError, match=r"baseline_fable/first_question: file name should be "
                                           r"<q>_<question>"):
        load("voice_jailbreak", tmp_path, tmp_path / "cache")
    empty = tmp_path / "other" / "voice_jailbreak"
    (empty / "baseline_fable").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"no baseline_fable/ or textjailbreak_fable/ folder"):
        load("voice_jailbreak", tmp_path / "other", tmp_path / "cache")


def test_end_to_end_on_the_reference_model(pytester: pytest.Pytester) -> None:
    data = pytester.path / "data"
    truth = make_voice_jailbreak(data / "voice_jailbreak")
    broken = next((data / "voice_jailbreak" / "textjailbreak_fable").glob("0Anarchy_1_*.wav"))
    broken.write_bytes(b"RIFF broken")
    result, summary = run_real(pytester, data, {"voice_jailbreak": "safety"})
    assert result.parseoutcomes().get("errors") == 1
    found = [r for r in records(pytester.path) if r["scenario"] == "voice_jailbreak"]
    assert {r["id"] for r in found} == set(truth)
    assert [r["id"] for r in found if r["status"] == "error"] == ["textjailbreak-0Anarchy-01"]
    answered = [r for r in found if r["status"] != "error"]
    assert len(answered) == 5 and all(r["references"] == [truth[r["id"]]] for r in answered)
    jailbreak = summary["scenarios"]["voice_jailbreak"]
    assert jailbreak["aspect"] == "safety"
    assert {"refusal_rate", "refusal_rate[subset=baseline]", "refusal_rate[subset=textjailbreak]",
            "refusal_rate[template=3Narrative]"} <= set(jailbreak["metrics"])
