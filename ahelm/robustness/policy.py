"""The ``[properties]`` tables of the gate policy: robustness properties and their budgets.

```toml
[properties.defaults]
examples = { smoke = 6, full = 30 }      # hypothesis examples per property (profiles smoke/full)

[properties.asr_wer]
check = "wer_within_delta"               # WER(perturbed) <= WER(clean) + delta, clip by clip
scenario = "english_asr"
delta = 0.10
max_severity = 0.3                       # perturbations drawn with severities up to this
max_length = 3                           # 1..3 transforms per chain
clips = 4                                # the first clips of the scenario's smoke subset
kinds = ["gaussian_noise", "reverb"]     # optional: default every kind
breaking_points = { clips = 4, steps = 5, smoke_clips = 2, smoke_steps = 4 }

[properties.mc_invariance]
check = "invariance"                     # the chosen option does not change
scenario = "toxicity_detection"
max_severity = 0.15
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ahelm.config import ConfigError
from ahelm.robustness.perturbations import KINDS

CHECKS = ("wer_within_delta", "invariance")
_KEYS = {"check", "scenario", "delta", "max_severity", "max_length", "clips", "kinds",
         "breaking_points"}
_BREAKING_KEYS = {"clips", "steps", "smoke_clips", "smoke_steps"}


@dataclass(frozen=True)
class BreakingPoints:
    clips: int = 4
    steps: int = 5
    smoke_clips: int = 2
    smoke_steps: int = 4

    def budget(self, suite_size: str) -> tuple[int, int]:
        """(clips, bisection steps) for the suite size."""
        return (self.smoke_clips, self.smoke_steps) if suite_size == "smoke" else (
            self.clips, self.steps)


@dataclass(frozen=True)
class PropertySpec:
    name: str
    check: str
    scenario: str
    max_severity: float
    delta: float = 0.0
    max_length: int = 3
    clips: int = 4
    kinds: tuple[str, ...] = tuple(KINDS)
    breaking_points: BreakingPoints | None = None
    source: str = ""


@dataclass(frozen=True)
class PropertyPolicy:
    examples: Mapping[str, int]
    properties: Mapping[str, PropertySpec]


DEFAULT_EXAMPLES = {"smoke": 6, "full": 30}


def parse_properties(table: Any, source: str) -> PropertyPolicy:
    if table is None:
        return PropertyPolicy(dict(DEFAULT_EXAMPLES), {})
    if not isinstance(table, dict):
        raise ConfigError(source, "properties", "must be a table of property tables")
    examples = dict(DEFAULT_EXAMPLES)
    defaults = table.get("defaults", {})
    if not isinstance(defaults, dict) or set(defaults) - {"examples"}:
        raise ConfigError(source, "properties.defaults", "may only set examples")
    given = defaults.get("examples", {})
    if not isinstance(given, dict) or set(given) - set(DEFAULT_EXAMPLES) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in given.values()):
        raise ConfigError(source, "properties.defaults.examples",
                          "must be { smoke = N, full = N } with positive integers")
    examples.update(given)
    specs = {name: _spec(name, body, source) for name, body in table.items() if name != "defaults"}
    return PropertyPolicy(examples, specs)


def _number(body: Mapping[str, Any], key: str, where: str, source: str, default: Any,
            low: float, high: float, integer: bool = False) -> Any:
    value = body.get(key, default)
    ok = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    if not ok or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise ConfigError(source, f"{where}.{key}", f"must be {kind} in [{low:g}, {high:g}]")
    return value if integer else float(value)


def _spec(name: str, body: Any, source: str) -> PropertySpec:
    where = f"properties.{name}"
    if not isinstance(body, dict):
        raise ConfigError(source, where, "must be a table")
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise ConfigError(source, f"{where}.{unknown[0]}", f"unknown key; use {', '.join(sorted(_KEYS))}")
    check = body.get("check")
    if check not in CHECKS:
        raise ConfigError(source, f"{where}.check", f"must be one of {', '.join(CHECKS)}")
    scenario = body.get("scenario")
    if not isinstance(scenario, str) or not scenario:
        raise ConfigError(source, f"{where}.scenario", "must name a scenario")
    kinds = body.get("kinds", list(KINDS))
    if not isinstance(kinds, list) or not kinds or any(k not in KINDS for k in kinds):
        raise ConfigError(source, f"{where}.kinds", f"must list kinds among {', '.join(KINDS)}")
    breaking = body.get("breaking_points")
    points = None
    if breaking is not None:
        if not isinstance(breaking, dict) or set(breaking) - _BREAKING_KEYS:
            raise ConfigError(source, f"{where}.breaking_points",
                              f"must be a table with keys among {', '.join(sorted(_BREAKING_KEYS))}")
        points = BreakingPoints(**{
            k: _number(breaking, k, f"{where}.breaking_points", source, getattr(BreakingPoints, k),
                       1, 50, integer=True) for k in _BREAKING_KEYS})
    return PropertySpec(
        name=name, check=check, scenario=scenario,
        max_severity=_number(body, "max_severity", where, source, None, 0.0, 1.0),
        delta=_number(body, "delta", where, source, 0.0, 0.0, 1.0),
        max_length=_number(body, "max_length", where, source, 3, 1, 3, integer=True),
        clips=_number(body, "clips", where, source, 4, 1, 1000, integer=True),
        kinds=tuple(kinds), breaking_points=points, source=source,
    )
