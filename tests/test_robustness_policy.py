"""The [properties] policy tables and the breaking-point bisection, without a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from ahelm.config import ConfigError
from ahelm.core import AudioClip, Instance, Record
from ahelm.robustness.policy import DEFAULT_EXAMPLES, BreakingPoints, parse_properties
from ahelm.robustness.properties import find_breaking_point, perturbed

GOOD = {
    "defaults": {"examples": {"smoke": 3, "full": 9}},
    "asr_wer": {"check": "wer_within_delta", "scenario": "english_asr", "delta": 0.1,
                "max_severity": 0.3, "kinds": ["gaussian_noise", "mp3"],
                "breaking_points": {"clips": 3, "steps": 6}},
}


def test_a_good_table_parses() -> None:
    policy = parse_properties(GOOD, "gates.toml")
    assert policy.examples == {"smoke": 3, "full": 9}
    spec = policy.properties["asr_wer"]
    assert (spec.check, spec.scenario, spec.delta, spec.max_severity) == (
        "wer_within_delta", "english_asr", 0.1, 0.3)
    assert spec.kinds == ("gaussian_noise", "mp3") and spec.max_length == 3
    assert spec.breaking_points == BreakingPoints(clips=3, steps=6, smoke_clips=2, smoke_steps=4)
    assert spec.breaking_points.budget("smoke") == (2, 4)
    assert spec.breaking_points.budget("full") == (3, 6)


def test_no_table_gives_default_budgets_and_no_properties() -> None:
    policy = parse_properties(None, "gates.toml")
    assert policy.examples == DEFAULT_EXAMPLES and not policy.properties


@pytest.mark.parametrize(("change", "field"), [
    ({"check": "vibes"}, "properties.asr_wer.check"),
    ({"scenario": 3}, "properties.asr_wer.scenario"),
    ({"max_severity": 1.5}, "properties.asr_wer.max_severity"),
    ({"delta": -0.1}, "properties.asr_wer.delta"),
    ({"max_length": 4}, "properties.asr_wer.max_length"),
    ({"kinds": ["underwater"]}, "properties.asr_wer.kinds"),
    ({"typo": 1}, "properties.asr_wer.typo"),
    ({"breaking_points": {"clips": 0}}, "properties.asr_wer.breaking_points.clips"),
    ({"breaking_points": {"rounds": 2}}, "properties.asr_wer.breaking_points"),
])
def test_bad_entries_name_the_field(change: dict, field: str) -> None:
    table = {"asr_wer": {**GOOD["asr_wer"], **change}}
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        parse_properties(table, "gates.toml")


def test_bad_budgets_are_refused() -> None:
    with pytest.raises(ConfigError, match="properties.defaults.examples"):
        parse_properties({"defaults": {"examples": {"smoke": 0}}}, "gates.toml")
    with pytest.raises(ConfigError, match="properties.defaults"):
        parse_properties({"defaults": {"budget": 3}}, "gates.toml")


def clips(tmp_path: Path, n: int = 3) -> list[Instance]:
    out = []
    for i in range(n):
        path = tmp_path / f"c{i}.wav"
        path.write_bytes(b"x")
        out.append(Instance(f"c{i}", "s", "robustness", "p", AudioClip(path, "0" * 64),
                            ("one two three four",)))
    return out


def fake_answer(threshold: float | None, calls: list[str]):
    """WER 0 below ``threshold`` severity, 1 at or above it (None: never breaks)."""
    def answer(instance: Instance) -> Record:
        calls.append(instance.id)
        steps = instance.audio.perturbation if instance.audio else ()
        severity = steps[0][1] if steps else 0.0
        broken = threshold is not None and severity >= threshold and bool(steps)
        errors = 4.0 if broken else 0.0
        return Record(instance.id, "s", "robustness", "asr", "pass", "p", instance.references,
                      "out", {"wer": errors / 4, "word_errors": errors, "ref_words": 4.0}, {})
    return answer


def test_bisection_lands_within_its_resolution(tmp_path: Path) -> None:
    calls: list[str] = []
    point = find_breaking_point("gaussian_noise", clips(tmp_path), fake_answer(0.37, calls),
                                delta=0.1, steps=6)
    assert point.breaking_severity is not None
    assert 0.37 <= point.breaking_severity <= 0.37 + 1 / 2**6
    # clean + severity 1 + severity 0 + 6 halvings, each over 3 clips
    assert len(calls) == 3 * (1 + 2 + 6)
    assert point.curve == sorted(point.curve) and point.clean_wer == 0.0
    data = point.to_json()
    assert data["breaking_description"].startswith("white noise at ")
    assert data["unit"] == "dB" and len(data["curve"]) == 8


def test_a_kind_that_never_breaks_has_no_breaking_point(tmp_path: Path) -> None:
    point = find_breaking_point("mp3", clips(tmp_path), fake_answer(None, []), 0.1, 5)
    assert point.breaking_severity is None and point.to_json()["breaking_value"] is None


def test_a_kind_broken_at_severity_zero(tmp_path: Path) -> None:
    point = find_breaking_point("reverb", clips(tmp_path), fake_answer(0.0, []), 0.1, 5)
    assert point.breaking_severity == 0.0


def test_perturbed_instances_are_distinct_and_keep_the_question(tmp_path: Path) -> None:
    from ahelm.robustness.perturbations import Perturbation

    base = clips(tmp_path, 1)[0]
    a = perturbed(base, [Perturbation("gaussian_noise", 0.5)], seed=1)
    b = perturbed(base, [Perturbation("gaussian_noise", 0.5)], seed=2)
    assert a.id != b.id and a.id.startswith("c0~") and a.prompt == base.prompt
    assert a.references == base.references and a.audio is not None and base.audio is not None
    assert a.audio.identity != b.audio.identity != base.audio.identity
