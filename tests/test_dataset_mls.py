"""Multilingual LibriSpeech loader: a tiny test split in the OpenSLR layout (one language as
FLAC, one as the Ogg Opus variant) and in the Hub's Parquet export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from datasetkit import (
    RATE,
    audio_bytes,
    corpus_clips,
    records,
    run_real,
    write_audio,
    write_parquet,
)

from ahelm.audio import decode
from ahelm.datasets import DatasetError, load

METAINFO = """\
 SPEAKER   |   GENDER   | PARTITION  |  MINUTES   |  BOOK ID   |  TITLE  |  CHAPTER
  {a}     |     M      |    test    |   12.500   |    {b}    | A Book  | One
  {c}     |     F      |    test    |   10.250   |    {d}    | B Book  | Two
"""


def _opus(path: Path, samples: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, RATE, format="OGG", subtype="OPUS")


def _language(root: Path, folder: str, language: str, suffix: str,
              readers: tuple[tuple[str, str], tuple[str, str]]) -> dict[str, str]:
    clips = corpus_clips("multilingual_asr", 2, where={"language": language})
    split = root / folder / "test"
    (root / folder).mkdir(parents=True)
    (a, b), (c, d) = readers
    (root / folder / "metainfo.txt").write_text(METAINFO.format(a=a, b=b, c=c, d=d))
    transcripts, segments, truth = [], [], {}
    for index, (speaker, book) in enumerate(readers):
        utterance = f"{speaker}_{book}_{index:06d}"
        target = split / "audio" / speaker / book / f"{utterance}{suffix}"
        if suffix == ".opus":
            _opus(target, clips[index].samples)
        else:
            write_audio(target, clips[index].samples)
        text = clips[index].text.lower().replace(".", "").replace(",", "")
        transcripts.append(f"{utterance}\t{text}")
        segments.append(f"{utterance}\thttp://www.archive.org/download/x/y_64kb.mp3\t1.0\t9.0")
        truth[f"{language}-{utterance}"] = text
    (split / "transcripts.txt").write_text("\n".join(transcripts) + "\n", encoding="utf-8")
    (split / "segments.txt").write_text("\n".join(segments) + "\n")
    return truth


def make_mls(data: Path) -> dict[str, str]:
    """Dutch as FLAC (mls_dutch/), Polish as Ogg Opus (mls_polish_opus/): id -> transcript."""
    root = data / "mls"
    return {**_language(root, "mls_dutch", "nl", ".flac", (("3034", "2211"), ("880", "795"))),
            **_language(root, "mls_polish_opus", "pl", ".opus",
                        (("6892", "3413"), ("9257", "6452")))}


def test_published_layout_loads_flac_and_opus_folders(tmp_path: Path) -> None:
    truth = make_mls(tmp_path)
    scenario = load("mls_asr", tmp_path, tmp_path / "cache")
    assert [(i.id, i.language, i.group("language")) for i in scenario.instances] == [
        ("nl-3034_2211_000000", "nl", "nl"), ("nl-880_795_000001", "nl", "nl"),
        ("pl-6892_3413_000000", "pl", "pl"), ("pl-9257_6452_000001", "pl", "pl")]
    assert {i.id: i.references[0] for i in scenario.instances} == truth
    audio = [i.audio for i in scenario.instances]
    assert all(a is not None for a in audio)
    assert [a.path.relative_to(tmp_path / "mls") for a in audio if a is not None] == [
        Path("mls_dutch/test/audio/3034/2211/3034_2211_000000.flac"),
        Path("mls_dutch/test/audio/880/795/880_795_000001.flac"),
        Path("mls_polish_opus/test/audio/6892/3413/6892_3413_000000.opus"),
        Path("mls_polish_opus/test/audio/9257/6452/9257_6452_000001.opus")]
    opus = audio[2]
    assert opus is not None and opus.suffix == ".opus"
    assert len(decode(opus.read_verified(), str(opus.path))) > RATE  # Ogg Opus decodes
    assert scenario.spec.aspect == "multilinguality" and scenario.spec.dataset == "mls"


def test_bad_metadata_names_the_file_line_and_field(tmp_path: Path) -> None:
    make_mls(tmp_path)
    transcripts = tmp_path / "mls" / "mls_polish_opus" / "test" / "transcripts.txt"
    good = transcripts.read_text(encoding="utf-8")
    transcripts.write_text(good.replace("9257_6452_000001", "9257-6452-000001"), encoding="utf-8")
    with pytest.raises(DatasetError, match=r"mls_polish_opus/test/transcripts.txt:2: field "
                                           r"'utterance' should be SPEAKER_BOOK_NUMBER"):
        load("mls_asr", tmp_path, tmp_path / "cache")
    transcripts.write_text(good.splitlines()[0] + "\n9257_6452_000001 no tab here\n",
                           encoding="utf-8")
    with pytest.raises(DatasetError, match=r"transcripts.txt:2: expected 2 tab-separated fields"):
        load("mls_asr", tmp_path, tmp_path / "cache")
    transcripts.unlink()
    with pytest.raises(DatasetError, match=r"mls_polish_opus/test/transcripts.txt: not found"):
        load("mls_asr", tmp_path, tmp_path / "cache")


def test_no_ahelm_language_is_an_error_naming_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "mls" / "mls_english" / "test").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"none of AHELM's MLS languages found \(looked for "
                                           r"mls_<language>/, mls_<language>_opus/ or "
                                           r"hf/<language>/test-\*.parquet for dutch, spanish"):
        load("mls_asr", tmp_path, tmp_path / "cache")


def test_hub_parquet_export_loads_and_writes_audio_to_the_cache(tmp_path: Path) -> None:
    clips = corpus_clips("multilingual_asr", 2, where={"language": "de"})
    rows: list[dict[str, Any]] = [{"audio": {"bytes": audio_bytes(c.samples, ".flac"),
                       "path": f"4536_2101_00000{i}.flac"},
             "original_path": "http://www.archive.org/download/x/y_64kb.mp3",
             "begin_time": 1.5, "end_time": 9.25, "transcript": c.text.lower(),
             "audio_duration": 7.75, "speaker_id": "4536", "chapter_id": "2101",
             "file": f"4536_2101_00000{i}.flac", "id": f"4536_2101_00000{i}"}
            for i, c in enumerate(clips)]
    write_parquet(tmp_path / "mls" / "hf" / "german" / "test-00000-of-00001.parquet", rows)
    scenario = load("mls_asr", tmp_path, tmp_path / "cache")
    assert [(i.id, i.references[0], i.language) for i in scenario.instances] == [
        ("de-4536_2101_000000", clips[0].text.lower(), "de"),
        ("de-4536_2101_000001", clips[1].text.lower(), "de")]
    audio = scenario.instances[0].audio
    assert audio is not None and audio.path.is_relative_to(tmp_path / "cache" / "mls")
    assert audio.path.suffix == ".flac" and audio.path.read_bytes() == rows[0]["audio"]["bytes"]
    rows[1]["transcript"] = " "
    write_parquet(tmp_path / "mls" / "hf" / "german" / "test-00000-of-00001.parquet", rows)
    with pytest.raises(DatasetError, match=r"test-00000-of-00001.parquet#row2: field "
                                           r"'transcript' is missing or empty"):
        load("mls_asr", tmp_path, tmp_path / "cache")


def test_end_to_end_on_the_reference_model(pytester: pytest.Pytester) -> None:
    data = pytester.path / "data"
    truth = make_mls(data)
    broken = next((data / "mls" / "mls_dutch").rglob("880_795_000001.flac"))
    broken.write_bytes(b"fLaC and then nothing useful")
    result, summary = run_real(pytester, data, {"mls_asr": "multilinguality"})
    assert result.parseoutcomes().get("errors") == 1
    found = [r for r in records(pytester.path) if r["scenario"] == "mls_asr"]
    assert {r["id"] for r in found} == set(truth)
    assert {r["id"] for r in found if r["status"] == "error"} == {"nl-880_795_000001"}
    answered = [r for r in found if r["status"] != "error"]
    assert len(answered) == 3 and all(r["output"] is not None for r in answered)
    scenario = summary["scenarios"]["mls_asr"]
    assert scenario["aspect"] == "multilinguality"
    assert {"wer", "wer[language=nl]", "wer[language=pl]"} <= set(scenario["metrics"])
    result.stdout.no_fnmatch_line("*real-data scenario*not run*")
