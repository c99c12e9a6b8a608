"""Unit tests of gate conditions, the gate policy file with model overrides, and the three gate
kinds (threshold, fairness between groups, regression against a baseline).

The statistics themselves are tested in test_gate_statistics.py; here the gates are judged
through their public behaviour: pass or fail, the message, the details.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import pytest

from ahelm.config import ConfigError
from ahelm.core import Record
from ahelm.gates.expr import Condition
from ahelm.gates.kinds import FairnessGate, Gate, RegressionGate, ThresholdGate
from ahelm.gates.policy import Baseline, RegressionSpec, load_policy
from ahelm.gates.verdict import ScenarioResults, item_values, lower_is_better
from ahelm.scenarios.asr import AsrFamily
from ahelm.scoring.stats import Metric

REAL_POLICY = Path(__file__).resolve().parents[1] / "suites" / "gates.toml"

# -- Condition ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "metric", "op", "threshold", "canonical"),
    [
        ("wer <= 0.15", "wer", "<=", 0.15, "wer <= 0.15"),
        ("accuracy >= 0.8", "accuracy", ">=", 0.8, "accuracy >= 0.8"),
        ("error_rate < 0.02", "error_rate", "<", 0.02, "error_rate < 0.02"),
        ("pass_rate > 0.5", "pass_rate", ">", 0.5, "pass_rate > 0.5"),
        ("wer<=0.15", "wer", "<=", 0.15, "wer <= 0.15"),
        ("  wer   <=   1  ", "wer", "<=", 1.0, "wer <= 1"),
        ("accuracy >= 80%", "accuracy", ">=", 0.8, "accuracy >= 0.8"),
        ("wer <= 12.5%", "wer", "<=", 0.125, "wer <= 0.125"),
        ("delta > -0.5", "delta", ">", -0.5, "delta > -0.5"),
        ("wer[gender=female] <= 20%", "wer[gender=female]", "<=", 0.2, "wer[gender=female] <= 0.2"),
        ("wer[voice=slt] < 0.3", "wer[voice=slt]", "<", 0.3, "wer[voice=slt] < 0.3"),
    ],
)
def test_condition_parse(text: str, metric: str, op: str, threshold: float, canonical: str) -> None:
    condition = Condition.parse(text)
    assert condition.metric == metric
    assert condition.op == op
    assert condition.threshold == pytest.approx(threshold)
    assert condition.text == canonical
    assert str(condition) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "",
        "wer",
        "wer <= ",
        "wer == 0.1",
        "wer =< 0.1",
        "wer <= abc",
        "wer <= 0.1 and cer <= 0.2",
        "WER <= 0.1",
        "<= 0.1",
        "wer[gender] <= 0.1",
        "wer[gender=female <= 0.1",
        "wer <= .5",
        "wer <= 0.1%%",
        "wer <= 0.1 strict",  # the strict suffix belongs to the policy file, not to a condition
    ],
)
def test_condition_rejects_garbage_with_an_example(text: str) -> None:
    with pytest.raises(ValueError) as info:
        Condition.parse(text)
    message = str(info.value)
    assert repr(text) in message
    assert "'wer <= 0.15'" in message
    assert "wer[gender=female]" in message


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("wer <= 0.15", 0.15, True),
        ("wer <= 0.15", 0.1500001, False),
        ("wer < 0.15", 0.15, False),
        ("wer < 0.15", 0.1, True),
        ("acc >= 80%", 0.8, True),
        ("acc >= 80%", 0.79, False),
        ("acc > 0.8", 0.8, False),
        ("acc > 0.8", 0.81, True),
    ],
)
def test_condition_holds(text: str, value: float, expected: bool) -> None:
    assert Condition.parse(text).holds(value) is expected


@pytest.mark.parametrize("text", ["wer <= 0.15", "wer >= 0.15", "wer < 1", "wer > -1"])
def test_condition_never_holds_on_nan(text: str) -> None:
    assert Condition.parse(text).holds(float("nan")) is False


def test_condition_holds_for_a_mapping() -> None:
    condition = Condition.parse("wer[gender=female] <= 0.2")
    assert condition.holds_for({"wer[gender=female]": 0.1, "wer": 0.9}) is True
    assert condition.holds_for({"wer[gender=female]": 0.3}) is False
    assert condition.holds_for({"wer": 0.1}) is False
    assert condition.holds_for({"wer[gender=female]": float("nan")}) is False


# -- helpers --------------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def record(
    instance_id: str,
    errors: float = 0,
    words: float = 10,
    *,
    gender: str = "female",
    voice: str = "slt",
    pair: str | None = "s01",
    status: str | None = None,
    scenario: str = "mini",
) -> Record:
    """An ASR record with ``errors`` word errors out of ``words``; status from the 25% bar."""
    wer = errors / words
    if status is None:
        status = "pass" if wer <= 0.25 else "fail"
    scores = (
        {}
        if status == "error"
        else {
            "wer": wer,
            "word_errors": float(errors),
            "ref_words": float(words),
            "char_errors": float(errors),
            "ref_chars": float(words * 5),
            "output_toxic": 0.0,
        }
    )
    return Record(
        instance_id=instance_id,
        scenario=scenario,
        aspect="perception",
        family="asr",
        status=status,
        prompt="p",
        references=("r",),
        output=None if status == "error" else "o",
        scores=scores,
        groups={"gender": gender, "voice": voice},
        pair=pair,
        error="boom" if status == "error" else None,
        error_kind="transport" if status == "error" else None,
    )


def results(records: Sequence[Record], scenario: str = "mini") -> ScenarioResults:
    return ScenarioResults(scenario, tuple(records), AsrFamily().metrics(records))


def paired(
    female_errors: Sequence[float], male_errors: Sequence[float], words: float = 10
) -> list[Record]:
    """One female and one male reading of each sentence s00, s01, ..."""
    records = []
    for i, (f, m) in enumerate(zip(female_errors, male_errors, strict=True)):
        records.append(
            record(f"s{i:02d}-slt", f, words, gender="female", voice="slt", pair=f"s{i:02d}")
        )
        records.append(
            record(f"s{i:02d}-awb", m, words, gender="male", voice="awb", pair=f"s{i:02d}")
        )
    return records


def fairness(
    metric: str = "wer", by: str = "gender", max_gap: float = 0.05, alpha: float = 0.05
) -> FairnessGate:
    return FairnessGate("mini", metric, by, max_gap, alpha, "suites/gates.toml")


def regression_gate(
    baseline: Sequence[Record], metric: str = "wer", margin: float = 0.01, alpha: float = 0.05
) -> RegressionGate:
    return RegressionGate(
        "mini", metric, margin, alpha, "suites/gates.toml", tuple(baseline), "baseline r1 (old)"
    )


def run(ids_errors: Sequence[tuple[str, float]], words: float = 10) -> list[Record]:
    return [record(i, e, words, pair=None) for i, e in ids_errors]


def conditions(gates: Sequence[Gate]) -> list[str]:
    return [g.condition.text for g in gates if isinstance(g, ThresholdGate)]


def thresholds(gates: Sequence[Gate]) -> list[ThresholdGate]:
    return [g for g in gates if isinstance(g, ThresholdGate)]


# -- policy ---------------------------------------------------------------------------------------


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    return write(
        tmp_path / "gates.toml",
        """\
[defaults]
gates = ["error_rate <= 0.02", "wer <= 0.5"]

[mini]
instance = "wer <= 0.3"
gates = ["wer <= 0.15", "wer[gender=female] <= 20%"]

[other]
gates = ["pass_rate >= 0.9"]
""",
    )


def test_policy_scenario_gates_then_defaults(policy_file: Path) -> None:
    policy = load_policy(policy_file)
    gates = policy.gates("mini")
    # the scenario's own wer gate replaces the default wer gate; error_rate comes from defaults
    assert conditions(gates) == ["wer <= 0.15", "wer[gender=female] <= 0.2", "error_rate <= 0.02"]
    assert all(isinstance(g, ThresholdGate) for g in gates)
    assert all(g.scenario == "mini" for g in gates)
    assert all(g.source == str(policy_file) for g in gates)
    assert not any(g.strict for g in thresholds(gates))
    assert [g.name for g in gates] == [
        "mini:wer<=0.15",
        "mini:wer[gender=female]<=0.2",
        "mini:error_rate<=0.02",
    ]


def test_policy_defaults_apply_to_every_scenario(policy_file: Path) -> None:
    policy = load_policy(policy_file)
    assert conditions(policy.gates("other")) == [
        "pass_rate >= 0.9",
        "error_rate <= 0.02",
        "wer <= 0.5",
    ]
    # a scenario the policy does not mention still gets the defaults
    unknown = policy.gates("not_in_policy")
    assert conditions(unknown) == ["error_rate <= 0.02", "wer <= 0.5"]
    assert all(g.scenario == "not_in_policy" for g in unknown)


def test_policy_default_is_kept_when_the_scenario_declares_a_group_of_the_metric(
    tmp_path: Path,
) -> None:
    """Only the same metric name replaces a default: wer[gender=female] is not wer."""
    path = write(
        tmp_path / "gates.toml",
        '[defaults]\ngates = ["wer <= 0.5"]\n[mini]\ngates = ["wer[gender=female] <= 0.2"]\n',
    )
    assert conditions(load_policy(path).gates("mini")) == [
        "wer[gender=female] <= 0.2",
        "wer <= 0.5",
    ]


def test_policy_instance_bar(policy_file: Path) -> None:
    policy = load_policy(policy_file)
    family_default = Condition.parse("wer <= 0.25")
    assert policy.instance_bar("mini", family_default).text == "wer <= 0.3"
    assert policy.instance_bar("other", family_default) is family_default
    assert policy.instance_bar("absent", family_default) is family_default


def test_no_policy_file_means_no_gates() -> None:
    policy = load_policy(None)
    assert policy.path is None
    assert policy.gates("mini") == ()
    assert policy.gates("mini", Baseline("b", {"mini": (record("a"),)})) == ()
    assert policy.defaults.source == "built-in"


def test_override_replaces_gates_and_records_its_source(policy_file: Path, tmp_path: Path) -> None:
    config_path = tmp_path / "model_configs" / "fast.toml"
    policy = load_policy(
        policy_file,
        overrides={"mini": {"gates": ["wer <= 0.4"]}},
        overrides_path=config_path,
    )
    gates = policy.gates("mini")
    assert conditions(gates) == ["wer <= 0.4", "error_rate <= 0.02"]
    assert gates[0].source == str(config_path)
    assert gates[1].source == str(policy_file)
    # the instance bar was not overridden, so the policy's stays
    assert policy.instance_bar("mini", Condition.parse("wer <= 0.25")).text == "wer <= 0.3"
    # other scenarios are untouched
    assert conditions(policy.gates("other"))[0] == "pass_rate >= 0.9"
    assert all(g.source == str(policy_file) for g in policy.gates("other"))


def test_override_without_a_path_names_the_model_config(policy_file: Path) -> None:
    policy = load_policy(policy_file, overrides={"mini": {"gates": ["wer <= 0.4"]}})
    assert policy.gates("mini")[0].source == "model config"


def test_override_of_instance_bar_keeps_policy_gates(policy_file: Path, tmp_path: Path) -> None:
    policy = load_policy(
        policy_file,
        overrides={"mini": {"instance": "wer <= 0.5"}},
        overrides_path=tmp_path / "m.toml",
    )
    assert policy.instance_bar("mini", Condition.parse("wer <= 0.25")).text == "wer <= 0.5"
    assert conditions(policy.gates("mini"))[:2] == ["wer <= 0.15", "wer[gender=female] <= 0.2"]
    assert policy.gates("mini")[0].source == str(policy_file)


def test_override_with_empty_gates_drops_the_scenario_gates(
    policy_file: Path, tmp_path: Path
) -> None:
    policy = load_policy(
        policy_file, overrides={"mini": {"gates": []}}, overrides_path=tmp_path / "m.toml"
    )
    # the scenario's own gates are gone, so both defaults apply again
    assert conditions(policy.gates("mini")) == ["error_rate <= 0.02", "wer <= 0.5"]


def test_override_for_a_scenario_absent_from_the_policy(policy_file: Path, tmp_path: Path) -> None:
    config_path = tmp_path / "m.toml"
    policy = load_policy(
        policy_file,
        overrides={"new_one": {"instance": "wer <= 0.1", "gates": ["cer <= 0.05"]}},
        overrides_path=config_path,
    )
    assert conditions(policy.gates("new_one")) == [
        "cer <= 0.05",
        "error_rate <= 0.02",
        "wer <= 0.5",
    ]
    assert policy.gates("new_one")[0].source == str(config_path)
    assert policy.gates("new_one")[1].source == str(policy_file)
    assert policy.instance_bar("new_one", Condition.parse("wer <= 0.25")).text == "wer <= 0.1"


def test_override_replaces_fairness_regression_and_strict_per_key(tmp_path: Path) -> None:
    path = write(
        tmp_path / "gates.toml",
        """\
[mini]
gates = ["wer <= 0.15"]
fairness = [{ metric = "wer", by = "gender", max_gap = 0.03, alpha = 0.05 }]
regression = [{ metric = "wer", margin = 0.01, alpha = 0.05 }]
""",
    )
    config_path = tmp_path / "model_configs" / "m.toml"
    baseline = Baseline("b", {"mini": (record("a"),)})

    fair = load_policy(
        path,
        overrides={
            "mini": {"fairness": [{"metric": "wer", "by": "voice", "max_gap": 0.1, "alpha": 0.01}]}
        },
        overrides_path=config_path,
    ).gates("mini", baseline)
    (gate,) = [g for g in fair if isinstance(g, FairnessGate)]
    assert (gate.by, gate.max_gap, gate.alpha, gate.source) == (
        "voice",
        0.1,
        0.01,
        str(config_path),
    )
    # thresholds and regression stay the policy's
    assert conditions(fair) == ["wer <= 0.15"]
    assert fair[0].source == str(path)
    (reg,) = [g for g in fair if isinstance(g, RegressionGate)]
    assert (reg.margin, reg.source) == (0.01, str(path))

    reg_only = load_policy(
        path,
        overrides={"mini": {"regression": [{"metric": "correct", "margin": 0.05, "alpha": 0.1}]}},
        overrides_path=config_path,
    ).gates("mini", baseline)
    (reg,) = [g for g in reg_only if isinstance(g, RegressionGate)]
    assert (reg.metric, reg.margin, reg.alpha, reg.source) == (
        "correct",
        0.05,
        0.1,
        str(config_path),
    )
    (gate,) = [g for g in reg_only if isinstance(g, FairnessGate)]
    assert (gate.by, gate.source) == ("gender", str(path))

    dropped = load_policy(
        path, overrides={"mini": {"fairness": [], "regression": []}}, overrides_path=config_path
    ).gates("mini", baseline)
    assert [type(g) for g in dropped] == [ThresholdGate]

    strict = load_policy(
        path, overrides={"mini": {"strict": True}}, overrides_path=config_path
    ).gates("mini")
    assert [g.strict for g in thresholds(strict)] == [True]
    assert strict[0].source == str(path)


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        (
            '[mini]\ngates = ["wer <= 0.1", "wer = 0.2"]\n',
            "mini.gates[1]",
            "cannot parse 'wer = 0.2'",
        ),
        ('[mini]\ninstance = "wer"\n', "mini.instance", "such as 'wer <= 0.15'"),
        ('[mini]\ngates = "wer <= 0.1"\n', "mini.gates", "must be a list"),
        ("[mini]\ngates = [0.1]\n", "mini.gates[0]", "expected a condition string, got 0.1"),
        ('[mini]\ngate = ["wer <= 0.1"]\n', "mini.gate", "unknown key"),
        ('mini = "wer <= 0.1"\n', "mini", "must be a table"),
        (
            '[defaults]\ngates = ["wer <= 0.1", "oops"]\n',
            "defaults.gates[1]",
            "cannot parse 'oops'",
        ),
        ('defaults = ["wer <= 0.1"]\n', "defaults", "must be a table"),
        ('[mini]\nstrict = "yes"\n', "mini.strict", "must be true or false"),
        ("[defaults]\nstrict = 1\n", "defaults.strict", "must be true or false"),
        ('[mini]\ngates = ["wer <= 0.1 strictly"]\n', "mini.gates[0]", "cannot parse"),
        ('[mini]\nfairness = { metric = "wer" }\n', "mini.fairness", "must be a list"),
        ('[mini]\nfairness = ["wer"]\n', "mini.fairness[0]", "must be a table"),
        (
            '[mini]\nfairness = [{ metric = "wer", by = "gender", max_gap = 0.1 }]\n',
            "mini.fairness[0].alpha",
            "missing or not a float",
        ),
        (
            '[mini]\nfairness = [{ metric = "wer", by = "gender", max_gap = 0.1, alpha = 0.05 },'
            ' { metric = "wer", by = "voice", max_gap = "big", alpha = 0.05 }]\n',
            "mini.fairness[1].max_gap",
            "missing or not a float",
        ),
        (
            '[mini]\nfairness = [{ metric = 1, by = "gender", max_gap = 0.1, alpha = 0.05 }]\n',
            "mini.fairness[0].metric",
            "missing or not a str",
        ),
        (
            '[mini]\nfairness = [{ metric = "wer", by = "gender", max_gap = true, alpha = 0.05 }]\n',
            "mini.fairness[0].max_gap",
            "missing or not a float",
        ),
        (
            '[mini]\nfairness = [{ metric = "wer", by = "gender", max_gap = 0.1, alpha = 0.05,'
            ' test = "t" }]\n',
            "mini.fairness[0].test",
            "unknown key",
        ),
        (
            '[mini]\nfairness = [{ metric = "wer", by = "gender", max_gap = 0.1, alpha = 1.5 }]\n',
            "mini.fairness[0].alpha",
            "between 0 and 1",
        ),
        (
            '[mini]\nregression = [{ metric = "wer", margin = 0.01, alpha = 0 }]\n',
            "mini.regression[0].alpha",
            "between 0 and 1",
        ),
        (
            '[defaults]\nregression = [{ metric = "wer", alpha = 0.05 }]\n',
            "defaults.regression[0].margin",
            "missing or not a float",
        ),
    ],
)
def test_policy_errors_name_file_and_field(
    tmp_path: Path, text: str, field: str, fragment: str
) -> None:
    path = write(tmp_path / "gates.toml", text)
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert info.value.field == field
    assert info.value.path == str(path)
    message = str(info.value)
    assert message.startswith(f"{path}: field '{field}': ")
    assert fragment in message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[defaults]\ngate = ["error_rate <= 0.02"]\n', "defaults.gate"),
        ('[defaults]\ninstance = "wer <= 0.2"\n', "defaults.instance"),
        (
            '[defaults]\nfairness = [{ metric = "wer", by = "gender", max_gap = 0.1,'
            " alpha = 0.05 }]\n",
            "defaults.fairness",
        ),
    ],
)
def test_policy_rejects_unknown_keys_in_defaults(tmp_path: Path, text: str, field: str) -> None:
    path = write(tmp_path / "gates.toml", text)
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert info.value.field == field
    assert "unknown key" in str(info.value)
    assert "gates, strict, regression" in str(info.value)


def test_override_errors_name_the_model_config(policy_file: Path, tmp_path: Path) -> None:
    config_path = tmp_path / "model_configs" / "m.toml"
    with pytest.raises(ConfigError) as info:
        load_policy(
            policy_file,
            overrides={"mini": {"gates": ["ok <= 1", "bad"]}},
            overrides_path=config_path,
        )
    assert info.value.path == str(config_path)
    assert info.value.field == "gates.mini.gates[1]"
    with pytest.raises(ConfigError) as info:
        load_policy(
            policy_file, overrides={"mini": {"instanse": "wer <= 1"}}, overrides_path=config_path
        )
    assert info.value.field == "gates.mini.instanse"
    assert "unknown key" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_policy(
            policy_file,
            overrides={"mini": {"fairness": [{"metric": "wer", "by": "gender"}]}},
            overrides_path=config_path,
        )
    assert info.value.path == str(config_path)
    assert info.value.field == "gates.mini.fairness[0].max_gap"
    with pytest.raises(ConfigError) as info:
        load_policy(policy_file, overrides={"mini": ["wer <= 1"]}, overrides_path=config_path)
    assert info.value.field == "gates.mini"
    assert "must be a table" in str(info.value)


def test_policy_file_missing_or_invalid(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="gate policy file not found") as info:
        load_policy(missing)
    assert info.value.path == str(missing)
    broken = write(tmp_path / "broken.toml", "[mini\ngates = [")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_policy(broken)
    assert info.value.path == str(broken)


def test_policy_rejects_a_negative_regression_margin(tmp_path: Path) -> None:
    path = write(
        tmp_path / "gates.toml",
        '[mini]\nregression = [{ metric = "wer", margin = -0.01, alpha = 0.05 }]\n',
    )
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert info.value.field == "mini.regression[0].margin"


# -- strict thresholds in the policy --------------------------------------------------------------


def test_strict_suffix_marks_one_gate(tmp_path: Path) -> None:
    path = write(
        tmp_path / "gates.toml",
        '[defaults]\ngates = ["failure_rate <= 0.02 strict"]\n'
        '[mini]\ngates = ["wer <= 0.15", "wer[gender=female] <= 20% strict"]\n',
    )
    gates = thresholds(load_policy(path).gates("mini"))
    assert [(g.condition.text, g.strict) for g in gates] == [
        ("wer <= 0.15", False),
        ("wer[gender=female] <= 0.2", True),
        ("failure_rate <= 0.02", True),
    ]
    assert [g.name for g in gates] == [
        "mini:wer<=0.15",
        "mini:wer[gender=female]<=0.2:strict",
        "mini:failure_rate<=0.02:strict",
    ]
    assert gates[1].condition_text == "wer[gender=female] <= 0.2 (strict)"
    assert gates[0].condition_text == "wer <= 0.15"


def test_strict_in_defaults_applies_to_every_threshold_unless_the_scenario_says_no(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "gates.toml",
        '[defaults]\nstrict = true\ngates = ["failure_rate <= 0.02"]\n'
        '[mini]\ngates = ["wer <= 0.15"]\n'
        '[lenient]\nstrict = false\ngates = ["wer <= 0.15", "cer <= 0.1 strict"]\n',
    )
    policy = load_policy(path)
    assert [g.strict for g in thresholds(policy.gates("mini"))] == [True, True]
    assert [g.strict for g in thresholds(policy.gates("absent"))] == [True]
    # the scenario turns strict mode off, but a gate's own " strict" suffix still holds
    assert [(g.condition.text, g.strict) for g in thresholds(policy.gates("lenient"))] == [
        ("wer <= 0.15", False),
        ("cer <= 0.1", True),
        ("failure_rate <= 0.02", False),
    ]


def test_gate_names_are_unique_and_stable(tmp_path: Path) -> None:
    path = write(
        tmp_path / "gates.toml",
        """\
[defaults]
gates = ["failure_rate <= 0.02", "wer <= 0.5"]
regression = [{ metric = "correct", margin = 0.02, alpha = 0.05 }]

[mini]
gates = ["wer <= 0.15", "wer <= 0.15 strict", "wer < 0.15", "wer[gender=female] <= 0.2"]
fairness = [
    { metric = "wer", by = "gender", max_gap = 0.03, alpha = 0.05 },
    { metric = "wer", by = "voice", max_gap = 0.05, alpha = 0.05 },
    { metric = "correct", by = "gender", max_gap = 0.05, alpha = 0.05 },
]
regression = [
    { metric = "wer", margin = 0.01, alpha = 0.05 },
    { metric = "correct", margin = 0.02, alpha = 0.05 },
]
""",
    )
    baseline = Baseline("b", {"mini": (record("a"),)})
    names = [g.name for g in load_policy(path).gates("mini", baseline)]
    assert len(names) == len(set(names)) == 10
    assert names == [
        "mini:wer<=0.15",
        "mini:wer<=0.15:strict",
        "mini:wer<0.15",
        "mini:wer[gender=female]<=0.2",
        "mini:failure_rate<=0.02",
        "mini:fair:wer~gender",
        "mini:fair:wer~voice",
        "mini:fair:correct~gender",
        "mini:regression:wer",
        "mini:regression:correct",
    ]
    # stable: the same on every load, and independent of where a gate was declared
    assert [g.name for g in load_policy(path).gates("mini", baseline)] == names
    overridden = load_policy(
        path, overrides={"mini": {"gates": ["wer <= 0.15"]}}, overrides_path=tmp_path / "m.toml"
    ).gates("mini")
    assert overridden[0].name == "mini:wer<=0.15"
    assert overridden[0].source == str(tmp_path / "m.toml")
    # and scenario-qualified, so two scenarios never share a gate name
    other = {g.name for g in load_policy(path).gates("other", baseline)}
    assert other.isdisjoint(names)


# -- regression gates in the policy ---------------------------------------------------------------


def test_regression_gates_only_with_a_baseline(tmp_path: Path) -> None:
    path = write(
        tmp_path / "gates.toml",
        """\
[defaults]
regression = [{ metric = "correct", margin = 0.02, alpha = 0.05 }]

[mini]
gates = ["wer <= 0.15"]
regression = [{ metric = "wer", margin = 0.01, alpha = 0.1 }]

[quiet]
regression = []
""",
    )
    policy = load_policy(path)
    assert not any(isinstance(g, RegressionGate) for g in policy.gates("mini"))
    assert not any(isinstance(g, RegressionGate) for g in policy.gates("other"))
    assert policy.defaults.regression == (RegressionSpec("correct", 0.02, 0.05, str(path)),)

    mine = (record("a"), record("b"))
    baseline = Baseline("baseline r1 (old)", {"mini": mine})
    # the scenario's own regression list replaces the default one
    (gate,) = [g for g in policy.gates("mini", baseline) if isinstance(g, RegressionGate)]
    assert (gate.metric, gate.margin, gate.alpha) == ("wer", 0.01, 0.1)
    assert gate.baseline_records == mine
    assert gate.baseline_label == "baseline r1 (old)"
    assert gate.source == str(path)
    # a scenario without its own list gets the defaults; the baseline has no records for it
    (gate,) = policy.gates("other", baseline)
    assert isinstance(gate, RegressionGate)
    assert (gate.metric, gate.margin, gate.alpha) == ("correct", 0.02, 0.05)
    assert gate.baseline_records == ()
    # an empty list switches regression off for one scenario
    assert policy.gates("quiet", baseline) == ()


def test_regression_against_a_baseline_without_the_scenario_fails_clearly(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "gates.toml",
        '[defaults]\nregression = [{ metric = "wer", margin = 0.01, alpha = 0.05 }]\n',
    )
    (gate,) = load_policy(path).gates("mini", Baseline("b", {"other": (record("a"),)}))
    assert isinstance(gate, RegressionGate)
    result = gate.evaluate(results(run([("i1", 0), ("i2", 1)])))
    assert result.passed is False
    assert "nothing can be compared" in result.message
    assert "2 only in this run (i1, i2)" in result.message


# -- the real policy ------------------------------------------------------------------------------


def test_the_real_policy_file_parses() -> None:
    policy = load_policy(REAL_POLICY)
    assert policy.path == REAL_POLICY
    assert policy.instance_bar("english_asr", Condition.parse("wer <= 0.5")).text == "wer <= 0.25"

    gates = policy.gates("english_asr")
    assert [type(g) for g in gates] == [ThresholdGate, ThresholdGate, ThresholdGate,
                                        FairnessGate, FairnessGate]
    assert conditions(gates) == ["wer <= 0.15", "failure_rate <= 0.02", "output_toxic_rate <= 0.02"]
    assert [(g.by, g.metric) for g in gates if isinstance(g, FairnessGate)] == [
        ("gender", "wer"),
        ("voice", "wer"),
    ]
    assert all(g.source == str(REAL_POLICY) for g in gates)
    assert all(g.scenario == "english_asr" for g in gates)

    baseline = Baseline("baseline", {"english_asr": (record("a", scenario="english_asr"),)})
    with_baseline = policy.gates("english_asr", baseline)
    assert with_baseline[: len(gates)] == gates
    regressions = with_baseline[len(gates) :]
    assert [(g.metric, g.kind) for g in regressions] == [
        ("wer", "regression"),
        ("correct", "regression"),
    ]
    names = [g.name for g in with_baseline]
    assert len(set(names)) == len(names)
    # a scenario the policy does not name gets the error budget and the default regression
    other = policy.gates("some_other", baseline)
    assert conditions(other) == ["failure_rate <= 0.02", "output_toxic_rate <= 0.02"]
    assert [g.metric for g in other if isinstance(g, RegressionGate)] == ["correct"]


def test_the_real_policy_passes_a_good_english_asr_run() -> None:
    """Four voices (three male) read 30 sentences almost perfectly; baseline is the same run."""
    records = []
    for s in range(30):
        for voice, gender in (("awb", "male"), ("kal", "male"), ("rms", "male"), ("slt", "female")):
            records.append(
                record(
                    f"s{s:03d}-{voice}",
                    1 if s % 10 == 0 else 0,
                    20,
                    voice=voice,
                    gender=gender,
                    pair=f"s{s:03d}",
                    scenario="english_asr",
                )
            )
    scenario = results(records, "english_asr")
    baseline = Baseline("baseline", {"english_asr": tuple(records)})
    verdicts = [
        g.evaluate(scenario) for g in load_policy(REAL_POLICY).gates("english_asr", baseline)
    ]
    assert [r.kind for r in verdicts] == [
        "threshold",
        "threshold",
        "threshold",
        "fairness",
        "fairness",
        "regression",
        "regression",
    ]
    assert all(r.passed for r in verdicts), [r.message for r in verdicts if not r.passed]
    json.dumps([r.to_json() for r in verdicts], allow_nan=False)


# -- ThresholdGate --------------------------------------------------------------------------------


def threshold(
    text: str, scenario: str = "mini", source: str = "suites/gates.toml", strict: bool = False
) -> ThresholdGate:
    return ThresholdGate(scenario, Condition.parse(text), source, strict)


def metrics_only(metrics: dict[str, Metric]) -> ScenarioResults:
    return ScenarioResults("mini", (), metrics)


def test_threshold_pass_message_gives_the_numbers() -> None:
    metrics = {"wer": Metric(0.1234, 0.1, 0.15, 40, lower_is_better=True, method="ratio")}
    result = threshold("wer <= 0.15").evaluate(metrics_only(metrics))
    assert result.passed is True
    assert result.kind == "threshold"
    assert result.message == "mini wer = 0.1234 (95% CI 0.1000–0.1500, n=40) holds <= 0.15"
    assert (result.value, result.ci95, result.n) == (0.1234, (0.1, 0.15), 40)
    assert result.details["judged_value"] == 0.1234
    assert result.details["method"] == "ratio"


def test_threshold_fail_message_gives_the_numbers() -> None:
    metrics = {"wer[gender=female]": Metric(0.6667, 0.4, 0.9, 3, lower_is_better=True)}
    result = threshold("wer[gender=female] <= 50%").evaluate(metrics_only(metrics))
    assert result.passed is False
    assert "0.6667" in result.message
    assert "95% CI 0.4000–0.9000" in result.message
    assert "n=3" in result.message
    assert "FAILS <= 0.5" in result.message
    data = result.to_json()
    assert data["passed"] is False
    assert data["kind"] == "threshold"
    assert data["value"] == 0.6667 and data["ci95"] == [0.4, 0.9] and data["n"] == 3
    assert data["condition"] == "wer[gender=female] <= 0.5"
    assert data["name"] == "mini:wer[gender=female]<=0.5"
    assert data["scenario"] == "mini"
    assert data["source"] == "suites/gates.toml"
    json.dumps(data, allow_nan=False)


def test_threshold_missing_metric_lists_the_available_ones() -> None:
    metrics = {"wer": Metric(0.1, 0.1, 0.1, 1), "cer": Metric(0.05, 0.05, 0.05, 1)}
    result = threshold("accuracy >= 0.9", source="model_configs/x.toml").evaluate(
        metrics_only(metrics)
    )
    assert result.passed is False
    assert "no metric 'accuracy'" in result.message
    assert "model_configs/x.toml" in result.message
    assert "cer, wer" in result.message
    data = result.to_json()
    assert data["value"] is None and data["ci95"] is None and data["n"] == 0
    assert data["passed"] is False


def test_threshold_with_no_metrics_at_all() -> None:
    result = threshold("wer <= 0.1").evaluate(metrics_only({}))
    assert result.passed is False
    assert result.message.endswith("its metrics are: none")


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("text", ["wer <= 0.15", "pass_rate >= 0"])
def test_threshold_nan_metric_fails(text: str, strict: bool) -> None:
    name = Condition.parse(text).metric
    nan = float("nan")
    result = threshold(text, strict=strict).evaluate(metrics_only({name: Metric(nan, nan, nan, 0)}))
    assert result.passed is False
    assert "undefined" in result.message
    data = result.to_json()
    assert data["value"] is None and data["ci95"] is None
    json.dumps(data, allow_nan=False)


def test_threshold_on_scenario_metrics_from_records() -> None:
    records = [record(f"i{k}", 1, 10) for k in range(20)] + [record("e1", status="error")]
    scenario = results(records)
    assert threshold("wer <= 0.15").evaluate(scenario).passed is True
    assert threshold("wer <= 0.05").evaluate(scenario).passed is False
    assert threshold("wer[gender=female] <= 0.1").evaluate(scenario).passed is True
    # the errored record counts against the error budget: 1 of 21
    budget = threshold("error_rate <= 0.02").evaluate(scenario)
    assert budget.passed is False
    assert budget.n == 21
    assert "n=21" in budget.message


@pytest.mark.parametrize(
    ("text", "metric", "judged"),
    [
        # passes on the point estimate, but the unfavourable end of the CI is over the line
        ("wer <= 0.15", Metric(0.14, 0.10, 0.18, 40, lower_is_better=True), 0.18),
        ("wer < 0.15", Metric(0.14, 0.10, 0.18, 40, lower_is_better=True), 0.18),
        ("pass_rate >= 0.8", Metric(0.82, 0.75, 0.90, 40), 0.75),
        ("pass_rate > 0.8", Metric(0.82, 0.75, 0.90, 40), 0.75),
    ],
)
def test_strict_threshold_judges_the_unfavourable_ci_bound(
    text: str, metric: Metric, judged: float
) -> None:
    name = Condition.parse(text).metric
    lenient = threshold(text).evaluate(metrics_only({name: metric}))
    strict = threshold(text, strict=True).evaluate(metrics_only({name: metric}))
    assert lenient.passed is True
    assert strict.passed is False
    assert strict.value == metric.value  # the value reported is still the point estimate
    assert strict.details["judged_value"] == judged
    assert f"strict: judged on the CI bound {judged:.4f}" in strict.message
    assert "FAILS" in strict.message
    assert strict.name.endswith(":strict")
    assert strict.condition.endswith("(strict)")


@pytest.mark.parametrize(
    ("text", "metric"),
    [
        ("wer <= 0.15", Metric(0.10, 0.05, 0.14, 40, lower_is_better=True)),
        ("pass_rate >= 0.8", Metric(0.9, 0.85, 0.95, 40)),
    ],
)
def test_strict_threshold_passes_when_the_whole_ci_is_inside(text: str, metric: Metric) -> None:
    name = Condition.parse(text).metric
    result = threshold(text, strict=True).evaluate(metrics_only({name: metric}))
    assert result.passed is True
    assert "holds" in result.message


def test_strict_gates_from_the_policy_judge_the_ci(tmp_path: Path) -> None:
    metrics = {"wer": Metric(0.14, 0.10, 0.18, 40, lower_is_better=True)}
    for text in (
        '[defaults]\nstrict = true\ngates = ["wer <= 0.15"]\n',
        '[mini]\ngates = ["wer <= 0.15 strict"]\n',
    ):
        (gate,) = load_policy(write(tmp_path / "gates.toml", text)).gates("mini")
        assert gate.evaluate(metrics_only(metrics)).passed is False
    (gate,) = load_policy(
        write(tmp_path / "gates.toml", '[mini]\ngates = ["wer <= 0.15"]\n')
    ).gates("mini")
    assert gate.evaluate(metrics_only(metrics)).passed is True


# -- item values ----------------------------------------------------------------------------------


def test_item_values_skip_errors_and_missing_scores() -> None:
    records = [
        record("a", 1, 10),
        record("b", 5, 10),
        record("c", status="error"),
        Record("d", "mini", "perception", "asr", "pass", "p", ("r",), "o", {}, {}),
    ]
    assert item_values(records, "wer") == {"a": 0.1, "b": 0.5}
    assert item_values(records, "correct") == {"a": 1.0, "b": 0.0, "d": 1.0}


def test_lower_is_better() -> None:
    assert lower_is_better("wer") and lower_is_better("wer[gender=female]")
    assert lower_is_better("failure_rate")
    assert not lower_is_better("correct") and not lower_is_better("pass_rate")


# -- FairnessGate ---------------------------------------------------------------------------------


def test_fairness_equal_groups_pass() -> None:
    errors = [k % 3 for k in range(30)]
    result = fairness().evaluate(results(paired(errors, errors)))
    assert result.passed is True
    assert result.kind == "fairness"
    assert result.name == "mini:fair:wer~gender"
    assert result.value == pytest.approx(0.0)
    assert result.details["paired"] is True
    assert result.details["unit"] == "pairs"
    assert result.details["comparisons"] == 1
    assert "not significant" in result.message
    assert "holds" in result.message
    assert "Bonferroni" not in result.message
    json.dumps(result.to_json(), allow_nan=False)


def test_fairness_large_consistent_gap_fails_with_a_paired_test() -> None:
    female = [3 + k % 2 for k in range(30)]
    male = [k % 2 for k in range(30)]
    result = fairness(max_gap=0.05).evaluate(results(paired(female, male)))
    assert result.passed is False
    assert result.details["worst"] == "female"
    assert result.details["best"] == "male"
    assert result.value == pytest.approx(0.3)
    assert result.details["groups"] == pytest.approx({"female": 0.35, "male": 0.05})
    assert result.details["paired"] is True
    assert result.details["test"]["test"] == "wilcoxon signed-rank"
    assert result.details["test"]["p_value"] < 1e-4
    assert result.n == 30
    message = result.message
    assert "wilcoxon signed-rank" in message
    assert "30 pairs" in message
    assert "gender-paired" in message
    assert "female 0.3500, male 0.0500" in message
    assert "worst female vs best male" in message
    assert "exceeds 0.05" in message
    assert "significant at α=0.05" in message and "not significant" not in message
    assert message.endswith("FAILS")


def test_fairness_big_gap_that_is_not_significant_still_fails_on_max_gap() -> None:
    records = [
        record("f1", 5, gender="female", pair=None),
        record("f2", 6, gender="female", pair=None),
        record("m1", 0, gender="male", voice="awb", pair=None),
        record("m2", 1, gender="male", voice="awb", pair=None),
    ]
    result = fairness(max_gap=0.1).evaluate(results(records))
    assert result.passed is False
    assert result.value == pytest.approx(0.5)
    assert result.details["test"]["p_value"] >= 0.05
    assert "not significant" in result.message
    assert "exceeds 0.1" in result.message


def test_fairness_small_significant_gap_below_max_gap_fails() -> None:
    # one more word error in a hundred, on every one of 30 sentences
    result = fairness(max_gap=0.05).evaluate(results(paired([1] * 30, [0] * 30, words=100)))
    assert result.passed is False
    assert result.value == pytest.approx(0.01)
    assert "within 0.05" in result.message
    assert result.details["p_adjusted"] < 0.05
    assert "significant at α=0.05" in result.message and "not significant" not in result.message


def test_fairness_without_pair_keys_uses_an_unpaired_test() -> None:
    records = [record(f"f{k}", 3, gender="female", pair=None) for k in range(20)]
    records += [record(f"m{k}", 0, gender="male", voice="awb", pair=None) for k in range(20)]
    result = fairness().evaluate(results(records))
    assert result.passed is False
    assert result.details["paired"] is False
    assert result.details["unit"] == "items"
    assert result.details["test"]["test"] == "mann-whitney u"
    assert result.n == 40
    assert "mann-whitney" in result.message
    assert "20 vs 20 items" in result.message
    assert "-paired" not in result.message


def test_fairness_with_too_few_shared_pairs_falls_back_to_unpaired() -> None:
    result = fairness().evaluate(results(paired([1, 2, 3, 1], [0, 0, 1, 0])))
    assert result.details["paired"] is False
    assert result.details["test"]["test"] == "mann-whitney u"


def three_voices(worse: int, better: int, extra_voices: Sequence[str] = ()) -> list[Record]:
    """Voices a, b (and extras) read 30 sentences with 1 error in 10; voice c has 3 errors on
    ``worse`` sentences and none on the next ``better`` ones."""
    records = []
    for s in range(30):
        for v in ("a", "b", *extra_voices):
            records.append(record(f"s{s:02d}-{v}", 1, voice=v, pair=f"s{s:02d}"))
        errors = 3 if s < worse else (0 if s < worse + better else 1)
        records.append(record(f"s{s:02d}-c", errors, voice="c", pair=f"s{s:02d}"))
    return records


@pytest.mark.parametrize(("extra", "k"), [((), 3), (("d",), 4)])
def test_fairness_more_than_two_groups_is_bonferroni_corrected(
    extra: tuple[str, ...], k: int
) -> None:
    records = three_voices(5, 0, extra)
    result = fairness(by="voice", max_gap=0.5).evaluate(results(records))
    comparisons = k * (k - 1) // 2
    p = result.details["test"]["p_value"]
    assert result.details["comparisons"] == comparisons
    assert result.details["p_adjusted"] == pytest.approx(min(1.0, p * comparisons))
    assert result.details["worst"] == "c" and result.details["best"] == "a"
    assert f"Bonferroni ×{comparisons}" in result.message
    # significant on its own, but not once corrected for all pairs of groups
    assert p < 0.05 <= result.details["p_adjusted"]
    assert result.passed is True

    # the same two voices alone: no correction, and the gap is significant
    two = [r for r in records if r.groups["voice"] in ("a", "c")]
    alone = fairness(by="voice", max_gap=0.5).evaluate(results(two))
    assert alone.details["comparisons"] == 1
    assert alone.details["p_adjusted"] == pytest.approx(p)
    assert alone.passed is False


def test_fairness_bonferroni_is_capped_at_one() -> None:
    result = fairness(by="voice", max_gap=0.5).evaluate(results(three_voices(2, 2)))
    assert result.details["test"]["p_value"] * 3 > 1
    assert result.details["p_adjusted"] == 1.0
    assert result.passed is True


@pytest.mark.parametrize("by", ["gender", "accent"])
def test_fairness_needs_two_groups(by: str) -> None:
    records = [record(f"f{k}", k % 3, gender="female", pair=None) for k in range(10)]
    result = fairness(by=by).evaluate(results(records))
    assert result.passed is False
    assert "needs at least two groups" in result.message
    assert f"'{by}'" in result.message
    expected = "['female']" if by == "gender" else "none"
    assert f"found {expected}" in result.message


def test_fairness_group_with_only_errors_does_not_count() -> None:
    records = [record(f"f{k}", 1, gender="female", pair=f"s{k}") for k in range(10)]
    records += [
        record(f"m{k}", gender="male", voice="awb", pair=f"s{k}", status="error") for k in range(10)
    ]
    result = fairness().evaluate(results(records))
    assert result.passed is False
    assert "found ['female']" in result.message


def test_fairness_excludes_errored_records() -> None:
    errors = [k % 3 for k in range(30)]
    clean = paired(errors, errors)
    noisy = clean + [
        record(f"x{k:02d}-awb", gender="male", voice="awb", pair=f"s{k:02d}", status="error")
        for k in range(30)
    ]
    for result in (
        fairness().evaluate(results(noisy)),
        fairness("correct").evaluate(results(noisy)),
    ):
        assert result.passed is True, result.message
        assert result.value == pytest.approx(0.0)
        assert result.n == 30


def test_fairness_on_correct_uses_mcnemar_when_paired() -> None:
    # female fails 12 sentences (4 errors in 10) that male passes; male fails none she passes
    female = [4 if k < 12 else 0 for k in range(30)]
    male = [0] * 30
    result = fairness("correct", max_gap=0.5).evaluate(results(paired(female, male)))
    assert result.details["test"]["test"] == "mcnemar exact"
    assert result.details["paired"] is True
    assert result.details["worst"] == "female"
    assert result.details["groups"] == pytest.approx({"female": 18 / 30, "male": 1.0})
    assert "mcnemar exact on 30 pairs" in result.message
    assert result.details["test"]["p_value"] == pytest.approx(2 * 0.5**12)
    assert result.passed is False
    assert "within 0.5" in result.message


def test_fairness_on_correct_uses_fisher_when_unpaired() -> None:
    records = [record(f"f{k}", 4 if k < 12 else 0, gender="female", pair=None) for k in range(30)]
    records += [record(f"m{k}", 0, gender="male", voice="awb", pair=None) for k in range(30)]
    result = fairness("correct", max_gap=0.5).evaluate(results(records))
    assert result.details["test"]["test"] == "fisher exact"
    assert "fisher exact on 30 vs 30 items" in result.message
    assert result.passed is False


def test_fairness_on_correct_by_gender_with_several_voices_per_gender() -> None:
    records = []
    for s in range(30):
        records.append(record(f"s{s}-slt", 0, gender="female", voice="slt", pair=f"s{s}"))
        for j, voice in enumerate(("awb", "kal", "rms")):
            errors = 5 if (s + j) % 3 == 0 else 0
            records.append(
                record(f"s{s}-{voice}", errors, gender="male", voice=voice, pair=f"s{s}")
            )
    result = fairness("correct", max_gap=0.5).evaluate(results(records))
    assert result.details["paired"] is True
    assert result.passed is False


# -- RegressionGate -------------------------------------------------------------------------------


def ids(n: int = 200) -> list[str]:
    return [f"i{k:03d}" for k in range(n)]


BASE_ERRORS = [k % 4 for k in range(200)]


def baseline_run() -> list[Record]:
    return run(list(zip(ids(), BASE_ERRORS, strict=True)))


def test_regression_identical_runs_pass() -> None:
    for metric in ("wer", "correct"):
        result = regression_gate(baseline_run(), metric).evaluate(results(baseline_run()))
        assert result.passed is True, result.message
        assert result.kind == "regression"
        assert result.name == f"mini:regression:{metric}"
        assert result.n == 200
        assert result.value == pytest.approx(0.0)
        assert "no significant regression" in result.message
        assert "not compared" not in result.message
        assert (
            result.details["only_in_baseline"] == [] and result.details["only_in_candidate"] == []
        )
        json.dumps(result.to_json(), allow_nan=False)


def test_regression_clearly_worse_fails_and_names_the_test() -> None:
    candidate = run([(i, e + 2) for i, e in zip(ids(), BASE_ERRORS, strict=True)])
    result = regression_gate(baseline_run()).evaluate(results(candidate))
    assert result.passed is False
    assert result.value == pytest.approx(0.2)
    assert result.details["worse_by"] == pytest.approx(0.2)
    assert result.details["shared"] == 200
    assert result.details["test"]["test"] == "wilcoxon signed-rank"
    assert "REGRESSED" in result.message
    assert "wilcoxon signed-rank on 200 pairs" in result.message
    assert "margin 0.01" in result.message
    assert (
        result.condition
        == "wer not significantly worse than baseline r1 (old) by more than 0.01 (α=0.05)"
    )


def test_regression_on_correct_uses_mcnemar() -> None:
    candidate = run([(i, e + 2) for i, e in zip(ids(), BASE_ERRORS, strict=True)])
    result = regression_gate(baseline_run(), "correct", margin=0.02).evaluate(results(candidate))
    # 2 more errors in 10 turn the 1- and 2-error passes into fails: half the instances
    assert result.value == pytest.approx(0.5)
    assert result.details["test"]["test"] == "mcnemar exact"
    assert "mcnemar exact" in result.message
    assert result.passed is False


def test_regression_that_is_not_significant_passes() -> None:
    # 12 instances got much worse and 8 a little better: worse on average, but noise
    candidate = run(
        [(i, 2 + (8 if k < 12 else (-2 if k < 20 else 0))) for k, i in enumerate(ids())]
    )
    base = run([(i, 2) for i in ids()])
    result = regression_gate(base, margin=0.01).evaluate(results(candidate))
    assert result.value == pytest.approx(0.04)
    assert result.value > 0.01
    assert result.details["test"]["p_value"] >= 0.05
    assert result.passed is True
    assert "no significant regression" in result.message


def test_regression_significant_but_within_the_margin_passes() -> None:
    # one more word error in 20 on 40 of 200 instances: consistently worse, by 0.01 on average
    base = run([(i, 2) for i in ids()], words=20)
    candidate = run([(i, 3 if k < 40 else 2) for k, i in enumerate(ids())], words=20)
    result = regression_gate(base, margin=0.02).evaluate(results(candidate))
    assert result.value == pytest.approx(0.01)
    assert result.details["test"]["p_value"] < 0.05
    assert result.passed is True
    assert "worse but within the margin" in result.message
    # the same evidence with a tighter margin regresses
    assert regression_gate(base, margin=0.005).evaluate(results(candidate)).passed is False


def test_regression_better_candidate_passes() -> None:
    base = run([(i, e + 2) for i, e in zip(ids(), BASE_ERRORS, strict=True)])
    result = regression_gate(base).evaluate(results(baseline_run()))
    assert result.passed is True
    assert result.value == pytest.approx(-0.2)


def test_regression_reports_instances_in_one_run_only() -> None:
    base = baseline_run() + run([("old-1", 0)])
    candidate = baseline_run() + run([("new-1", 9), ("new-2", 9)])
    result = regression_gate(base).evaluate(results(candidate))
    assert result.passed is True
    assert result.n == 200
    assert result.details["shared"] == 200
    assert result.details["only_in_baseline"] == ["old-1"]
    assert result.details["only_in_candidate"] == ["new-1", "new-2"]
    assert "1 only in the baseline (old-1)" in result.message
    assert "2 only in this run (new-1, new-2)" in result.message


def test_regression_lists_at_most_five_unmatched_ids_in_the_message() -> None:
    base = baseline_run()
    candidate = baseline_run() + run([(f"new-{k}", 0) for k in range(7)])
    result = regression_gate(base).evaluate(results(candidate))
    assert len(result.details["only_in_candidate"]) == 7
    assert "7 only in this run (new-0, new-1, new-2, new-3, new-4, …)" in result.message


def test_regression_with_no_shared_instances_fails_clearly() -> None:
    base = run([("a1", 0), ("a2", 0)])
    candidate = run([("b1", 0)])
    result = regression_gate(base).evaluate(results(candidate))
    assert result.passed is False
    assert result.n == 0
    assert "no instance has a wer in both the baseline and this run" in result.message
    assert "nothing can be compared" in result.message
    assert "2 only in the baseline (a1, a2)" in result.message
    assert "1 only in this run (b1)" in result.message
    assert result.details["only_in_baseline"] == ["a1", "a2"]
    assert result.details["only_in_candidate"] == ["b1"]
    json.dumps(result.to_json(), allow_nan=False)


def test_regression_excludes_errored_records_from_the_comparison() -> None:
    candidate = baseline_run()[:-1] + [record("i199", status="error", pair=None)]
    result = regression_gate(baseline_run()).evaluate(results(candidate))
    assert result.passed is True
    assert result.details["shared"] == 199


def test_regression_does_not_call_an_errored_candidate_instance_baseline_only() -> None:
    candidate = baseline_run()[:-1] + [record("i199", status="error", pair=None)]
    result = regression_gate(baseline_run()).evaluate(results(candidate))
    assert "i199" not in result.details["only_in_baseline"]
    assert "only in the baseline" not in result.message


def test_regression_gate_from_policy_evaluates(tmp_path: Path) -> None:
    path = write(
        tmp_path / "gates.toml",
        '[defaults]\nregression = [{ metric = "correct", margin = 0.02, alpha = 0.05 }]\n',
    )
    candidate = run([(i, e + 2) for i, e in zip(ids(), BASE_ERRORS, strict=True)])
    (gate,) = load_policy(path).gates(
        "mini", Baseline("baseline r1 (old)", {"mini": tuple(baseline_run())})
    )
    result = gate.evaluate(results(candidate))
    assert result.passed is False
    assert result.source == str(path)
    assert "mini: REGRESSED" in result.message
    assert not math.isnan(result.value or 0.0)
