"""CoRe-Bench loader: a tiny copy of the Hub layout (test/instances.jsonl and test/audio/)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from datasetkit import RATE, corpus_clips, records, run_real, write_audio

from ahelm.datasets import DatasetError, load

QUESTIONS = (
    ("conv_001.mp3", "What did the first speaker say about the kettle?", "It started to whistle"),
    ("conv_001.mp3", "What colour was the sister's coat?", "Unanswerable"),
    ("conv_002.mp3", "Where should the plates go?", "On the top shelf"),
)


def make_corebench(data: Path) -> list[dict[str, str]]:
    """Two short two-voice conversations, three questions (one unanswerable)."""
    root = data / "corebench" / "test"
    male = corpus_clips("english_asr", 2, where={"voice": "rms"})
    female = corpus_clips("english_asr", 2, where={"voice": "slt"})
    gap = np.zeros(RATE // 2, dtype=np.float32)
    for index, name in enumerate(("conv_001.mp3", "conv_002.mp3")):
        joined = np.concatenate([male[index].samples, gap, female[index].samples])
        write_audio(root / "audio" / name, joined)
    rows = [{"audio_path": audio, "question": question, "answer": answer,
             "transcript": "(not read)"} for audio, question, answer in QUESTIONS]
    (root / "instances.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def test_published_layout_loads_with_unanswerable_items(tmp_path: Path) -> None:
    make_corebench(tmp_path)
    scenario = load("corebench", tmp_path, tmp_path / "cache")
    got = {i.id: i for i in scenario.instances}
    assert list(got) == ["conv_001-q1", "conv_001-q2", "conv_002-q1"]
    assert {k: i.references for k, i in got.items()} == {
        "conv_001-q1": ("It started to whistle",), "conv_001-q2": ("unanswerable",),
        "conv_002-q1": ("On the top shelf",)}
    assert {k: i.group("answerable") for k, i in got.items()} == {
        "conv_001-q1": "yes", "conv_001-q2": "no", "conv_002-q1": "yes"}
    assert got["conv_001-q1"].pair == got["conv_001-q2"].pair == "conv_001"
    first = got["conv_001-q2"]
    assert "What colour was the sister's coat?" in first.prompt and '"unanswerable"' in first.prompt
    assert first.audio is not None
    assert first.audio.path == tmp_path / "corebench" / "test" / "audio" / "conv_001.mp3"
    assert scenario.spec.aspect == "reasoning" and scenario.spec.family == "short_answer"


def test_an_id_column_is_used_when_present(tmp_path: Path) -> None:
    rows = make_corebench(tmp_path)
    for number, row in enumerate(rows):
        row["id"] = f"item-{number}"
    (tmp_path / "corebench" / "test" / "instances.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows))
    scenario = load("corebench", tmp_path, tmp_path / "cache")
    assert [i.id for i in scenario.instances] == ["item-0", "item-1", "item-2"]


def test_bad_metadata_names_the_file_line_and_field(tmp_path: Path) -> None:
    rows = make_corebench(tmp_path)
    path = tmp_path / "corebench" / "test" / "instances.jsonl"
    del rows[1]["answer"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DatasetError, match=r"instances\.jsonl:2: field 'answer' is missing"):
        load("corebench", tmp_path, tmp_path / "cache")
    path.write_text(json.dumps(rows[0]) + "\n{\"audio_path\": \n")
    with pytest.raises(DatasetError, match=r"instances\.jsonl:2: not valid JSON"):
        load("corebench", tmp_path, tmp_path / "cache")
    path.unlink()
    with pytest.raises(DatasetError, match=r"test/instances\.jsonl: not found"):
        load("corebench", tmp_path, tmp_path / "cache")


def test_end_to_end_on_the_reference_model(pytester: pytest.Pytester) -> None:
    data = pytester.path / "data"
    make_corebench(data)
    (data / "corebench" / "test" / "audio" / "conv_002.mp3").write_bytes(b"not audio")
    result, summary = run_real(pytester, data, {"corebench": "reasoning"})
    assert result.parseoutcomes().get("errors") == 1
    found = [r for r in records(pytester.path) if r["scenario"] == "corebench"]
    assert {r["id"]: r["status"] == "error" for r in found} == {
        "conv_001-q1": False, "conv_001-q2": False, "conv_002-q1": True}
    assert all(r["output"] for r in found if r["status"] != "error")
    scenario = summary["scenarios"]["corebench"]
    assert scenario["aspect"] == "reasoning"
    assert {"accuracy", "accuracy[answerable=yes]", "accuracy[answerable=no]"} <= set(
        scenario["metrics"])
