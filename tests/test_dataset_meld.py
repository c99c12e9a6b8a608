"""MELD loader: a tiny test split in the published layout (video plus converted WAV) and in the
FLAC archive layout of the Hub copy AHELM used."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from datasetkit import corpus_clips, records, run_real, write_audio

from ahelm.datasets import DatasetError, load
from ahelm.datasets.meld import EMOTIONS

COLUMNS = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID",
           "Utterance_ID", "Season", "Episode", "StartTime", "EndTime"]
# (Sr No., speaker, emotion, sentiment, dialogue, utterance); written out of order on purpose
ROWS = [
    ("1", "Mark", "surprise", "positive", "0", "0"),
    ("2", "Rachel", "anger", "negative", "0", "1"),
    ("19", "Joey", "joy", "positive", "1", "0"),
    ("12", "Ross", "neutral", "neutral", "10", "2"),
]
TRUTH = {"dia0_utt0": "surprise", "dia0_utt1": "anger", "dia1_utt0": "joy", "dia10_utt2": "neutral"}


def write_csv(path: Path, rows: list[tuple[str, ...]], *, stray_byte: bool = True) -> None:
    """MELD's CSV: quoted times with commas, and (like some copies) one Windows-1252 byte."""
    clips = corpus_clips("emotion", len(rows))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for (number, speaker, emotion, sentiment, dialogue, utterance), clip in zip(rows, clips, strict=True):
        writer.writerow([number, clip.text, speaker, emotion, sentiment, dialogue, utterance,
                         "3", "19", "00:14:38,127", "00:14:40,378"])
    data = buffer.getvalue().encode("utf-8")
    if stray_byte:
        data = data.replace(b"The bus", b"The\x92bus", 1)
        assert b"\x92" in data
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def make_meld(data: Path, *, converted: bool = True) -> Path:
    """MELD.Raw/ with the test CSV and output_repeated_splits_test/ (mp4 + converted wav)."""
    root = data / "MELD.Raw"
    write_csv(root / "test_sent_emo.csv", [ROWS[2], ROWS[0], ROWS[3], ROWS[1]])
    clips = corpus_clips("emotion", 4, where={"voice": "slt"})
    folder = root / "output_repeated_splits_test"
    for clip, name in zip(clips, TRUTH, strict=True):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
        if converted:
            write_audio(folder / f"{name}.wav", clip.samples)
    return root


def test_published_layout_loads_seven_options_and_the_label(tmp_path: Path) -> None:
    root = make_meld(tmp_path)
    scenario = load("meld", tmp_path, tmp_path / "cache")
    assert [i.id for i in scenario.instances] == ["dia0_utt0", "dia0_utt1", "dia1_utt0",
                                                  "dia10_utt2"]
    assert {i.id: i.references[0] for i in scenario.instances} == TRUTH
    assert {i.id: i.group("emotion") for i in scenario.instances} == TRUTH
    first = scenario.instances[0]
    assert first.choices == EMOTIONS == ("anger", "disgust", "fear", "joy", "neutral",
                                         "sadness", "surprise")
    assert first.audio is not None
    assert first.audio.path == root / "output_repeated_splits_test" / "dia0_utt0.wav"
    assert first.audio.sha256 == "" and first.max_tokens == 5
    assert "A. anger" in first.prompt and "G. surprise" in first.prompt
    assert scenario.spec.aspect == "emotion" and scenario.spec.dataset == "meld"


def test_hub_archive_layout_with_a_wrapping_folder(tmp_path: Path) -> None:
    root = tmp_path / "MELD.Raw"
    write_csv(root / "test_sent_emo.csv", ROWS, stray_byte=False)
    for clip, name in zip(corpus_clips("emotion", 4), TRUTH, strict=True):
        write_audio(root / "audios_test" / "test" / f"{name}.flac", clip.samples)
    (root / "archive").mkdir()
    (root / "archive" / "audios_test.tgz").write_bytes(b"the archive, already unpacked")
    scenario = load("meld", tmp_path, tmp_path / "cache")
    paths = {i.id: i.audio.path for i in scenario.instances if i.audio is not None}
    assert paths == {name: root / "audios_test" / "test" / f"{name}.flac" for name in TRUTH}


def test_video_only_says_how_to_convert(tmp_path: Path) -> None:
    make_meld(tmp_path, converted=False)
    with pytest.raises(DatasetError, match=r"test_sent_emo.csv:2: .*dia1_utt0.mp4 is mp4.*ffmpeg"):
        load("meld", tmp_path, tmp_path / "cache")


def test_bad_metadata_names_the_file_line_and_field(tmp_path: Path) -> None:
    root = make_meld(tmp_path)
    table = root / "test_sent_emo.csv"
    write_csv(table, [ROWS[0], ("2", "Rachel", "contempt", "negative", "0", "1")])
    with pytest.raises(DatasetError, match=r"test_sent_emo.csv:3: field 'Emotion' is 'contempt'"):
        load("meld", tmp_path, tmp_path / "cache")
    write_csv(table, [ROWS[0], ("2", "Rachel", "anger", "negative", "zero", "1")])
    with pytest.raises(DatasetError, match=r"test_sent_emo.csv:3: field 'Dialogue_ID' should be"):
        load("meld", tmp_path, tmp_path / "cache")
    table.write_text("Sr No.,Utterance,Speaker,Sentiment\n1,Hi.,Mark,neutral\n")
    with pytest.raises(DatasetError, match=r"test_sent_emo.csv:1: missing column\(s\) Emotion"):
        load("meld", tmp_path, tmp_path / "cache")
    (root / "output_repeated_splits_test").rename(root / "elsewhere")
    write_csv(table, ROWS)
    with pytest.raises(DatasetError, match=r"no test clips found"):
        load("meld", tmp_path, tmp_path / "cache")


def test_end_to_end_on_the_reference_model(pytester: pytest.Pytester) -> None:
    data = pytester.path / "data"
    root = make_meld(data)
    (root / "output_repeated_splits_test" / "dia1_utt0.wav").write_bytes(b"RIFF broken")
    result, summary = run_real(pytester, data, {"meld": "emotion"})
    assert result.parseoutcomes().get("errors") == 1
    found = [r for r in records(pytester.path) if r["scenario"] == "meld"]
    assert {r["id"] for r in found} == set(TRUTH)
    assert [r["id"] for r in found if r["status"] == "error"] == ["dia1_utt0"]
    answered = [r for r in found if r["status"] != "error"]
    assert len(answered) == 3 and all(r["references"][0] == TRUTH[r["id"]] for r in answered)
    meld = summary["scenarios"]["meld"]
    assert meld["aspect"] == "emotion"
    assert {"accuracy", "accuracy[emotion=anger]", "accuracy[emotion=neutral]"} <= set(
        meld["metrics"])
