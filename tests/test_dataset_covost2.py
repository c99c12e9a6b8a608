"""CoVoST 2 loader: a tiny zh-CN->en pair as the CoVoST translation TSV joined with Common
Voice 4's validated.tsv, a tiny es->en pair as the split TSV get_covost_splits.py writes (both
with MP3 clips, as Common Voice ships them), and the Parquet export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasetkit import CORPUS, corpus_clips, records, run_real, write_audio, write_parquet

from ahelm.datasets import DatasetError, load

VALIDATED_HEADER = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccent"


def make_covost2(data: Path) -> dict[str, tuple[str, str, str]]:
    """id -> (source language, source text, reference), for the test rows only."""
    root = data / "covost2"
    chinese = corpus_clips("speech_translation", 3, where={"source_language": "cmn"})
    spanish = corpus_clips("speech_translation", 2, where={"source_language": "es"})
    references = _references()
    truth: dict[str, tuple[str, str, str]] = {}

    # zh-CN: the full CoVoST TSV (path, translation, split) + validated.tsv for the sentences.
    covost = ["path\ttranslation\tsplit"]
    validated = [VALIDATED_HEADER]
    for index, (clip, split) in enumerate(zip(chinese, ("test", "train", "test"), strict=True)):
        name = f"common_voice_zh-CN_1900{index}.mp3"
        write_audio(root / "zh-CN" / "clips" / name, clip.samples)
        reference = references["cmn"][index]
        covost.append(f"{name}\t{reference}\t{split}")
        validated.append(f"speaker{index}\t{name}\t{clip.text}\t2\t0\t\t\t")
        if split == "test":
            truth[name[:-4]] = ("zh-CN", clip.text, reference)
    (root / "covost_v2.zh-CN_en.tsv").write_text("\n".join(covost) + "\n", encoding="utf-8")
    (root / "zh-CN" / "validated.tsv").write_text("\n".join(validated) + "\n", encoding="utf-8")

    # es: the test TSV of get_covost_splits.py (path, sentence, translation, client_id).
    lines = ["path\tsentence\ttranslation\tclient_id"]
    for index, clip in enumerate(spanish):
        name = f"common_voice_es_1800{index}.mp3"
        write_audio(root / "es" / "clips" / name, clip.samples)
        reference = references["es"][index]
        lines.append(f"{name}\t{clip.text}\t{reference}\tspeaker{index}")
        truth[name[:-4]] = ("es", clip.text, reference)
    (root / "covost_v2.es_en.test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return truth


def _references() -> dict[str, list[str]]:
    """The corpus' English references, in manifest order, per source language."""
    found: dict[str, list[str]] = {"cmn": [], "es": []}
    for line in (CORPUS / "speech_translation" / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["source_language"] in found:
            found[row["source_language"]].append(row["reference"])
    # A bare double quote, as CoVoST translations have them (the TSVs are read unquoted).
    found["cmn"][2] = 'She said "thank you" and left.'
    return found


def test_both_published_forms_load_the_test_split_only(tmp_path: Path) -> None:
    truth = make_covost2(tmp_path)
    scenario = load("covost2", tmp_path, tmp_path / "cache")
    assert [i.id for i in scenario.instances] == [
        "common_voice_zh-CN_19000", "common_voice_zh-CN_19002",
        "common_voice_es_18000", "common_voice_es_18001"]
    assert {i.id: (i.language, dict(i.attributes)["source_text"], i.references[0])
            for i in scenario.instances} == truth
    assert {i.id: i.group("source_language") for i in scenario.instances} == {
        k: v[0] for k, v in truth.items()}
    assert scenario.instances[1].references == ('She said "thank you" and left.',)
    audio = scenario.instances[2].audio
    assert audio is not None
    assert audio.path == tmp_path / "covost2" / "es" / "clips" / "common_voice_es_18000.mp3"
    assert scenario.spec.aspect == "multilinguality" and scenario.spec.family == "translation"


def test_bad_metadata_names_the_file_line_and_field(tmp_path: Path) -> None:
    make_covost2(tmp_path)
    root = tmp_path / "covost2"
    validated = root / "zh-CN" / "validated.tsv"
    good = validated.read_text(encoding="utf-8")
    validated.write_text("\n".join(good.splitlines()[:3]) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"covost_v2.zh-CN_en.tsv:4: clip "
                                           r"'common_voice_zh-CN_19002.mp3' is not in .*"
                                           r"validated.tsv \(CoVoST 2 needs Common Voice Corpus 4"):
        load("covost2", tmp_path, tmp_path / "cache")
    validated.write_text(good, encoding="utf-8")
    split = root / "covost_v2.es_en.test.tsv"
    lines = split.read_text(encoding="utf-8").splitlines()
    split.write_text("\n".join([lines[0], lines[1] + "\textra", lines[2]]) + "\n",
                     encoding="utf-8")
    with pytest.raises(DatasetError, match=r"covost_v2.es_en.test.tsv:2: expected 4 "
                                           r"tab-separated fields"):
        load("covost2", tmp_path, tmp_path / "cache")
    split.write_text("\n".join([lines[0], lines[1], lines[2].split("\t")[0]]) + "\n",
                     encoding="utf-8")
    with pytest.raises(DatasetError, match=r"covost_v2.es_en.test.tsv:3: field 'sentence' "
                                           r"is missing or empty"):
        load("covost2", tmp_path, tmp_path / "cache")
    split.write_text(lines[0].replace("translation", "english") + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"covost_v2.es_en.test.tsv:1: missing column\(s\) "
                                           r"translation"):
        load("covost2", tmp_path, tmp_path / "cache")


def test_no_pair_is_an_error_naming_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "covost2").mkdir()
    (tmp_path / "covost2" / "covost_v2.fr_en.tsv").write_text("path\ttranslation\tsplit\n")
    with pytest.raises(DatasetError, match=r"no CoVoST 2 pair AHELM runs found \(looked for "
                                           r"covost_v2.zh-CN_en.tsv or covost_v2.zh-CN_en.test"
                                           r".tsv with zh-CN/clips/, or hf/zh-CN_en/"):
        load("covost2", tmp_path, tmp_path / "cache")


def test_hub_parquet_export_loads_and_writes_audio_to_the_cache(tmp_path: Path) -> None:
    clips = corpus_clips("speech_translation", 2, where={"source_language": "es"})
    mp3s = []
    for index, clip in enumerate(clips):
        mp3s.append(write_audio(tmp_path / "src" / f"common_voice_es_1800{index}.mp3",
                                clip.samples).read_bytes())
    rows = [{"client_id": f"speaker{i}", "file": f"/cv4/es/clips/common_voice_es_1800{i}.mp3",
             "audio": {"bytes": mp3s[i], "path": f"common_voice_es_1800{i}.mp3"},
             "sentence": c.text, "translation": f"Reference number {i}.",
             "id": f"common_voice_es_1800{i}"} for i, c in enumerate(clips)]
    write_parquet(tmp_path / "covost2" / "hf" / "es_en" / "test-00000-of-00001.parquet", rows)
    scenario = load("covost2", tmp_path, tmp_path / "cache")
    assert [(i.id, i.references[0], i.group("source_language")) for i in scenario.instances] == [
        ("common_voice_es_18000", "Reference number 0.", "es"),
        ("common_voice_es_18001", "Reference number 1.", "es")]
    audio = scenario.instances[0].audio
    assert audio is not None and audio.path.is_relative_to(tmp_path / "cache" / "covost2")
    assert audio.path.suffix == ".mp3" and audio.path.read_bytes() == mp3s[0]
    rows[0]["translation"] = ""
    write_parquet(tmp_path / "covost2" / "hf" / "es_en" / "test-00000-of-00001.parquet", rows)
    with pytest.raises(DatasetError, match=r"#row1: field 'translation' is missing or empty"):
        load("covost2", tmp_path, tmp_path / "cache")


def test_end_to_end_on_the_reference_model(pytester: pytest.Pytester) -> None:
    data = pytester.path / "data"
    truth = make_covost2(data)
    (data / "covost2" / "zh-CN" / "clips" / "common_voice_zh-CN_19002.mp3").write_bytes(
        b"ID3 and nothing else")
    result, summary = run_real(pytester, data, {"covost2": "multilinguality"})
    assert result.parseoutcomes().get("errors") == 1
    found = [r for r in records(pytester.path) if r["scenario"] == "covost2"]
    assert {r["id"] for r in found} == set(truth)
    assert {r["id"] for r in found if r["status"] == "error"} == {"common_voice_zh-CN_19002"}
    answered = [r for r in found if r["status"] != "error"]
    assert len(answered) == 3 and all(r["output"] is not None for r in answered)
    scenario = summary["scenarios"]["covost2"]
    assert scenario["aspect"] == "multilinguality"
    assert {"bleu", "chrf", "bleu[source_language=es]",
            "chrf[source_language=zh-CN]"} <= set(scenario["metrics"])
    result.stdout.no_fnmatch_line("*real-data scenario*not run*")
