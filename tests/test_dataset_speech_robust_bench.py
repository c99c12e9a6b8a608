"""Speech Robust Bench loader: a tiny copy of the Hub's pertEval config (Parquet, pert_idx)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from datasetkit import audio_bytes, corpus_clips, records, run_real, write_parquet

from ahelm.datasets import DatasetError, load

CONFIG = "librispeech_asr-test.clean_pertEval_500_30"
UTTERANCES = ("1089-134686-0000", "121-121726-0001")
COPIES = 5
"""Per utterance: the original (pert_idx 0) and four noisy copies; AHELM reads copies 1-3."""


def _rows(split: str, seed: int) -> list[dict[str, Any]]:
    """Rows in the Hub's order: all utterances' copy 0, then all copies 1, and so on."""
    clips = corpus_clips("english_asr", 2, where={"voice": "rms"})
    rng = np.random.default_rng(seed)
    rows = []
    for copy in range(COPIES):
        for utterance, clip in zip(UTTERANCES, clips, strict=True):
            samples = clip.samples
            if copy:
                samples = samples + rng.normal(0, 0.003 * copy, samples.shape).astype(np.float32)
            speaker, chapter, _ = utterance.split("-")
            rows.append({"file": f"{utterance}.flac", "text": clip.text.upper().rstrip("."),
                         "audio": {"bytes": audio_bytes(samples, ".wav"), "path": None},
                         "speaker_id": int(speaker), "chapter_id": int(chapter),
                         "id": utterance, "pert_idx": copy})
    return rows


def make_srb(data: Path, *, with_pert_idx: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Both splits, each in two Parquet shards as the Hub stores them."""
    folder = data / "speech_robust_bench" / CONFIG
    made = {}
    for split, seed in (("gnoise.1", 1), ("env_noise_esc50.1", 2)):
        rows = _rows(split, seed)
        if not with_pert_idx:
            for row in rows:
                del row["pert_idx"]
        half = len(rows) // 2 + 1
        write_parquet(folder / f"{split}-00000-of-00002.parquet", rows[:half])
        write_parquet(folder / f"{split}-00001-of-00002.parquet", rows[half:])
        made[split] = rows
    return made


CONDITIONS = ("clean", "gnoise-1", "gnoise-2", "gnoise-3", "env_noise-1", "env_noise-2",
              "env_noise-3")


def test_hub_export_loads_clean_and_three_levels_of_each_noise(tmp_path: Path) -> None:
    made = make_srb(tmp_path)
    scenario = load("speech_robust_bench", tmp_path, tmp_path / "cache")
    got = {i.id: i for i in scenario.instances}
    assert list(got) == [f"{u}-{c}" for u in UTTERANCES for c in CONDITIONS]
    assert {i.group("condition") for i in got.values()} == set(CONDITIONS)
    assert {i.pair for i in got.values()} == set(UTTERANCES)
    first = got["1089-134686-0000-clean"]
    assert first.references == (made["gnoise.1"][0]["text"].lower(),)
    # each condition reads the copy with pert_idx == level; the original is copy 0
    for condition, split, copy in (("clean", "gnoise.1", 0), ("gnoise-2", "gnoise.1", 2),
                                   ("env_noise-3", "env_noise_esc50.1", 3)):
        audio = got[f"121-121726-0001-{condition}"].audio
        assert audio is not None and audio.path.is_relative_to(
            tmp_path / "cache" / "speech_robust_bench")
        assert audio.path.read_bytes() == made[split][2 * copy + 1]["audio"]["bytes"]
    assert scenario.spec.aspect == "robustness" and scenario.spec.pair_by == "utterance"
    again = load("speech_robust_bench", tmp_path, tmp_path / "cache")
    assert [i.audio for i in again.instances] == [i.audio for i in scenario.instances]


def test_ahelm_key_mapping_picks_the_listed_rows(tmp_path: Path) -> None:
    made = make_srb(tmp_path, with_pert_idx=False)
    # per utterance, AHELM's list of row indices into the split; level k takes entry k-1
    keys = {"0": [9, 7, 5, 3, 1], "1": [8, 6, 4, 2, 0]}
    (tmp_path / "speech_robust_bench" / "srb_instance_keys.json").write_text(json.dumps(
        {"srb_librispeech_noises_key2audio": {"gnoise.1": keys, "env_noise_esc50.1": keys}}))
    scenario = load("speech_robust_bench", tmp_path, tmp_path / "cache")
    got = {i.id: i for i in scenario.instances}
    assert len(got) == 14
    expected = {"gnoise-1": 9, "gnoise-2": 7, "gnoise-3": 5, "clean": 1}
    for condition, row in expected.items():
        audio = got[f"121-121726-0001-{condition}"].audio
        assert audio is not None
        assert audio.path.read_bytes() == made["gnoise.1"][row]["audio"]["bytes"]
    # an utterance the mapping leaves out is left out of the clean condition too
    one = {"1": keys["1"]}
    (tmp_path / "speech_robust_bench" / "srb_instance_keys.json").write_text(json.dumps(
        {"srb_librispeech_noises_key2audio": {"gnoise.1": one, "env_noise_esc50.1": one}}))
    scenario = load("speech_robust_bench", tmp_path, tmp_path / "cache")
    assert [i.id for i in scenario.instances] == [f"{UTTERANCES[0]}-{c}" for c in CONDITIONS]


def test_bad_rows_and_mapping_name_the_file_and_row(tmp_path: Path) -> None:
    made = make_srb(tmp_path)
    folder = tmp_path / "speech_robust_bench" / CONFIG
    broken = [dict(r) for r in made["gnoise.1"][6:]]
    broken[1]["text"] = ""
    write_parquet(folder / "gnoise.1-00001-of-00002.parquet", broken)
    with pytest.raises(DatasetError, match=r"gnoise\.1-00001-of-00002\.parquet#row2: fields "
                                           r"'id' \(or 'file'\) and 'text' must not be empty"):
        load("speech_robust_bench", tmp_path, tmp_path / "cache")
    write_parquet(folder / "gnoise.1-00001-of-00002.parquet", made["gnoise.1"][6:])
    mapping = tmp_path / "speech_robust_bench" / "srb_instance_keys.json"
    mapping.write_text(json.dumps({"srb_librispeech_noises_key2audio": {
        "gnoise.1": {"0": [1, 2, 99]}, "env_noise_esc50.1": {"0": [1, 2, 3]}}}))
    with pytest.raises(DatasetError, match=r"srb_instance_keys\.json: "
                                           r"srb_librispeech_noises_key2audio\.gnoise\.1\.0\[2\]: "
                                           r"row 99 is outside the 10 rows"):
        load("speech_robust_bench", tmp_path, tmp_path / "cache")
    mapping.unlink()
    for path in folder.iterdir():
        path.unlink()
    with pytest.raises(DatasetError, match=r"no gnoise\.1 or env_noise_esc50\.1 split found"):
        load("speech_robust_bench", tmp_path, tmp_path / "cache")


def test_end_to_end_on_the_reference_model(pytester: pytest.Pytester) -> None:
    data = pytester.path / "data"
    made = make_srb(data)
    rows = made["env_noise_esc50.1"]
    rows[2 * 2 + 1]["audio"]["bytes"] = b"RIFF but not a wave file"  # 121-...: env_noise-2
    folder = data / "speech_robust_bench" / CONFIG
    write_parquet(folder / "env_noise_esc50.1-00000-of-00002.parquet", rows[:6])
    result, summary = run_real(pytester, data, {"speech_robust_bench": "robustness"})
    assert result.parseoutcomes().get("errors") == 1
    found = [r for r in records(pytester.path) if r["scenario"] == "speech_robust_bench"]
    assert len(found) == 14
    assert [r["id"] for r in found if r["status"] == "error"] == ["121-121726-0001-env_noise-2"]
    assert all(r["output"] for r in found if r["status"] != "error")
    scenario = summary["scenarios"]["speech_robust_bench"]
    assert scenario["aspect"] == "robustness"
    metrics = scenario["metrics"]
    for name in ("wer", "wer[condition=clean]", "wer[condition=gnoise-3]",
                 "wer_increase[condition=gnoise-1]", "wer_increase[condition=env_noise-2]",
                 "wer_ratio[condition=env_noise-3]"):
        assert name in metrics
