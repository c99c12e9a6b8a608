"""The gate policy: a team-owned TOML file of thresholds, with per-model overrides.

```toml
[defaults]                      # applied to every scenario
gates = ["error_rate <= 0.02"]

[english_asr]
instance = "wer <= 0.25"        # the per-instance bar: pass or fail for one answer
gates = ["wer <= 0.15", "wer[gender=female] <= 0.2"]
```
A model config may carry a ``[gates.<scenario>]`` table of the same shape; its keys replace the
policy's for that scenario.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ahelm.config import ConfigError
from ahelm.gates.expr import Condition


@dataclass(frozen=True)
class Gate:
    """One release condition on one scenario, and where it was declared."""

    scenario: str
    condition: Condition
    source: str

    @property
    def name(self) -> str:
        return f"{self.scenario}:{self.condition.metric}{self.condition.op}{self.condition.threshold:g}"


@dataclass(frozen=True)
class ScenarioRules:
    instance: Condition | None = None
    gates: tuple[Gate, ...] = ()


@dataclass(frozen=True)
class GatePolicy:
    path: Path | None
    defaults: tuple[Condition, ...] = ()
    scenarios: Mapping[str, ScenarioRules] = field(default_factory=dict)
    default_source: str = ""

    def instance_bar(self, scenario: str, family_default: Condition) -> Condition:
        rules = self.scenarios.get(scenario)
        return rules.instance if rules and rules.instance else family_default

    def gates(self, scenario: str) -> tuple[Gate, ...]:
        rules = self.scenarios.get(scenario, ScenarioRules())
        own = {g.condition.metric for g in rules.gates}
        defaults = tuple(
            Gate(scenario, c, self.default_source) for c in self.defaults if c.metric not in own
        )
        return rules.gates + defaults


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
    defaults_table = table.pop("defaults", {})
    if not isinstance(defaults_table, dict):
        raise ConfigError(source, "defaults", "must be a table")
    unknown = sorted(set(defaults_table) - {"gates"})
    if unknown:
        raise ConfigError(source, f"defaults.{unknown[0]}", "unknown key; use 'gates'")
    defaults = _conditions(defaults_table.get("gates", []), source, "defaults.gates")
    scenarios = {
        name: _rules(name, rules, source, prefix=name) for name, rules in table.items()
    }
    for name, rules in (overrides or {}).items():
        where = str(overrides_path or "model config")
        merged = _rules(name, rules, where, prefix=f"gates.{name}")
        base = scenarios.get(name, ScenarioRules())
        scenarios[name] = ScenarioRules(
            instance=merged.instance or base.instance,
            gates=merged.gates if "gates" in rules else base.gates,
        )
    return GatePolicy(path=path, defaults=defaults, scenarios=scenarios, default_source=source)


def _rules(name: str, rules: Any, source: str, *, prefix: str) -> ScenarioRules:
    if not isinstance(rules, dict):
        raise ConfigError(source, prefix, "must be a table with 'instance' and/or 'gates'")
    unknown = set(rules) - {"instance", "gates"}
    if unknown:
        raise ConfigError(source, f"{prefix}.{sorted(unknown)[0]}", "unknown key; use 'instance' or 'gates'")
    instance = None
    if "instance" in rules:
        instance = _condition(rules["instance"], source, f"{prefix}.instance")
    conditions = _conditions(rules.get("gates", []), source, f"{prefix}.gates")
    return ScenarioRules(instance, tuple(Gate(name, c, source) for c in conditions))


def _conditions(values: Any, source: str, where: str) -> tuple[Condition, ...]:
    if not isinstance(values, list):
        raise ConfigError(source, where, "must be a list of conditions such as \"wer <= 0.15\"")
    return tuple(_condition(v, source, f"{where}[{i}]") for i, v in enumerate(values))


def _condition(value: Any, source: str, where: str) -> Condition:
    if not isinstance(value, str):
        raise ConfigError(source, where, f"expected a condition string, got {value!r}")
    try:
        return Condition.parse(value)
    except ValueError as exc:
        raise ConfigError(source, where, str(exc)) from None
