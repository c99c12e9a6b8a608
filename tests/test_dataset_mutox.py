"""MuTox loader: a tiny mutox.tsv (Meta's columns) with the segments cut into audio/<id>.mp3 as
HELM's MuTox scenario leaves them, plus its list of unfetchable ids."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from datasetkit import corpus_clips, records, run_real, write_audio

from ahelm.datasets import DatasetError, load, real_scenarios
from ahelm.datasets.mutox import LANGUAGES

COLUMNS = ["id", "lang", "partition", "public_url_segment", "audio_file_transcript",
           "contains_toxicity", "toxicity_types", "perlocutionary_effects", "label",
           "etox_result", "detoxify_score", "mutox_speech_score", "mutox_text_score",
           "mutox_zero_shot_speech_score", "mutox_zero_shot_text_score"]
# id, lang, partition, url segment, toxic ("Yes"/"No"), audio file (None: not fetched)
SHAPE = [
    ("a1f3", "eng", "devtest", "https://example.org/ep1.mp3 1200 4800", "Yes", "a1f3.mp3"),
    ("b270", "deu", "devtest", "https://example.org/folge.mp3 0 3100", "No", "b270.wav"),
    ("c9e1", "spa", "devtest", "https://example.org/p.mp3 500 2900", "Yes", "c9e1.mp3"),
    ("d004", "eng", "devtest", "https://example.org/ep2.mp3 10 900", "No", "d004.mp3"),
    ("e5aa", "eng", "train", "https://example.org/ep3.mp3 0 2000", "Yes", None),
    ("f611", "fas", "devtest", "https://example.org/f.mp3 0 2000", "No", None),
    ("a777", "fra", "devtest", "", "No", None),
    ("b888", "fra", "devtest", "https://example.org/gone.mp3 0 1000", "Yes", None),
]
LOADED = {"a1f3": ("Yes", "eng"), "b270": ("No", "deu"), "c9e1": ("Yes", "spa"),
          "d004": ("No", "eng")}


def write_tsv(path: Path, rows: list[list[str]]) -> None:
    """As pandas writes it: tab-separated, fields quoted only when they must be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)


def table_rows() -> list[list[str]]:
    texts = [c.text for c in corpus_clips("toxicity_detection", len(SHAPE))]
    rows = []
    for (id_, lang, partition, url, toxic, _), text in zip(SHAPE, texts, strict=True):
        if id_ == "c9e1":
            text = f'She said "{text}"\tand left.'  # quoted by the writer, as pandas does
        rows.append([id_, lang, partition, url, text, toxic, "Insult" if toxic == "Yes" else "",
                     "", "1" if toxic == "Yes" else "0", "", "0.41", "-1.2", "-0.8", "0.3",
                     "0.1"])
    return rows


def make_mutox(data: Path) -> Path:
    root = data / "mutox"
    write_tsv(root / "mutox.tsv", table_rows())
    clips = {c.language: c for c in corpus_clips("toxicity_detection", 112)}
    for _, lang, _, _, _, audio in SHAPE:
        if audio:
            write_audio(root / "audio" / audio, clips[{"eng": "en", "deu": "de",
                                                        "spa": "es"}[lang]].samples)
    (root / "bad_audio_files.txt").write_text("b888.mp3\n")
    return root


def test_devtest_of_the_ahelm_languages_loads_with_labels(tmp_path: Path) -> None:
    root = make_mutox(tmp_path)
    scenario = load("mutox", tmp_path, tmp_path / "cache")
    assert [i.id for i in scenario.instances] == ["b270", "a1f3", "d004", "c9e1"]
    assert {i.id: (i.references[0], i.group("language")) for i in scenario.instances} == LOADED
    audio = {i.id: i.audio.path for i in scenario.instances if i.audio is not None}
    assert audio == {"a1f3": root / "audio" / "a1f3.mp3", "b270": root / "audio" / "b270.wav",
                     "c9e1": root / "audio" / "c9e1.mp3", "d004": root / "audio" / "d004.mp3"}
    first = scenario.instances[0]
    assert first.choices == ("Yes", "No") and first.language == "deu"
    assert scenario.spec.aspect == "toxicity" and scenario.spec.dataset == "mutox"


def test_run_entries_are_ahelms_29_languages() -> None:
    entries = real_scenarios()["mutox"][1].run_entries
    assert len(entries) == len(set(entries)) == len(LANGUAGES) == 29 and "fas" not in LANGUAGES
    assert "mutox:language=Mandarin_Chinese,model=audiolm" in entries


def test_unfetched_audio_is_left_out_only_when_listed(tmp_path: Path) -> None:
    root = make_mutox(tmp_path)
    (root / "bad_audio_files.txt").unlink()
    scenario = load("mutox", tmp_path, tmp_path / "cache")
    missing = next(i for i in scenario.instances if i.id == "b888")
    assert missing.audio is not None and missing.audio.path == root / "audio" / "b888.mp3"
    assert not missing.audio.path.exists()  # the instance fails alone when it is asked


def test_bad_metadata_names_the_file_line_and_field(tmp_path: Path) -> None:
    root = make_mutox(tmp_path)
    rows = table_rows()
    rows[3][8] = "toxic"
    write_tsv(root / "mutox.tsv", rows)
    with pytest.raises(DatasetError, match=r"mutox.tsv:5: field 'label' should be 1"):
        load("mutox", tmp_path, tmp_path / "cache")
    rows = table_rows()
    rows[1].append("surplus")
    write_tsv(root / "mutox.tsv", rows)
    with pytest.raises(DatasetError, match=r"mutox.tsv:3: expected 15 tab-separated fields"):
        load("mutox", tmp_path, tmp_path / "cache")
    (root / "mutox.tsv").write_text("id\tlang\tpartition\n")
    with pytest.raises(DatasetError, match=r"mutox.tsv:1: missing column\(s\) "
                                           r"public_url_segment, label"):
        load("mutox", tmp_path, tmp_path / "cache")


def test_end_to_end_on_the_reference_model(pytester: pytest.Pytester) -> None:
    data = pytester.path / "data"
    root = make_mutox(data)
    (root / "audio" / "d004.mp3").write_bytes(b"ID3 but nothing after")
    result, summary = run_real(pytester, data, {"mutox": "toxicity"})
    assert result.parseoutcomes().get("errors") == 1
    found = [r for r in records(pytester.path) if r["scenario"] == "mutox"]
    assert {r["id"] for r in found} == set(LOADED)
    assert [r["id"] for r in found if r["status"] == "error"] == ["d004"]
    mutox = summary["scenarios"]["mutox"]
    assert mutox["aspect"] == "toxicity"
    assert {"accuracy", "accuracy[language=eng]", "accuracy[language=spa]"} <= set(
        mutox["metrics"])
