"""Unit tests of scenario folders: reading them into instances, their errors, smoke subsets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from suitekit import SENTENCES, write_clip

from ahelm.core import AudioClip
from ahelm.scenarios import Scenario, ScenarioError, load_scenario
from ahelm.scenarios.asr import MAX_TOKENS, PROMPT

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "fixtures" / "corpus" / "english_asr"

SPEC = """\
name = "mini_asr"
aspect = "perception"
family = "asr"
title = "Mini"
language = "en"
smoke_size = {smoke_size}
group_by = ["voice", "gender"]
"""

VOICES = (("ann", "female"), ("bob", "male"), ("cyd", "female"))


def build(
    directory: Path,
    *,
    sentences: int = 4,
    voices: tuple[tuple[str, str], ...] = VOICES,
    smoke_size: int = 4,
    spec: str | None = None,
) -> list[dict[str, Any]]:
    """A scenario folder with real audio; returns the manifest rows."""
    rows = []
    index = 0
    for s in range(sentences):
        for voice, gender in voices:
            clip_id = f"s{s + 1:02d}-{voice}"
            audio = f"audio/{clip_id}.flac"
            rows.append(
                {
                    "id": clip_id,
                    "audio": audio,
                    "transcript": SENTENCES[s % len(SENTENCES)],
                    "voice": voice,
                    "gender": gender,
                    "sha256": write_clip(directory / audio, index),
                }
            )
            index += 1
    write_manifest(directory, rows)
    (directory / "scenario.toml").write_text(
        spec if spec is not None else SPEC.format(smoke_size=smoke_size)
    )
    return rows


def write_manifest(directory: Path, rows: list[Any]) -> Path:
    path = directory / "manifest.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def fake_rows(n: int, voices: tuple[tuple[str, str], ...] = VOICES) -> list[dict[str, Any]]:
    """Manifest rows without audio files (loading does not open the audio)."""
    return [
        {
            "id": f"s{i:03d}-{v}",
            "audio": f"audio/s{i:03d}-{v}.flac",
            "transcript": "hello there",
            "voice": v,
            "gender": g,
            "sha256": "0" * 64,
        }
        for i in range(n)
        for v, g in voices
    ]


# -- load_scenario --------------------------------------------------------------------------------


def test_load_scenario(tmp_path: Path) -> None:
    rows = build(tmp_path, sentences=2)
    scenario = load_scenario(tmp_path)
    assert scenario.name == "mini_asr"
    assert scenario.spec.aspect == "perception"
    assert scenario.spec.family == "asr" and scenario.family.name == "asr"
    assert scenario.spec.title == "Mini"
    assert scenario.spec.group_by == ("voice", "gender")
    assert scenario.spec.directory == tmp_path
    assert [i.id for i in scenario.instances] == [r["id"] for r in rows]
    first = scenario.instances[0]
    assert first.scenario == "mini_asr"
    assert first.aspect == "perception"
    assert first.prompt == PROMPT
    assert "Transcribe" in first.prompt
    assert first.max_tokens == MAX_TOKENS == 100
    assert first.references == (SENTENCES[0],)
    assert first.groups == (("voice", "ann"), ("gender", "female"))
    assert first.group("voice") == "ann" and first.group("gender") == "female"
    assert first.group("age") is None
    assert first.language == "en"
    assert first.audio == AudioClip(
        path=tmp_path / "audio" / "s01-ann.flac", sha256=rows[0]["sha256"]
    )
    assert first.audio is not None and first.audio.read_verified()


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    rows = fake_rows(2)
    (tmp_path / "scenario.toml").write_text(SPEC.format(smoke_size=4))
    write_manifest(tmp_path, [rows[0], "", "   ", *rows[1:]])
    assert len(load_scenario(tmp_path).instances) == len(rows)


def test_spec_defaults(tmp_path: Path) -> None:
    (tmp_path / "scenario.toml").write_text('name = "x"\naspect = "knowledge"\nfamily = "asr"\n')
    write_manifest(tmp_path, [{"id": "a", "audio": "a.wav", "transcript": "t", "sha256": "0"}])
    scenario = load_scenario(tmp_path)
    assert scenario.spec.smoke_size == 40
    assert scenario.spec.group_by == ()
    assert scenario.spec.language == "en"
    assert scenario.instances[0].groups == ()
    assert scenario.instances[0].aspect == "knowledge"


def manifest_error(tmp_path: Path, lines: list[Any]) -> str:
    (tmp_path / "scenario.toml").write_text(SPEC.format(smoke_size=4))
    write_manifest(tmp_path, lines)
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path)
    return str(info.value)


GOOD = fake_rows(1)[0]


def without(key: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k != key}


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ('{"id": "x", "audio": ', "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (without("transcript"), "field 'transcript' is missing"),
        (without("sha256"), "field 'sha256' is missing"),
        (without("gender"), "field 'gender' is missing"),
        ({**GOOD, "transcript": 5}, "field 'transcript' should be str, got int"),
        ({**GOOD, "id": 12}, "field 'id' should be str, got int"),
        ({**GOOD, "audio": None}, "field 'audio' should be str, got NoneType"),
        ({**GOOD, "voice": True}, "field 'voice' should be str, got bool"),
    ],
)
def test_manifest_errors_name_file_line_and_field(tmp_path: Path, bad: Any, fragment: str) -> None:
    rows = fake_rows(1)
    message = manifest_error(tmp_path, [*rows, bad])
    assert message.startswith(f"{tmp_path / 'manifest.jsonl'}:{len(rows) + 1}: ")
    assert fragment in message


def test_duplicate_id_names_the_line(tmp_path: Path) -> None:
    rows = fake_rows(2)
    message = manifest_error(tmp_path, [*rows, rows[1]])
    assert (
        message
        == f"{tmp_path / 'manifest.jsonl'}:{len(rows) + 1}: duplicate instance id {rows[1]['id']!r}"
    )


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    message = manifest_error(tmp_path, [GOOD, "", "{broken"])
    assert message.startswith(f"{tmp_path / 'manifest.jsonl'}:3: ")


def test_empty_manifest(tmp_path: Path) -> None:
    assert "no instances" in manifest_error(tmp_path, [])


def test_missing_manifest(tmp_path: Path) -> None:
    (tmp_path / "scenario.toml").write_text(SPEC.format(smoke_size=4))
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path)
    assert str(info.value) == f"{tmp_path / 'manifest.jsonl'}: manifest not found"


def spec_error(tmp_path: Path, text: str | None) -> str:
    if text is not None:
        (tmp_path / "scenario.toml").write_text(text)
    write_manifest(tmp_path, [GOOD])
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'scenario.toml'}: ")
    return message


BASE = 'name = "x"\naspect = "perception"\nfamily = "asr"\n'


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (BASE.replace('"asr"', '"vqa"'), "field 'family': unknown family 'vqa'; known: asr"),
        (BASE.replace('"perception"', '"vision"'), "field 'aspect': 'vision' is not one of"),
        ('aspect = "perception"\nfamily = "asr"\n', "field 'name' is missing or not a string"),
        ('name = "x"\naspect = 3\nfamily = "asr"\n', "field 'aspect' is missing or not a string"),
        (BASE + "smoke_size = 0\n", "field 'smoke_size' should be a positive integer"),
        (BASE + 'smoke_size = "10"\n', "field 'smoke_size'"),
        (BASE + 'group_by = "voice"\n', "field 'group_by' should be a list of strings"),
        (BASE + "group_by = [1]\n", "field 'group_by'"),
        ("name = ", "not valid TOML"),
    ],
)
def test_spec_errors_name_file_and_field(tmp_path: Path, text: str, fragment: str) -> None:
    assert fragment in spec_error(tmp_path, text)


def test_missing_spec(tmp_path: Path) -> None:
    assert "scenario.toml not found" in spec_error(tmp_path, None)


# -- Scenario.select ------------------------------------------------------------------------------


def scenario_of(
    tmp_path: Path,
    rows: list[dict[str, Any]],
    smoke_size: int,
    group_by: str = '["voice", "gender"]',
) -> Scenario:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "scenario.toml").write_text(
        f'name = "sel"\naspect = "perception"\nfamily = "asr"\nsmoke_size = {smoke_size}\n'
        f"group_by = {group_by}\n"
    )
    write_manifest(tmp_path, rows)
    return load_scenario(tmp_path)


def test_select_full_is_everything(tmp_path: Path) -> None:
    scenario = scenario_of(tmp_path, fake_rows(10), 6)
    assert scenario.select("full") == scenario.instances


def test_select_smoke_is_a_balanced_deterministic_subset(tmp_path: Path) -> None:
    scenario = scenario_of(tmp_path, fake_rows(10), 6)
    smoke = scenario.select("smoke")
    assert len(smoke) == 6
    assert set(smoke) <= set(scenario.select("full"))
    assert len({i.id for i in smoke}) == 6
    # balanced over the first group_by key (voice), not the second (gender: 2 female voices)
    assert Counter(i.group("voice") for i in smoke) == {"ann": 2, "bob": 2, "cyd": 2}
    # kept in manifest order
    order = [i.id for i in scenario.instances]
    assert [i.id for i in smoke] == sorted((i.id for i in smoke), key=order.index)
    # deterministic, also for a fresh load
    assert scenario.select("smoke") == smoke
    assert scenario_of(tmp_path, fake_rows(10), 6).select("smoke") == smoke


def test_select_smoke_with_uneven_size(tmp_path: Path) -> None:
    scenario = scenario_of(tmp_path, fake_rows(10), 7)
    counts = Counter(i.group("voice") for i in scenario.select("smoke"))
    assert sum(counts.values()) == 7
    assert sorted(counts.values()) == [2, 2, 3]


def test_select_smoke_with_unequal_groups_takes_all_of_a_small_group(tmp_path: Path) -> None:
    rows = fake_rows(10, (("ann", "female"),)) + fake_rows(1, (("bob", "male"),))
    scenario = scenario_of(tmp_path, rows, 5)
    counts = Counter(i.group("voice") for i in scenario.select("smoke"))
    assert counts == {"ann": 4, "bob": 1}


def test_select_smoke_without_groups(tmp_path: Path) -> None:
    scenario = scenario_of(tmp_path, fake_rows(10), 5, group_by="[]")
    smoke = scenario.select("smoke")
    assert len(smoke) == 5 and set(smoke) <= set(scenario.instances)
    assert scenario.select("smoke") == smoke


def test_select_smoke_depends_on_the_scenario_name(tmp_path: Path) -> None:
    a = scenario_of(tmp_path / "a", fake_rows(30), 6)
    text = (tmp_path / "a" / "scenario.toml").read_text().replace('name = "sel"', 'name = "other"')
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "scenario.toml").write_text(text)
    write_manifest(tmp_path / "b", fake_rows(30))
    b = load_scenario(tmp_path / "b")
    assert [i.id for i in a.select("smoke")] != [i.id for i in b.select("smoke")]


def test_select_smoke_of_a_small_scenario_is_everything(tmp_path: Path) -> None:
    scenario = scenario_of(tmp_path, fake_rows(2), 6)
    assert scenario.select("smoke") == scenario.instances


# -- the shipped corpus ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def english_asr() -> Scenario:
    return load_scenario(CORPUS)


def test_english_asr_loads(english_asr: Scenario) -> None:
    assert english_asr.name == "english_asr"
    assert len(english_asr.instances) == 320
    voices = Counter(i.group("voice") for i in english_asr.instances)
    assert len(voices) == 4
    assert set(voices.values()) == {80}
    assert {i.group("gender") for i in english_asr.instances} == {"female", "male"}
    assert all(i.references[0].strip() for i in english_asr.instances)


def test_english_asr_smoke(english_asr: Scenario) -> None:
    smoke = english_asr.select("smoke")
    assert len(smoke) == english_asr.spec.smoke_size == 40
    assert set(Counter(i.group("voice") for i in smoke).values()) == {10}
    assert set(smoke) <= set(english_asr.instances)


def test_english_asr_audio_matches_the_manifest(english_asr: Scenario) -> None:
    for instance in english_asr.instances:
        assert instance.audio is not None
        assert instance.audio.read_verified()  # raises AudioError on a checksum mismatch


def test_english_asr_smoke_is_the_same_in_another_process(english_asr: Scenario) -> None:
    # string seeds do not depend on PYTHONHASHSEED, so every xdist worker picks the same subset
    script = (
        "import sys; from pathlib import Path; from ahelm.scenarios import load_scenario; "
        "print(' '.join(i.id for i in load_scenario(Path(sys.argv[1])).select('smoke')))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(CORPUS)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    assert result.stdout.split() == [i.id for i in english_asr.select("smoke")]
