"""Unit tests of gate conditions, the gate policy file with model overrides, and gate verdicts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ahelm.config import ConfigError
from ahelm.gates.expr import Condition
from ahelm.gates.policy import Gate, load_policy
from ahelm.gates.verdict import evaluate
from ahelm.scoring.stats import Metric

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


# -- policy ---------------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


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


def conditions(gates: tuple[Gate, ...]) -> list[str]:
    return [g.condition.text for g in gates]


def test_policy_scenario_gates_then_defaults(policy_file: Path) -> None:
    policy = load_policy(policy_file)
    gates = policy.gates("mini")
    # the scenario's own wer gate replaces the default wer gate; error_rate comes from defaults
    assert conditions(gates) == ["wer <= 0.15", "wer[gender=female] <= 0.2", "error_rate <= 0.02"]
    assert all(g.scenario == "mini" for g in gates)
    assert all(g.source == str(policy_file) for g in gates)
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


def test_policy_instance_bar(policy_file: Path) -> None:
    policy = load_policy(policy_file)
    family_default = Condition.parse("wer <= 0.25")
    assert policy.instance_bar("mini", family_default).text == "wer <= 0.3"
    assert policy.instance_bar("other", family_default) is family_default
    assert policy.instance_bar("absent", family_default) is family_default


def test_no_policy_file_means_no_gates() -> None:
    policy = load_policy(None)
    assert policy.gates("mini") == ()
    assert policy.default_source == "built-in"


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
    assert policy.instance_bar("new_one", Condition.parse("wer <= 0.25")).text == "wer <= 0.1"


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


def test_policy_rejects_unknown_keys_in_defaults(tmp_path: Path) -> None:
    path = write(tmp_path / "gates.toml", '[defaults]\ngate = ["error_rate <= 0.02"]\n')
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert info.value.field == "defaults.gate"


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


def test_policy_file_missing_or_invalid(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="gate policy file not found") as info:
        load_policy(missing)
    assert info.value.path == str(missing)
    broken = write(tmp_path / "broken.toml", "[mini\ngates = [")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_policy(broken)
    assert info.value.path == str(broken)


# -- evaluate -------------------------------------------------------------------------------------


def gate(text: str, scenario: str = "mini", source: str = "suites/gates.toml") -> Gate:
    return Gate(scenario, Condition.parse(text), source)


def test_evaluate_pass_message_gives_the_numbers() -> None:
    metrics = {"wer": Metric(0.1234, 0.1, 0.15, 40, lower_is_better=True)}
    result = evaluate(gate("wer <= 0.15"), metrics)
    assert result.passed is True
    assert result.metric is metrics["wer"]
    assert result.message == "mini wer = 0.1234 (95% CI 0.1000–0.1500, n=40) holds <= 0.15"


def test_evaluate_fail_message_gives_the_numbers() -> None:
    metrics = {"wer[gender=female]": Metric(0.6667, 0.4, 0.9, 3, lower_is_better=True)}
    result = evaluate(gate("wer[gender=female] <= 50%"), metrics)
    assert result.passed is False
    assert "0.6667" in result.message
    assert "95% CI 0.4000–0.9000" in result.message
    assert "n=3" in result.message
    assert "FAILS <= 0.5" in result.message
    data = result.to_json()
    assert data["passed"] is False
    assert data["value"] == 0.6667 and data["ci95"] == [0.4, 0.9] and data["n"] == 3
    assert data["threshold"] == 0.5 and data["op"] == "<="
    assert data["metric"] == "wer[gender=female]"
    assert data["name"] == "mini:wer[gender=female]<=0.5"
    assert data["source"] == "suites/gates.toml"


def test_evaluate_missing_metric_lists_the_available_ones() -> None:
    metrics = {"wer": Metric(0.1, 0.1, 0.1, 1), "cer": Metric(0.05, 0.05, 0.05, 1)}
    result = evaluate(gate("accuracy >= 0.9", source="model_configs/x.toml"), metrics)
    assert result.passed is False
    assert result.metric is None
    assert "no metric 'accuracy'" in result.message
    assert "model_configs/x.toml" in result.message
    assert "cer, wer" in result.message
    data = result.to_json()
    assert data["value"] is None and data["n"] == 0 and data["passed"] is False


def test_evaluate_with_no_metrics_at_all() -> None:
    result = evaluate(gate("wer <= 0.1"), {})
    assert result.passed is False
    assert result.message.endswith("its metrics are: none")


@pytest.mark.parametrize("text", ["wer <= 0.15", "pass_rate >= 0"])
def test_evaluate_nan_metric_fails(text: str) -> None:
    name = Condition.parse(text).metric
    nan = float("nan")
    result = evaluate(gate(text), {name: Metric(nan, nan, nan, 0)})
    assert result.passed is False
    assert "undefined" in result.message
    assert result.to_json()["value"] is None
    assert math.isnan(result.metric.value)  # type: ignore[union-attr]
