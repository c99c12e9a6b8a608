"""What every scenario family provides, and the metrics all families share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

from ahelm.core import Instance, Record
from ahelm.gates.expr import Condition
from ahelm.scoring.stats import Metric, proportion


class ScenarioError(Exception):
    """A scenario's files are wrong; names the file, line and field."""


@dataclass(frozen=True)
class ScenarioSpec:
    """The contents of a scenario's ``scenario.toml``."""

    name: str
    aspect: str
    family: str
    directory: Path
    title: str = ""
    language: str = "en"
    smoke_size: int = 40
    group_by: tuple[str, ...] = ()
    pair_by: str | None = None
    """A manifest field shared by instances that differ only in their group (the same sentence
    read by several voices): fairness tests pair on it, and the smoke subset keeps pairs whole."""


class Family(Protocol):
    """A scenario family: how manifest rows become instances and how answers are scored."""

    name: str
    default_bar: Condition

    def instance(self, spec: ScenarioSpec, row: Mapping[str, Any], where: str) -> Instance: ...

    def score(self, instance: Instance, output: str) -> dict[str, float]: ...

    def explain(self, record: Record) -> str: ...

    def metrics(self, records: Sequence[Record]) -> dict[str, Metric]: ...


def require(row: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    """A manifest field that must be present and of ``kind``; the error names the place."""
    if name not in row:
        raise ScenarioError(f"{where}: field '{name}' is missing")
    value = row[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ScenarioError(
            f"{where}: field '{name}' should be {kind.__name__}, got {type(value).__name__}"
        )
    return value


def outcome_metrics(records: Sequence[Record]) -> dict[str, Metric]:
    """Shared by every family: pass_rate over answered instances; error_rate (no answer) and
    failure_rate, the error budget (no answer or an answer in the wrong format), over all."""
    answered = [r for r in records if r.status != "error"]
    errors = len(records) - len(answered)
    format_failures = sum(1 for r in answered if r.scores.get("format_failure", 0.0) > 0)
    return {
        "pass_rate": proportion(sum(r.passed for r in answered), len(answered)),
        "error_rate": proportion(errors, len(records), lower_is_better=True),
        "format_failure_rate": proportion(format_failures, len(answered), lower_is_better=True),
        "failure_rate": proportion(errors + format_failures, len(records), lower_is_better=True),
    }


def per_group(
    records: Sequence[Record], compute: Callable[[Sequence[Record]], Metric], name: str
) -> dict[str, Metric]:
    """``name[key=value]`` for every group label present in the records."""
    labels = sorted({(k, v) for r in records for k, v in r.groups.items()})
    return {
        f"{name}[{key}={value}]": compute([r for r in records if r.groups.get(key) == value])
        for key, value in labels
    }
