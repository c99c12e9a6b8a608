"""AIR-Bench loader: Foundation/ and Chat/ as the Hub repository holds them (a meta JSON array
and one audio folder per <task_name>_<dataset_name>), split into AHELM's three scenarios."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from datasetkit import corpus_clips, records, run_real, tone, write_audio

from ahelm.datasets import DatasetError, load
from ahelm.datasets.air_bench import chat_subject

# Questions, options and answers are our own words; task and dataset names are AIR-Bench's.
FOUNDATION: list[dict[str, Any]] = [
    {"path": "004708.mp3", "question": "Which genre fits this piece best?",
     "choice_a": "Rock", "choice_b": "Folk", "choice_c": "Hip-Hop", "choice_d": "Electronic",
     "answer_gt": "Electronic", "task_name": "Music_Genre_Recognition", "dataset_name": "fma",
     "uniq_id": 101},
    {"path": "spk_f_0001.wav", "question": "Is the speaker male or female?",
     "choice_a": "Male", "choice_b": "Female", "answer_gt": "Female",
     "task_name": "Speaker_Gender_Recognition", "dataset_name": "common_voice", "uniq_id": 102},
    {"path": "keyboard_acoustic_004-060-100.wav", "question": "Which instrument is playing?",
     "choice_a": "guitar", "choice_b": "keyboard", "choice_c": "flute", "choice_d": None,
     "answer_gt": "keyboard", "task_name": "Music_Instruments_Classfication",
     "dataset_name": "nsynth", "uniq_id": 103},
    {"path": "track_17.wav", "question": "How fast is the tempo of this recording?",
     "choice_a": "Slow", "choice_b": "Fast", "choice_c": "Medium", "choice_d": "Slow",
     "answer_gt": "Slow", "task_name": "Music_AQA", "dataset_name": "MusicQA", "uniq_id": 104},
]
CHAT: list[dict[str, Any]] = [
    {"meta_info": "[]", "question": "What is the man planning to do?",
     "answer_gt": "Go for a walk in the park.", "path": "12.50_40.20.wav",
     "task_name": "speech_dialogue_QA", "dataset_name": "fisher", "uniq_id": 0},
    {"meta_info": "", "question": "What makes the sound in this clip?",
     "answer_gt": "A high electronic beep.", "path": "beep_17.wav",
     "task_name": "sound_QA", "dataset_name": "clotho", "uniq_id": 1},
    {"meta_info": "", "question": "Describe the melody you hear.",
     "answer_gt": "A single low note held for two seconds.", "path": "Xy3_low.wav",
     "task_name": "music_QA", "dataset_name": "musiccaps", "uniq_id": 2},
    {"meta_info": "", "question": "What does the speaker say while the tone plays?",
     "answer_gt": "A sentence about the kitchen.", "path": "cv_001_add_beep.wav",
     "task_name": "speech_and_sound_QA", "dataset_name": "audiocaps_cv", "uniq_id": 3},
    {"meta_info": "", "question": "Could this sound be made again with a synthesiser?",
     "answer_gt": "Yes, with a plain sine wave.", "path": "hum_03.wav",
     "task_name": "sound_generation_QA", "dataset_name": "clotho", "uniq_id": 4},
    {"meta_info": "", "question": "What mood does the speaker convey?",
     "answer_gt": "Calm.", "path": "Ses01F_impro01_F000.wav",
     "task_name": "speech_QA", "dataset_name": "iemocap", "uniq_id": 5},
]


def make_air_bench(data: Path, *, minified: bool = False) -> Path:
    root = data / "air_bench"
    speech = corpus_clips("english_asr", 3, where={"voice": "slt"})
    audio = {"004708.mp3": tone(2.0, 440.0), "spk_f_0001.wav": speech[0].samples,
             "keyboard_acoustic_004-060-100.wav": tone(1.0, 261.6),
             "track_17.wav": tone(2.0, 330.0), "12.50_40.20.wav": speech[1].samples,
             "beep_17.wav": tone(1.0, 2000.0), "Xy3_low.wav": tone(2.0, 98.0),
             "cv_001_add_beep.wav": speech[2].samples, "hum_03.wav": tone(1.5, 120.0),
             "Ses01F_impro01_F000.wav": speech[0].samples}
    for half, items in (("Foundation", FOUNDATION), ("Chat", CHAT)):
        for item in items:
            folder = root / half / f"{item['task_name']}_{item['dataset_name']}"
            write_audio(folder / item["path"], audio[item["path"]])
        text = json.dumps(items) if minified else json.dumps(items, indent=4)
        (root / half / f"{half}_meta.json").write_text(text)
    return root


def test_foundation_keeps_ahelm_music_tasks_as_multiple_choice(tmp_path: Path) -> None:
    root = make_air_bench(tmp_path)
    scenario = load("air_bench_foundation", tmp_path, tmp_path / "cache")
    by_id = {i.id: i for i in scenario.instances}
    assert list(by_id) == ["Music_Genre_Recognition_fma-101",
                           "Music_Instruments_Classfication_nsynth-103", "Music_AQA_MusicQA-104"]
    genre = by_id["Music_Genre_Recognition_fma-101"]
    assert genre.choices == ("Rock", "Folk", "Hip-Hop", "Electronic")
    assert genre.references == ("Electronic",)
    assert genre.prompt.startswith("Which genre fits this piece best?\n\nA. Rock\n")
    assert genre.group("task") == "music_genre_recognition"
    assert genre.audio is not None
    assert genre.audio.path == root / "Foundation" / "Music_Genre_Recognition_fma" / "004708.mp3"
    assert by_id["Music_Instruments_Classfication_nsynth-103"].choices == (
        "guitar", "keyboard", "flute")
    assert by_id["Music_AQA_MusicQA-104"].choices == ("Slow", "Fast", "Medium")
    assert by_id["Music_AQA_MusicQA-104"].group("task") == "music_qa"
    assert scenario.spec.aspect == "knowledge" and scenario.spec.family == "multiple_choice"


def test_chat_splits_by_subject_into_knowledge_and_reasoning(tmp_path: Path) -> None:
    root = make_air_bench(tmp_path)
    knowledge = load("air_bench_chat_knowledge", tmp_path, tmp_path / "cache")
    reasoning = load("air_bench_chat_reasoning", tmp_path, tmp_path / "cache")
    assert {i.id: i.group("task") for i in knowledge.instances} == {
        "sound_QA_clotho-1": "sound", "music_QA_musiccaps-2": "music",
        "sound_generation_QA_clotho-4": "sound"}
    assert {i.id: i.group("task") for i in reasoning.instances} == {
        "speech_dialogue_QA_fisher-0": "speech", "speech_and_sound_QA_audiocaps_cv-3": "mix",
        "speech_QA_iemocap-5": "speech"}
    first = reasoning.instances[0]
    assert first.prompt == "What is the man planning to do?"
    assert first.references == ("Go for a walk in the park.",)
    assert first.max_tokens == 200 and reasoning.spec.aspect == "reasoning"
    assert first.audio is not None
    assert first.audio.path == root / "Chat" / "speech_dialogue_QA_fisher" / "12.50_40.20.wav"
    assert knowledge.spec.aspect == "knowledge" and knowledge.spec.family == "open_answer"
    assert chat_subject("speech_and_music_QA") == "mix"
    assert chat_subject("music_generation_analysis_QA") == "music"


def _rewrite(meta: Path, index: int, **changes: Any) -> None:
    items = json.loads(meta.read_text())
    items[index].update(changes)
    meta.write_text(json.dumps(items, indent=4))


def test_bad_metadata_names_the_file_line_and_field(tmp_path: Path) -> None:
    root = make_air_bench(tmp_path)
    foundation = root / "Foundation" / "Foundation_meta.json"
    chat = root / "Chat" / "Chat_meta.json"
    # indent=4: "[" on line 1, then items of 12 and 10 lines: item 3 starts on line 24
    _rewrite(foundation, 2, answer_gt="piano")
    with pytest.raises(DatasetError, match=r"Foundation_meta.json:24: field 'answer_gt' 'piano'"):
        load("air_bench_foundation", tmp_path, tmp_path / "cache")
    _rewrite(foundation, 2, answer_gt="keyboard", path="../../escape.wav")
    with pytest.raises(DatasetError, match=r"Foundation_meta.json:24: field 'path'"):
        load("air_bench_foundation", tmp_path, tmp_path / "cache")
    _rewrite(chat, 1, question="  ")
    with pytest.raises(DatasetError, match=r"Chat_meta.json:11: field 'question' is missing"):
        load("air_bench_chat_knowledge", tmp_path, tmp_path / "cache")
    chat.write_text(json.dumps({"data": CHAT}))
    with pytest.raises(DatasetError, match=r"Chat_meta.json:1: expected a JSON array"):
        load("air_bench_chat_reasoning", tmp_path, tmp_path / "cache")
    foundation.unlink()
    with pytest.raises(DatasetError, match=r"Foundation_meta.json: not found"):
        load("air_bench_foundation", tmp_path, tmp_path / "cache")


def test_a_one_line_meta_file_names_items_by_number(tmp_path: Path) -> None:
    root = make_air_bench(tmp_path, minified=True)
    assert len((root / "Chat" / "Chat_meta.json").read_text().splitlines()) == 1
    assert len(load("air_bench_chat_knowledge", tmp_path, tmp_path / "c").instances) == 3
    items = json.loads((root / "Chat" / "Chat_meta.json").read_text())
    del items[4]["answer_gt"]
    (root / "Chat" / "Chat_meta.json").write_text(json.dumps(items))
    with pytest.raises(DatasetError, match=r"Chat_meta.json#item5: field 'answer_gt'"):
        load("air_bench_chat_knowledge", tmp_path, tmp_path / "cache")


def test_end_to_end_on_the_reference_model(pytester: pytest.Pytester) -> None:
    data = pytester.path / "data"
    root = make_air_bench(data)
    (root / "Chat" / "sound_QA_clotho" / "beep_17.wav").write_bytes(b"not a wave file")
    result, summary = run_real(pytester, data, {"air_bench_foundation": "knowledge",
                                                "air_bench_chat_knowledge": "knowledge",
                                                "air_bench_chat_reasoning": "reasoning"})
    assert result.parseoutcomes().get("errors") == 1
    found = records(pytester.path)
    assert [(r["scenario"], r["id"]) for r in found if r["status"] == "error"] == [
        ("air_bench_chat_knowledge", "sound_QA_clotho-1")]
    assert {r["id"] for r in found if r["scenario"] == "air_bench_chat_reasoning"} == {
        "speech_dialogue_QA_fisher-0", "speech_and_sound_QA_audiocaps_cv-3",
        "speech_QA_iemocap-5"}
    assert all(r["output"] in ("A", "B", "C", "D") for r in found
               if r["scenario"] == "air_bench_foundation")
    scenarios = summary["scenarios"]
    assert scenarios["air_bench_foundation"]["aspect"] == "knowledge"
    assert scenarios["air_bench_chat_knowledge"]["aspect"] == "knowledge"
    assert scenarios["air_bench_chat_reasoning"]["aspect"] == "reasoning"
    assert "accuracy[task=music_qa]" in scenarios["air_bench_foundation"]["metrics"]
    assert {"chrf", "accuracy[task=mix]", "accuracy[task=speech]"} <= set(
        scenarios["air_bench_chat_reasoning"]["metrics"])
