"""LibriSpeech loader: a tiny test-clean in the OpenSLR layout and in the Hub's Parquet export."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasetkit import audio_bytes, corpus_clips, records, run_real, write_audio, write_parquet

from ahelm.datasets import DatasetError, load

SPEAKERS = """\
; Some header text the real file has.
;ID  |SEX| SUBSET           |MINUTES| NAME
1089 | M | test-clean       | 25.04 | Reader One
121  | F | test-clean       | 25.02 | Reader Two
"""


def make_librispeech(data: Path) -> dict[str, str]:
    """Two speakers, one chapter each, two utterances each: 4 FLAC files."""
    root = data / "LibriSpeech"
    (root).mkdir(parents=True)
    (root / "SPEAKERS.TXT").write_text(SPEAKERS)
    clips = corpus_clips("english_asr", 4, where={"voice": "rms"}) + corpus_clips(
        "english_asr", 4, where={"voice": "slt"})
    truth = {}
    for speaker, chapter, chosen in (("1089", "134686", clips[:2]), ("121", "121726", clips[4:6])):
        folder = root / "test-clean" / speaker / chapter
        lines = []
        for index, clip in enumerate(chosen):
            utterance = f"{speaker}-{chapter}-{index:04d}"
            write_audio(folder / f"{utterance}.flac", clip.samples)
            text = clip.text.upper().replace(".", "").replace(",", "")
            lines.append(f"{utterance} {text}")
            truth[utterance] = text.lower()
        (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return truth


def test_published_layout_loads_with_transcripts_and_sex(tmp_path: Path) -> None:
    truth = make_librispeech(tmp_path)
    scenario = load("librispeech_fairness", tmp_path, tmp_path / "cache")
    assert {i.id: i.references[0] for i in scenario.instances} == truth
    assert {i.id: i.group("gender") for i in scenario.instances} == {
        "1089-134686-0000": "male", "1089-134686-0001": "male",
        "121-121726-0000": "female", "121-121726-0001": "female"}
    first = scenario.instances[0]
    assert first.audio is not None and first.audio.path.suffix == ".flac"
    assert first.audio.sha256 == "" and len(first.audio.identity) == 64
    assert scenario.spec.dataset == "librispeech" and scenario.spec.aspect == "fairness"


def test_bad_metadata_names_the_file_and_line(tmp_path: Path) -> None:
    make_librispeech(tmp_path)
    speakers = tmp_path / "LibriSpeech" / "SPEAKERS.TXT"
    speakers.write_text(SPEAKERS.replace("121  | F |", "121  | X |"))
    with pytest.raises(DatasetError, match=r"SPEAKERS.TXT:4: expected"):
        load("librispeech_asr", tmp_path, tmp_path / "cache")
    speakers.write_text(SPEAKERS)
    transcripts = next((tmp_path / "LibriSpeech").rglob("121-121726.trans.txt"))
    transcripts.write_text("broken-line\n")
    with pytest.raises(DatasetError, match=r"121-121726.trans.txt:1: expected 'SPEAKER-CHAPTER"):
        load("librispeech_asr", tmp_path, tmp_path / "cache")


def test_hub_parquet_export_loads_and_writes_audio_to_the_cache(tmp_path: Path) -> None:
    clips = corpus_clips("english_asr", 2, where={"voice": "rms"})
    root = tmp_path / "LibriSpeech"
    root.mkdir()
    (root / "SPEAKERS.TXT").write_text(SPEAKERS)
    rows = [{"file": f"1089-134686-000{i}.flac", "text": c.text.upper(),
             "audio": {"bytes": audio_bytes(c.samples, ".flac"), "path": f"1089-134686-000{i}.flac"},
             "speaker_id": 1089, "chapter_id": 134686, "id": f"1089-134686-000{i}"}
            for i, c in enumerate(clips)]
    write_parquet(root / "hf" / "test-00000-of-00001.parquet", rows)
    scenario = load("librispeech_asr", tmp_path, tmp_path / "cache")
    assert [i.id for i in scenario.instances] == ["1089-134686-0000", "1089-134686-0001"]
    audio = scenario.instances[0].audio
    assert audio is not None and audio.path.is_relative_to(tmp_path / "cache" / "librispeech")
    assert audio.path.read_bytes() == rows[0]["audio"]["bytes"]
    again = load("librispeech_asr", tmp_path, tmp_path / "cache")
    assert again.instances[0].audio == audio


def test_end_to_end_on_the_reference_model(pytester: pytest.Pytester) -> None:
    data = pytester.path / "data"
    truth = make_librispeech(data)
    flac = next((data / "LibriSpeech").rglob("121-121726-0001.flac"))
    flac.write_bytes(b"not audio at all")
    result, summary = run_real(pytester, data, {"librispeech_asr": "perception",
                                                "librispeech_fairness": "fairness"})
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors") == 2  # the corrupt file fails its instance, in both scenarios
    found = records(pytester.path)
    assert {r["id"] for r in found if r["scenario"] == "librispeech_asr"} == set(truth)
    good = [r for r in found if r["scenario"] == "librispeech_asr" and r["status"] != "error"]
    assert len(good) == 3 and all(r["output"] for r in good)
    scenarios = summary["scenarios"]
    assert scenarios["librispeech_asr"]["aspect"] == "perception"
    assert scenarios["librispeech_fairness"]["aspect"] == "fairness"
    assert "wer[gender=female]" in scenarios["librispeech_fairness"]["metrics"]
    result.stdout.no_fnmatch_line("*real-data scenario*not run*")


def test_absent_data_is_one_summary_line_not_skips(pytester: pytest.Pytester) -> None:
    result, _ = run_real(pytester, None, {"librispeech_asr": "perception",
                                          "librispeech_fairness": "fairness"})
    outcomes = result.parseoutcomes()
    assert "skipped" not in outcomes and outcomes.get("deselected") == 2
    result.stdout.fnmatch_lines(["ahelm: 2 real-data scenarios not run: no data directory*"])
    lines = [line for line in result.stdout.lines if "not run" in line]
    assert len(lines) == 1


def test_absent_data_line_counts_only_what_the_selection_asked_for(
    pytester: pytest.Pytester,
) -> None:
    result, _ = run_real(pytester, None, {"librispeech_asr": "perception",
                                          "librispeech_fairness": "fairness"}, "-m", "fairness")
    result.stdout.fnmatch_lines(["ahelm: 1 real-data scenario not run: no data directory*"])
    assert len([line for line in result.stdout.lines if "not run" in line]) == 1
    nothing, _ = run_real(pytester, None, {"librispeech_asr": "perception"}, "-m", "bias")
    nothing.stdout.no_fnmatch_line("*real-data scenario*not run*")


def test_absent_data_line_under_xdist(pytester: pytest.Pytester, tmp_path: Path) -> None:
    result, _ = run_real(pytester, tmp_path, {"librispeech_asr": "perception"}, "-n", "2")
    result.stdout.fnmatch_lines(
        [f"ahelm: 1 real-data scenario not run: librispeech not found in {tmp_path}*"])
    assert len([line for line in result.stdout.lines if "not run" in line]) == 1
