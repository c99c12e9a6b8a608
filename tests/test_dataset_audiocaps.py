"""AudioCaps loader: test.csv with several captions per clip, and both audio layouts
(HELM's wav_files/<audiocap_id>.wav and our audio/<youtube_id>_<start_time>.wav)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from datasetkit import corpus_clips, records, run_real, tone, write_audio

from ahelm.datasets import DatasetError, load

# The real test.csv: one row per caption, the rows of a clip not adjacent, captions with commas
# quoted. The captions here are our own words.
TEST_CSV = """\
audiocap_id,youtube_id,start_time,caption
103541,-Bx9Dd0YTvE,30,A man talks in a calm voice
103548,zx7_Kf1TjS0,0,A steady high beep sounds
103542,-Bx9Dd0YTvE,30,"Someone speaks slowly, then stops"
103549,zx7_Kf1TjS0,0,An electronic tone rings without a break
103550,qa3lLmtVE1w,120,A low hum goes on
103543,-Bx9Dd0YTvE,30,A male voice reads a sentence
"""
CLIPS = {
    "-Bx9Dd0YTvE_30": ["A man talks in a calm voice", "Someone speaks slowly, then stops",
                       "A male voice reads a sentence"],
    "qa3lLmtVE1w_120": ["A low hum goes on"],
    "zx7_Kf1TjS0_0": ["A steady high beep sounds", "An electronic tone rings without a break"],
}
FIRST_ID = {"-Bx9Dd0YTvE_30": "103541", "qa3lLmtVE1w_120": "103550", "zx7_Kf1TjS0_0": "103548"}


def _sounds() -> dict[str, np.ndarray]:
    speech = corpus_clips("english_asr", 1, where={"voice": "rms"})[0].samples
    return {"-Bx9Dd0YTvE_30": speech, "qa3lLmtVE1w_120": tone(2.0, 110.0),
            "zx7_Kf1TjS0_0": tone(2.0, 2000.0)}


def make_helm_copy(data: Path) -> Path:
    """Olivia714/audiocaps as HELM reads it: test.csv and one WAV per caption row."""
    root = data / "audiocaps"
    root.mkdir(parents=True)
    (root / "test.csv").write_text(TEST_CSV)
    sounds = _sounds()
    for line in TEST_CSV.splitlines()[1:]:
        caption_id, youtube_id, start, _ = line.split(",", 3)
        write_audio(root / "wav_files" / f"{caption_id}.wav", sounds[f"{youtube_id}_{start}"])
    return root


def make_own_clips(data: Path) -> Path:
    """test.csv and clips cut by the user: audio/<youtube_id>_<start_time>.wav (or .flac)."""
    root = data / "audiocaps"
    root.mkdir(parents=True)
    (root / "test.csv").write_text(TEST_CSV)
    for clip, samples in _sounds().items():
        suffix = ".flac" if clip.startswith("qa3") else ".wav"
        write_audio(root / "audio" / f"{clip}{suffix}", samples)
    return root


def test_helm_copy_makes_one_instance_per_clip_with_all_its_captions(tmp_path: Path) -> None:
    root = make_helm_copy(tmp_path)
    scenario = load("audiocaps", tmp_path, tmp_path / "cache")
    assert [i.id for i in scenario.instances] == sorted(CLIPS)
    assert {i.id: list(i.references) for i in scenario.instances} == CLIPS
    for instance in scenario.instances:
        assert instance.audio is not None
        assert instance.audio.path == root / "wav_files" / f"{FIRST_ID[instance.id]}.wav"
        assert instance.max_tokens == 50 and instance.aspect == "perception"
        assert instance.prompt == "Write a short caption that describes the sounds in this clip."
    assert scenario.spec.family == "open_answer" and scenario.spec.dataset == "audiocaps"


def test_own_clips_are_read_by_youtube_id_and_start_time(tmp_path: Path) -> None:
    root = make_own_clips(tmp_path)
    scenario = load("audiocaps", tmp_path, tmp_path / "cache")
    paths = {i.id: i.audio.path for i in scenario.instances if i.audio is not None}
    assert paths == {"-Bx9Dd0YTvE_30": root / "audio" / "-Bx9Dd0YTvE_30.wav",
                     "qa3lLmtVE1w_120": root / "audio" / "qa3lLmtVE1w_120.flac",
                     "zx7_Kf1TjS0_0": root / "audio" / "zx7_Kf1TjS0_0.wav"}
    assert {i.id: list(i.references) for i in scenario.instances} == CLIPS


def test_bad_metadata_names_the_file_line_and_field(tmp_path: Path) -> None:
    root = make_helm_copy(tmp_path)
    table = root / "test.csv"
    table.write_text(TEST_CSV.replace("103549,", "1035x9,"))
    with pytest.raises(DatasetError, match=r"test.csv:5: field 'audiocap_id' should be a number"):
        load("audiocaps", tmp_path, tmp_path / "cache")
    table.write_text(TEST_CSV.replace("A low hum goes on", ""))
    with pytest.raises(DatasetError, match=r"test.csv:6: field 'caption' is missing or empty"):
        load("audiocaps", tmp_path, tmp_path / "cache")
    table.write_text(TEST_CSV.replace(",caption", ",text"))
    with pytest.raises(DatasetError, match=r"test.csv:1: missing column\(s\) caption"):
        load("audiocaps", tmp_path, tmp_path / "cache")
    table.write_text(TEST_CSV)
    (root / "wav_files").rename(root / "clips")
    with pytest.raises(DatasetError, match=r"no audio folder: expected wav_files/"):
        load("audiocaps", tmp_path, tmp_path / "cache")


def test_a_missing_clip_is_not_a_load_error(tmp_path: Path) -> None:
    root = make_own_clips(tmp_path)
    (root / "audio" / "zx7_Kf1TjS0_0.wav").unlink()
    scenario = load("audiocaps", tmp_path, tmp_path / "cache")
    missing = next(i for i in scenario.instances if i.id == "zx7_Kf1TjS0_0")
    assert missing.audio is not None and missing.audio.path == root / "audio" / "zx7_Kf1TjS0_0.wav"
    assert not missing.audio.path.exists()


def test_end_to_end_on_the_reference_model(pytester: pytest.Pytester) -> None:
    data = pytester.path / "data"
    root = make_helm_copy(data)
    (root / "wav_files" / "103548.wav").write_bytes(b"RIFF broken")
    result, summary = run_real(pytester, data, {"audiocaps": "perception"})
    assert result.parseoutcomes().get("errors") == 1
    found = [r for r in records(pytester.path) if r["scenario"] == "audiocaps"]
    assert {r["id"] for r in found} == set(CLIPS)
    failed = [r["id"] for r in found if r["status"] == "error"]
    assert failed == ["zx7_Kf1TjS0_0"]
    speech = next(r for r in found if r["id"] == "-Bx9Dd0YTvE_30")
    assert speech["output"] and speech["scores"]["judged_by_model"] == 0
    scenario = summary["scenarios"]["audiocaps"]
    assert scenario["aspect"] == "perception"
    assert {"chrf", "accuracy", "error_rate"} <= set(scenario["metrics"])
    assert "judge_score" not in scenario["metrics"]
