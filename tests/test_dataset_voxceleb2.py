"""VoxCeleb2 loader: the pair list HELM uses (voxceleb2_audioidentity.csv) over the test set's
aac/<speaker>/<video>/<nnnnn> utterances converted to WAV, or a VoxCeleb-style trials.txt."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasetkit import corpus_clips, records, run_real, write_audio

from ahelm.datasets import DatasetError, load

# Two corpus voices stand for two celebrities; the .m4a names are the published ones, the
# audio is converted to WAV next to where the .m4a would be.
UTTERANCES = {
    "id00017/01dfn2spqyE/00001": ("rms", 0),
    "id00017/5MkXgwdrmJw/00003": ("rms", 1),
    "id00061/0G9G9oyFHI8/00002": ("slt", 0),
    "id00061/46bOalRWnt0/00007": ("slt", 1),
}
PAIRS_CSV = """\
first,second,same
id00017/01dfn2spqyE/00001.m4a,id00017/5MkXgwdrmJw/00003.m4a,True
id00017/01dfn2spqyE/00001.m4a,id00061/0G9G9oyFHI8/00002.m4a,False
id00061/46bOalRWnt0/00007.m4a,id00061/0G9G9oyFHI8/00002.m4a,True
id00061/46bOalRWnt0/00007.m4a,id00017/5MkXgwdrmJw/00003.m4a,False
"""


def make_voxceleb2(data: Path) -> Path:
    root = data / "voxceleb2"
    voices = {v: corpus_clips("english_asr", 2, where={"voice": v}) for v in ("rms", "slt")}
    for name, (voice, index) in UTTERANCES.items():
        write_audio(root / "aac" / f"{name}.wav", voices[voice][index].samples)
    (root / "voxceleb2_audioidentity.csv").write_text(PAIRS_CSV)
    return root


def test_pairs_become_joined_clips_with_same_or_different(tmp_path: Path) -> None:
    root = make_voxceleb2(tmp_path)
    scenario = load("voxceleb2", tmp_path, tmp_path / "cache")
    assert [i.id for i in scenario.instances] == ["pair00001", "pair00002", "pair00003",
                                                  "pair00004"]
    assert [i.references[0] for i in scenario.instances] == [
        "Same speaker", "Different speakers", "Same speaker", "Different speakers"]
    assert [i.group("label") for i in scenario.instances] == [
        "same", "different", "same", "different"]
    second = scenario.instances[1]
    assert second.choices == ("Same speaker", "Different speakers")
    assert second.audio is not None
    assert second.audio.path == root / "aac" / "id00017" / "01dfn2spqyE" / "00001.wav"
    assert second.audio.then == (root / "aac" / "id00061" / "0G9G9oyFHI8" / "00002.wav",)
    assert scenario.spec.family == "multiple_choice" and scenario.spec.aspect == "perception"


def test_a_trial_list_and_the_zip_folder_name_are_read_too(tmp_path: Path) -> None:
    root = make_voxceleb2(tmp_path)
    (root / "voxceleb2_audioidentity.csv").unlink()
    (root / "vox2_test_aac").mkdir()
    (root / "aac").rename(root / "vox2_test_aac" / "aac")
    (root / "trials.txt").write_text(
        "1 id00017/01dfn2spqyE/00001.wav id00017/5MkXgwdrmJw/00003.wav\n\n"
        "0 id00061/46bOalRWnt0/00007.wav id00017/5MkXgwdrmJw/00003.wav\n")
    scenario = load("voxceleb2", tmp_path, tmp_path / "cache")
    assert [(i.id, i.group("label")) for i in scenario.instances] == [
        ("pair00001", "same"), ("pair00002", "different")]
    audio = scenario.instances[1].audio
    assert audio is not None
    assert audio.path == root / "vox2_test_aac" / "aac" / "id00061" / "46bOalRWnt0" / "00007.wav"


def test_bad_metadata_names_the_file_line_and_field(tmp_path: Path) -> None:
    root = make_voxceleb2(tmp_path)
    pairs = root / "voxceleb2_audioidentity.csv"
    pairs.write_text(PAIRS_CSV.replace("00003.m4a,False", "00003.m4a,maybe"))
    with pytest.raises(DatasetError, match=r"audioidentity.csv:5: field 'same' should be True"):
        load("voxceleb2", tmp_path, tmp_path / "cache")
    pairs.write_text(PAIRS_CSV.replace("id00061/46bOalRWnt0/00007.m4a,id00061", "../x.m4a,id00061"))
    with pytest.raises(DatasetError, match=r"audioidentity.csv:4: field 'first' '../x.m4a'"):
        load("voxceleb2", tmp_path, tmp_path / "cache")
    pairs.write_text(PAIRS_CSV.replace("same\n", "label\n"))
    with pytest.raises(DatasetError, match=r"audioidentity.csv:1: missing column\(s\) same"):
        load("voxceleb2", tmp_path, tmp_path / "cache")
    pairs.unlink()
    (root / "trials.txt").write_text("yes id00017/a/00001.wav\n")
    with pytest.raises(DatasetError, match=r"trials.txt:1: expected 'LABEL PATH1 PATH2'"):
        load("voxceleb2", tmp_path, tmp_path / "cache")


def test_unconverted_aac_gives_the_conversion_command(tmp_path: Path) -> None:
    root = make_voxceleb2(tmp_path)
    wav = root / "aac" / "id00061" / "0G9G9oyFHI8" / "00002.wav"
    wav.unlink()
    wav.with_suffix(".m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A ")
    with pytest.raises(DatasetError, match=r"audioidentity.csv:3: .*00002.m4a is m4a, .*ffmpeg -i"):
        load("voxceleb2", tmp_path, tmp_path / "cache")


def test_end_to_end_on_the_reference_model(pytester: pytest.Pytester) -> None:
    data = pytester.path / "data"
    root = make_voxceleb2(data)
    # the second utterance of pair 3 only: its joined clip fails, the others are answered
    (root / "aac" / "id00061" / "46bOalRWnt0" / "00007.wav").write_bytes(b"RIFF....WAVE")
    (root / "voxceleb2_audioidentity.csv").write_text(PAIRS_CSV.replace(
        "id00061/46bOalRWnt0/00007.m4a,id00061/0G9G9oyFHI8/00002.m4a",
        "id00061/0G9G9oyFHI8/00002.m4a,id00061/46bOalRWnt0/00007.m4a").replace(
        "id00061/46bOalRWnt0/00007.m4a,id00017/5MkXgwdrmJw/00003.m4a",
        "id00017/5MkXgwdrmJw/00003.m4a,id00061/0G9G9oyFHI8/00002.m4a"))
    result, summary = run_real(pytester, data, {"voxceleb2": "perception"})
    assert result.parseoutcomes().get("errors") == 1
    found = [r for r in records(pytester.path) if r["scenario"] == "voxceleb2"]
    assert {r["id"] for r in found} == {"pair00001", "pair00002", "pair00003", "pair00004"}
    assert [r["id"] for r in found if r["status"] == "error"] == ["pair00003"]
    assert all(r["output"] in ("A", "B") for r in found if r["status"] != "error")
    scenario = summary["scenarios"]["voxceleb2"]
    assert scenario["aspect"] == "perception"
    assert {"accuracy", "accuracy[label=same]", "accuracy[label=different]",
            "format_failure_rate"} <= set(scenario["metrics"])
