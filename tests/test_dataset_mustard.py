"""MUStARD loader: a tiny clone of the repository with its video archive unpacked and converted,
each item heard as its lead-up clip then its line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasetkit import corpus_clips, records, run_real, write_audio

from ahelm.datasets import DatasetError, load

FAKE_MP4 = b"\x00\x00\x00\x18ftypmp42 not really a video"


def entries() -> dict[str, dict[str, object]]:
    """Four items in sarcasm_data.json's shape; the lines are our own."""
    lines = [c.text for c in corpus_clips("english_asr", 8)]
    shape = [("1_60", "SHELDON", "BBT", True), ("1_105", "LEONARD", "BBT", False),
             ("2_17", "CHANDLER", "FRIENDS", True), ("3_S04E02_5", "DOROTHY", "GOLDENGIRLS", False)]
    return {key: {"utterance": lines[2 * i], "speaker": speaker,
                  "context": [lines[2 * i + 1]], "context_speakers": ["PERSON"],
                  "show": show, "sarcasm": sarcastic}
            for i, (key, speaker, show, sarcastic) in enumerate(shape)}


def make_mustard(data: Path, *, converted: bool = True) -> Path:
    root = data / "MUStARD"
    (root / "data").mkdir(parents=True)
    items = entries()
    (root / "data" / "sarcasm_data.json").write_text(json.dumps(items, indent=4))
    clips = corpus_clips("english_asr", 8, where={"voice": "rms"})
    videos = root / "data" / "videos"
    for index, key in enumerate(items):
        for folder, name, clip in (("utterances_final", key, clips[2 * index]),
                                   ("context_final", f"{key}_c", clips[2 * index + 1])):
            (videos / folder).mkdir(parents=True, exist_ok=True)
            (videos / folder / f"{name}.mp4").write_bytes(FAKE_MP4)
            if converted:
                write_audio(videos / folder / f"{name}.wav", clip.samples)
    return root


def test_published_layout_joins_lead_up_and_line(tmp_path: Path) -> None:
    root = make_mustard(tmp_path)
    scenario = load("mustard", tmp_path, tmp_path / "cache")
    assert [i.id for i in scenario.instances] == ["1_60", "1_105", "2_17", "3_S04E02_5"]
    assert {i.id: i.references[0] for i in scenario.instances} == {
        "1_60": "Yes", "1_105": "No", "2_17": "Yes", "3_S04E02_5": "No"}
    assert {i.id: i.group("sarcasm") for i in scenario.instances} == {
        "1_60": "yes", "1_105": "no", "2_17": "yes", "3_S04E02_5": "no"}
    first = scenario.instances[0]
    assert first.choices == ("Yes", "No") and "A. Yes" in first.prompt
    videos = root / "data" / "videos"
    assert first.audio is not None
    assert first.audio.path == videos / "context_final" / "1_60_c.wav"
    assert first.audio.then == (videos / "utterances_final" / "1_60.wav",)
    assert scenario.spec.aspect == "emotion" and scenario.spec.dataset == "mustard"


def test_archive_unpacked_into_its_own_folder_is_found(tmp_path: Path) -> None:
    root = make_mustard(tmp_path)
    videos = root / "data" / "videos"
    (videos / "mmsd_raw_data").mkdir()
    for folder in ("utterances_final", "context_final"):
        (videos / folder).rename(videos / "mmsd_raw_data" / folder)
    scenario = load("mustard", tmp_path, tmp_path / "cache")
    clip = scenario.instances[2].audio
    assert clip is not None and clip.then == (videos / "mmsd_raw_data" / "utterances_final"
                                              / "2_17.wav",)


def test_video_only_says_how_to_convert(tmp_path: Path) -> None:
    make_mustard(tmp_path, converted=False)
    with pytest.raises(DatasetError, match=r"sarcasm_data.json:2: .*1_60_c.mp4 is mp4.*ffmpeg"):
        load("mustard", tmp_path, tmp_path / "cache")


def test_bad_metadata_names_the_file_line_and_field(tmp_path: Path) -> None:
    root = make_mustard(tmp_path)
    path = root / "data" / "sarcasm_data.json"
    items = entries()
    items["2_17"]["sarcasm"] = "maybe"
    path.write_text(json.dumps(items, indent=4))
    text = path.read_text().splitlines()
    line = next(n for n, t in enumerate(text, start=1) if t.startswith('    "2_17"'))
    with pytest.raises(DatasetError, match=rf"sarcasm_data.json:{line}: entry '2_17': "
                                           r"field 'sarcasm' should be true or false"):
        load("mustard", tmp_path, tmp_path / "cache")
    path.write_text('{"1_60": {"utterance": "x",\n')
    with pytest.raises(DatasetError, match=r"sarcasm_data.json:2: not valid JSON"):
        load("mustard", tmp_path, tmp_path / "cache")
    path.write_text(json.dumps(entries()))
    (root / "data" / "videos" / "utterances_final").rename(root / "data" / "elsewhere")
    with pytest.raises(DatasetError, match=r"no data/videos/utterances_final/ found"):
        load("mustard", tmp_path, tmp_path / "cache")


def test_end_to_end_on_the_reference_model(pytester: pytest.Pytester) -> None:
    data = pytester.path / "data"
    root = make_mustard(data)
    (root / "data" / "videos" / "utterances_final" / "2_17.wav").write_bytes(b"RIFF broken")
    result, summary = run_real(pytester, data, {"mustard": "emotion"})
    assert result.parseoutcomes().get("errors") == 1
    found = [r for r in records(pytester.path) if r["scenario"] == "mustard"]
    assert {r["id"] for r in found} == {"1_60", "1_105", "2_17", "3_S04E02_5"}
    assert [r["id"] for r in found if r["status"] == "error"] == ["2_17"]
    assert all(r["output"] is not None for r in found if r["status"] != "error")
    mustard = summary["scenarios"]["mustard"]
    assert mustard["aspect"] == "emotion"
    assert {"accuracy", "accuracy[sarcasm=yes]", "accuracy[sarcasm=no]"} <= set(
        mustard["metrics"])
