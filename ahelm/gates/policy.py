"""The gate policy: a team-owned TOML file of release conditions, with per-model overrides.

```toml
[defaults]                       # for every scenario
gates = ["error_rate <= 0.02"]   # thresholds on scenario metrics
strict = false                   # true: judge thresholds on the unfavourable CI bound
regression = [{ metric = "correct", margin = 0.02, alpha = 0.05 }]   # with --baseline

[english_asr]
instance = "wer <= 0.25"         # the per-instance bar: pass or fail for one answer
gates = ["wer <= 0.15", "wer[gender=female] <= 0.2 strict"]
fairness = [{ metric = "wer", by = "gender", max_gap = 0.05, alpha = 0.05 }]
regression = [{ metric = "wer", margin = 0.01, alpha = 0.05 }]
```
A model config may carry ``[gates.<scenario>]`` tables of the same shape; each key it sets
replaces the policy's for that scenario.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ahelm.config import ConfigError
from ahelm.core import Record
from ahelm.gates.expr import Condition
from ahelm.gates.kinds import FairnessGate, Gate, RegressionGate, ThresholdGate
from ahelm.robustness.policy import PropertyPolicy, parse_properties

_SCENARIO_KEYS = ("instance", "gates", "strict", "fairness", "regression")
_DEFAULT_KEYS = ("gates", "strict", "regression")
_FAIRNESS_FIELDS = {"metric": str, "by": str, "max_gap": float, "alpha": float}
_REGRESSION_FIELDS = {"metric": str, "margin": float, "alpha": float}


@dataclass(frozen=True)
class RegressionSpec:
    metric: str
    margin: float
    alpha: float
    source: str


@dataclass(frozen=True)
class Baseline:
    """A previous run to compare with: its label and its records by scenario."""

    label: str
    records: Mapping[str, tuple[Record, ...]]


@dataclass(frozen=True)
class Rules:
    """One scenario's (or the defaults') entries; ``None`` means "not set here"."""

    instance: Condition | None = None
    thresholds: tuple[tuple[Condition, bool], ...] | None = None
    strict: bool | None = None
    fairness: tuple[FairnessGate, ...] | None = None
    regression: tuple[RegressionSpec, ...] | None = None
    source: str = ""

    def over(self, base: Rules) -> Rules:
        """These rules where set, ``base`` elsewhere."""
        return Rules(
            instance=self.instance or base.instance,
            thresholds=base.thresholds if self.thresholds is None else self.thresholds,
            strict=base.strict if self.strict is None else self.strict,
            fairness=base.fairness if self.fairness is None else self.fairness,
            regression=base.regression if self.regression is None else self.regression,
            source=self.source if self.thresholds is not None else base.source,
        )


@dataclass(frozen=True)
class GatePolicy:
    path: Path | None
    defaults: Rules = Rules()
    scenarios: Mapping[str, Rules] = field(default_factory=dict)
    properties: PropertyPolicy = field(default_factory=lambda: parse_properties(None, ""))
    """Robustness properties (``[properties]``): see ahelm.robustness.policy."""

    def instance_bar(self, scenario: str, family_default: Condition) -> Condition:
        rules = self.scenarios.get(scenario)
        return rules.instance if rules and rules.instance else family_default

    def gates(self, scenario: str, baseline: Baseline | None = None) -> tuple[Gate, ...]:
        own = self.scenarios.get(scenario, Rules())
        strict = bool(own.strict if own.strict is not None else self.defaults.strict)
        thresholds = list(own.thresholds or ())
        declared = {c.metric for c, _ in thresholds}
        thresholds += [(c, s) for c, s in self.defaults.thresholds or () if c.metric not in declared]
        gates: list[Gate] = []
        for condition, own_strict in thresholds:
            source = own.source if condition.metric in declared else self.defaults.source
            gates.append(ThresholdGate(scenario, condition, source, strict or own_strict))
        gates += [FairnessGate(scenario, f.metric, f.by, f.max_gap, f.alpha, f.source)
                  for f in own.fairness or ()]
        specs = own.regression if own.regression is not None else self.defaults.regression
        if baseline is not None:
            gates += [RegressionGate(scenario, s.metric, s.margin, s.alpha, s.source,
                                     baseline.records.get(scenario, ()), baseline.label)
                      for s in specs or ()]
        return tuple(gates)


def load_policy(
    path: Path | None, overrides: Mapping[str, Any] | None = None, overrides_path: Path | None = None
) -> GatePolicy:
    """Read the policy file and merge a model config's ``[gates]`` table over it."""
    table: dict[str, Any] = {}
    if path is not None:
        if not path.is_file():
            raise ConfigError(path, None, "gate policy file not found")
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(path, None, f"not valid TOML: {exc}") from None
    source = str(path) if path else "built-in"
    defaults = _rules("defaults", table.pop("defaults", {}), source, "defaults", _DEFAULT_KEYS)
    properties = parse_properties(table.pop("properties", None), source)
    scenarios = {name: _rules(name, rules, source, name, _SCENARIO_KEYS)
                 for name, rules in table.items()}
    where = str(overrides_path or "model config")
    for name, rules in (overrides or {}).items():
        mine = _rules(name, rules, where, f"gates.{name}", _SCENARIO_KEYS)
        scenarios[name] = mine.over(scenarios.get(name, Rules()))
    return GatePolicy(path=path, defaults=defaults, scenarios=scenarios, properties=properties)


def _rules(name: str, rules: Any, source: str, prefix: str, allowed: tuple[str, ...]) -> Rules:
    if not isinstance(rules, dict):
        raise ConfigError(source, prefix, f"must be a table with keys among {', '.join(allowed)}")
    unknown = sorted(set(rules) - set(allowed))
    if unknown:
        raise ConfigError(source, f"{prefix}.{unknown[0]}", f"unknown key; use {', '.join(allowed)}")
    instance = None
    if "instance" in rules:
        instance = _condition(rules["instance"], source, f"{prefix}.instance")[0]
    thresholds = None
    if "gates" in rules:
        values = _list(rules["gates"], source, f"{prefix}.gates")
        thresholds = tuple(_condition(v, source, f"{prefix}.gates[{i}]") for i, v in enumerate(values))
    strict = rules.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise ConfigError(source, f"{prefix}.strict", "must be true or false")
    fairness = None
    if "fairness" in rules:
        entries = _tables(rules["fairness"], source, f"{prefix}.fairness", _FAIRNESS_FIELDS)
        fairness = tuple(FairnessGate(name, e["metric"], e["by"], e["max_gap"], e["alpha"], source)
                         for e in entries)
    regression = None
    if "regression" in rules:
        entries = _tables(rules["regression"], source, f"{prefix}.regression", _REGRESSION_FIELDS)
        regression = tuple(RegressionSpec(e["metric"], e["margin"], e["alpha"], source)
                           for e in entries)
    return Rules(instance, thresholds, strict, fairness, regression, source)


def _list(values: Any, source: str, where: str) -> list[Any]:
    if not isinstance(values, list):
        raise ConfigError(source, where, "must be a list")
    return values


def _tables(values: Any, source: str, where: str, fields: dict[str, type]) -> list[dict[str, Any]]:
    entries = []
    for i, entry in enumerate(_list(values, source, where)):
        here = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(source, here, f"must be a table with {', '.join(fields)}")
        unknown = sorted(set(entry) - set(fields))
        if unknown:
            raise ConfigError(source, f"{here}.{unknown[0]}", f"unknown key; use {', '.join(fields)}")
        checked: dict[str, Any] = {}
        for key, kind in fields.items():
            value = entry.get(key)
            ok = isinstance(value, str) if kind is str else (
                isinstance(value, (int, float)) and not isinstance(value, bool))
            if not ok:
                raise ConfigError(source, f"{here}.{key}", f"missing or not a {kind.__name__}")
            checked[key] = float(value) if kind is float and value is not None else value
        if "alpha" in checked and not 0 < checked["alpha"] < 1:
            raise ConfigError(source, f"{here}.alpha", "must be between 0 and 1")
        for key in ("margin", "max_gap"):
            if key in checked and checked[key] < 0:
                raise ConfigError(source, f"{here}.{key}", "must be zero or positive")
        entries.append(checked)
    return entries


def _condition(value: Any, source: str, where: str) -> tuple[Condition, bool]:
    """A threshold condition and whether it ends in ``strict``."""
    if not isinstance(value, str):
        raise ConfigError(source, where, f"expected a condition string, got {value!r}")
    text, strict = value.strip(), False
    if text.endswith(" strict"):
        text, strict = text[: -len(" strict")], True
    try:
        return Condition.parse(text), strict
    except ValueError as exc:
        raise ConfigError(source, where, str(exc)) from None
