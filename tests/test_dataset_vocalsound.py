"""VocalSound loader: audio_16k/<speaker>_<n>_<label>.wav, with and without the test split file
datafiles/te.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasetkit import records, run_real, tone, write_audio

from ahelm.datasets import DatasetError, load

FILES = {  # file stem -> (tone frequency, option text)
    "f0003_0_cough": (300.0, "Cough"),
    "f0003_0_throatclearing": (350.0, "Throat clearing"),
    "f0017_1_laughter": (900.0, "Laughter"),
    "m0083_0_sneeze": (1200.0, "Sneeze"),
    "m0101_0_sigh": (200.0, "Sigh"),
    "m0101_0_sniff": (1500.0, "Sniff"),
}
TEST_SPLIT = ["m0101_0_sniff", "f0003_0_throatclearing", "m0083_0_sneeze", "f0017_1_laughter"]


def make_vocalsound(data: Path, *, split: bool = True) -> Path:
    """The 16 kHz release: audio_16k/ and (optionally) datafiles/te.json, whose 'wav' paths
    are absolute paths on the authors' machine, as shipped."""
    root = data / "vocalsound"
    for stem, (frequency, _) in FILES.items():
        write_audio(root / "audio_16k" / f"{stem}.wav", tone(1.0, frequency))
    (root / "meta").mkdir()
    (root / "class_labels_indices_vs.csv").write_text("index,mid,display_name\n")
    if split:
        items = [{"wav": f"/data/sls/vocalsound/data/audio_16k/{stem}.wav",
                  "labels": f"/m/vs_{stem.rsplit('_', 1)[1]}"} for stem in TEST_SPLIT]
        (root / "datafiles").mkdir()
        (root / "datafiles" / "te.json").write_text(json.dumps({"data": items}, indent=1))
    return root


def test_test_split_is_read_with_labels_and_sex_from_the_file_names(tmp_path: Path) -> None:
    root = make_vocalsound(tmp_path)
    scenario = load("vocalsound", tmp_path, tmp_path / "cache")
    assert [i.id for i in scenario.instances] == sorted(TEST_SPLIT)
    assert {i.id: i.references[0] for i in scenario.instances} == {
        stem: FILES[stem][1] for stem in TEST_SPLIT}
    assert {i.id: i.group("gender") for i in scenario.instances} == {
        "f0003_0_throatclearing": "female", "f0017_1_laughter": "female",
        "m0083_0_sneeze": "male", "m0101_0_sniff": "male"}
    assert scenario.instances[0].group("sound") == "throatclearing"
    first = scenario.instances[0]
    assert first.choices == ("Cough", "Laughter", "Sigh", "Sneeze", "Sniff", "Throat clearing")
    assert first.audio is not None and first.audio.path == root / "audio_16k" / f"{first.id}.wav"
    assert scenario.spec.family == "multiple_choice" and scenario.spec.aspect == "perception"


def test_without_the_split_file_every_recording_is_used(tmp_path: Path) -> None:
    make_vocalsound(tmp_path, split=False)
    scenario = load("vocalsound", tmp_path, tmp_path / "cache")
    assert [i.id for i in scenario.instances] == sorted(FILES)


def test_bad_metadata_names_the_file_and_item(tmp_path: Path) -> None:
    root = make_vocalsound(tmp_path)
    split = root / "datafiles" / "te.json"
    text = split.read_text()
    split.write_text(text.replace('"wav": "/data/sls/vocalsound/data/audio_16k/m0083_0_sneeze.wav"',
                                  '"wav": ""'))
    with pytest.raises(DatasetError, match=r"te.json:11: field 'wav' is missing or empty"):
        load("vocalsound", tmp_path, tmp_path / "cache")
    split.write_text(text.replace("m0083_0_sneeze", "m0083_0_yawn"))
    with pytest.raises(DatasetError, match=r"te.json:11: file name 'm0083_0_yawn' is not"):
        load("vocalsound", tmp_path, tmp_path / "cache")
    split.write_text(text[:-3])
    with pytest.raises(DatasetError, match=r"te.json:\d+: not valid JSON"):
        load("vocalsound", tmp_path, tmp_path / "cache")
    split.unlink()
    write_audio(root / "audio_16k" / "x0001_0_cough.wav", tone(0.5, 400.0))
    with pytest.raises(DatasetError, match=r"x0001_0_cough.wav: file name 'x0001_0_cough'"):
        load("vocalsound", tmp_path, tmp_path / "cache")


def test_end_to_end_on_the_reference_model(pytester: pytest.Pytester) -> None:
    data = pytester.path / "data"
    root = make_vocalsound(data)
    (root / "audio_16k" / "m0083_0_sneeze.wav").write_bytes(b"")
    result, summary = run_real(pytester, data, {"vocalsound": "perception"})
    assert result.parseoutcomes().get("errors") == 1
    found = [r for r in records(pytester.path) if r["scenario"] == "vocalsound"]
    assert {r["id"] for r in found} == set(TEST_SPLIT)
    assert [r["id"] for r in found if r["status"] == "error"] == ["m0083_0_sneeze"]
    assert all(r["output"] for r in found if r["status"] != "error")
    scenario = summary["scenarios"]["vocalsound"]
    assert scenario["aspect"] == "perception"
    metrics = scenario["metrics"]
    assert {"accuracy", "accuracy[gender=female]", "accuracy[gender=male]",
            "accuracy[sound=sniff]", "accuracy[sound=throatclearing]"} <= set(metrics)
