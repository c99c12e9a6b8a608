"""FLEURS loader: a tiny test split in the google/fleurs layout (headerless TSV, extracted
audio/test/ folder, 32-bit float WAV as FLEURS ships) and in a `datasets` Parquet export."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from datasetkit import RATE, corpus_clips, records, run_real, tone, write_parquet

from ahelm.datasets import DatasetError, load

THAI = "สวัสดีตอนเช้า"
"""Our own words ("good morning"), spoken by a tone: only the metadata matters for Thai."""


def _wav(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, RATE, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def _line(sentence: int, name: str, text: str, gender: str, samples: np.ndarray) -> str:
    normalised = text.lower().replace(".", "").replace(",", "")
    characters = " ".join(normalised.replace(" ", "|")) + " |"
    return "\t".join([str(sentence), name, text, normalised, characters, str(len(samples)),
                      gender])


def _language(root: Path, config: str, items: list[tuple[int, str, str, str, np.ndarray]]) -> None:
    folder = root / "data" / config
    (folder / "audio" / "test").mkdir(parents=True)
    lines = []
    for sentence, name, text, gender, samples in items:
        (folder / "audio" / "test" / name).write_bytes(_wav(samples))
        lines.append(_line(sentence, name, text, gender, samples))
    (folder / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "audio" / "test.tar.gz").write_bytes(b"")  # the archive stays next to its folder


def make_fleurs(data: Path) -> dict[str, tuple[str, str, str]]:
    """Finnish (2), US English (3: male, female, other) and Thai (1); id -> (reference,
    language, gender). Hebrew, Zulu and Bengali are absent: only present languages load."""
    root = data / "fleurs"
    finnish = corpus_clips("multilingual_asr", 2, where={"language": "fi"})
    english = corpus_clips("english_asr", 1, where={"voice": "rms"}) + corpus_clips(
        "english_asr", 2, where={"voice": "slt"})
    _language(root, "fi_fi", [(1501, "1830276839221356.wav", finnish[0].text, "MALE",
                               finnish[0].samples),
                              (1502, "2071348570184933.wav", finnish[1].text, "FEMALE",
                               finnish[1].samples)])
    _language(root, "en_us", [(1601, "1122334455667788.wav", english[0].text, "MALE",
                               english[0].samples),
                              (1601, "9988776655443322.wav", english[1].text, "FEMALE",
                               english[1].samples),
                              (1602, "5566778899001122.wav", english[2].text, "OTHER",
                               english[2].samples)])
    _language(root, "th_th", [(1701, "4455667788990011.wav", THAI, "FEMALE", tone(1.5, 330))])

    def norm(text: str) -> str:
        return text.lower().replace(".", "").replace(",", "")

    return {
        "fi_fi-1830276839221356": (norm(finnish[0].text), "fi", "male"),
        "fi_fi-2071348570184933": (norm(finnish[1].text), "fi", "female"),
        "en_us-1122334455667788": (norm(english[0].text), "en", "male"),
        "en_us-9988776655443322": (norm(english[1].text), "en", "female"),
        "en_us-5566778899001122": (norm(english[2].text), "en", "other"),
        "th_th-4455667788990011": (THAI, "th", "female"),
    }


def test_published_layout_loads_the_languages_present(tmp_path: Path) -> None:
    truth = make_fleurs(tmp_path)
    scenario = load("fleurs_asr", tmp_path, tmp_path / "cache")
    assert [i.id for i in scenario.instances] == [
        "fi_fi-1830276839221356", "fi_fi-2071348570184933", "en_us-1122334455667788",
        "en_us-9988776655443322", "en_us-5566778899001122", "th_th-4455667788990011"]
    assert {i.id: i.references[0] for i in scenario.instances} == {
        k: v[0] for k, v in truth.items()}
    assert {i.id: (i.language, i.group("language")) for i in scenario.instances} == {
        k: (v[1], v[1]) for k, v in truth.items()}
    thai = scenario.instances[-1]
    assert thai.audio is not None
    assert thai.audio.path == (tmp_path / "fleurs" / "data" / "th_th" / "audio" / "test"
                               / "4455667788990011.wav")
    assert scenario.family.score(thai, THAI[:-1], None)["by_characters"] == 1.0  # Thai: by characters
    assert scenario.spec.aspect == "multilinguality" and scenario.spec.dataset == "fleurs"

    fairness = load("fleurs_fairness", tmp_path, tmp_path / "cache")
    assert {i.id: i.group("gender") for i in fairness.instances} == {
        "en_us-1122334455667788": "male", "en_us-9988776655443322": "female"}
    assert fairness.spec.aspect == "fairness"


def test_bad_metadata_names_the_file_line_and_field(tmp_path: Path) -> None:
    make_fleurs(tmp_path)
    tsv = tmp_path / "fleurs" / "data" / "fi_fi" / "test.tsv"
    good = tsv.read_text(encoding="utf-8")
    tsv.write_text(good.replace("\tFEMALE", "\tF"), encoding="utf-8")
    with pytest.raises(DatasetError, match=r"fi_fi/test.tsv:2: field 'gender' \(7th\) should be "
                                           r"MALE, FEMALE or OTHER, found 'F'"):
        load("fleurs_asr", tmp_path, tmp_path / "cache")
    first, second = good.splitlines()
    tsv.write_text(first + "\n" + "\t".join(second.split("\t")[:4]) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"fi_fi/test.tsv:2: expected 7 tab-separated fields"):
        load("fleurs_asr", tmp_path, tmp_path / "cache")
    (tmp_path / "fleurs" / "data" / "fi_fi" / "test.tsv").unlink()
    with pytest.raises(DatasetError, match=r"fi_fi/test.tsv: not found \(the fi_fi test"):
        load("fleurs_asr", tmp_path, tmp_path / "cache")


def test_no_ahelm_language_is_an_error_naming_what_was_looked_for(tmp_path: Path) -> None:
    german = tmp_path / "fleurs" / "data" / "de_de"
    german.mkdir(parents=True)
    (german / "test.tsv").write_text("1\ta.wav\tHallo.\thallo\th a l l o |\t16000\tMALE\n")
    with pytest.raises(DatasetError, match=r"none of AHELM's FLEURS languages for fleurs_asr "
                                           r"found \(looked for data/fi_fi/test.tsv or hf/fi_fi/"):
        load("fleurs_asr", tmp_path, tmp_path / "cache")
    with pytest.raises(DatasetError, match=r"for fleurs_fairness found \(looked for "
                                           r"data/en_us/test.tsv or hf/en_us/;"):
        load("fleurs_fairness", tmp_path, tmp_path / "cache")


def test_hub_parquet_export_loads_with_class_label_gender(tmp_path: Path) -> None:
    clips = corpus_clips("english_asr", 1, where={"voice": "rms"}) + corpus_clips(
        "english_asr", 2, where={"voice": "slt"})
    rows: list[dict[str, Any]] = [{"id": 1601 + i, "num_samples": len(c.samples), "path": None,
             "audio": {"bytes": _wav(c.samples), "path": f"test/{name}.wav"},
             "transcription": c.text.lower(), "raw_transcription": c.text, "gender": gender,
             "lang_id": 19, "language": "English", "lang_group_id": 0}
            for i, (c, name, gender) in enumerate(zip(clips, ("111", "222", "333"), (0, 1, 2),
                                                      strict=True))]
    write_parquet(tmp_path / "fleurs" / "hf" / "en_us" / "test-00000-of-00001.parquet", rows)
    scenario = load("fleurs_fairness", tmp_path, tmp_path / "cache")
    assert {i.id: i.group("gender") for i in scenario.instances} == {
        "en_us-111": "male", "en_us-222": "female"}
    assert scenario.instances[0].references == (clips[0].text.lower(),)
    audio = scenario.instances[1].audio
    assert audio is not None and audio.path.is_relative_to(tmp_path / "cache" / "fleurs")
    assert audio.path.read_bytes() == rows[1]["audio"]["bytes"]
    rows[2]["gender"] = 7
    write_parquet(tmp_path / "fleurs" / "hf" / "en_us" / "test-00000-of-00001.parquet", rows)
    with pytest.raises(DatasetError, match=r"test-00000-of-00001.parquet#row3: column 'gender'"):
        load("fleurs_asr", tmp_path, tmp_path / "cache")


def test_end_to_end_on_the_reference_model(pytester: pytest.Pytester) -> None:
    data = pytester.path / "data"
    truth = make_fleurs(data)
    broken = data / "fleurs" / "data" / "en_us" / "audio" / "test" / "1122334455667788.wav"
    broken.write_bytes(b"RIFF but not audio")
    result, summary = run_real(pytester, data, {"fleurs_asr": "multilinguality",
                                                "fleurs_fairness": "fairness"})
    assert result.parseoutcomes().get("errors") == 2  # the one bad file, in both scenarios
    found = records(pytester.path)
    asr = [r for r in found if r["scenario"] == "fleurs_asr"]
    assert {r["id"] for r in asr} == set(truth)
    errored = {r["id"] for r in found if r["status"] == "error"}
    assert errored == {"en_us-1122334455667788"}
    assert all(r["output"] is not None for r in asr if r["status"] != "error")
    scenarios = summary["scenarios"]
    assert scenarios["fleurs_asr"]["aspect"] == "multilinguality"
    assert scenarios["fleurs_fairness"]["aspect"] == "fairness"
    metrics = scenarios["fleurs_asr"]["metrics"]
    assert {"wer[language=fi]", "wer[language=en]", "ter[language=th]"} <= set(metrics)
    assert "wer[gender=female]" in scenarios["fleurs_fairness"]["metrics"]
    result.stdout.no_fnmatch_line("*real-data scenario*not run*")
