"""What judging a gate produces: pass or fail, and a message that gives the numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ahelm.core import Record
from ahelm.scoring.stats import Metric, finite_or_none


@dataclass(frozen=True)
class ScenarioResults:
    """Everything a gate may look at: the scenario's per-instance records and its metrics."""

    scenario: str
    records: Sequence[Record]
    metrics: Mapping[str, Metric]


@dataclass(frozen=True)
class GateResult:
    kind: str
    name: str
    scenario: str
    condition: str
    source: str
    passed: bool
    message: str
    value: float | None = None
    ci95: tuple[float | None, float | None] | None = None
    n: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "scenario": self.scenario,
            "condition": self.condition,
            "source": self.source,
            "passed": self.passed,
            "message": self.message,
            "value": finite_or_none(self.value),
            "ci95": [finite_or_none(v) for v in self.ci95] if self.ci95 else None,
            "n": self.n,
            "details": dict(self.details),
        }



def item_values(records: Sequence[Record], metric: str) -> dict[str, float]:
    """Per-instance values of ``metric`` by instance id, for answered instances.

    ``correct`` is 1 for an answer that met the instance bar and 0 otherwise; any other name
    is a per-instance score (``wer``). Instances without that score are left out (a bias score
    exists only for decisive answers).
    """
    values: dict[str, float] = {}
    for record in records:
        if record.status == "error":
            continue
        if metric == "correct":
            values[record.instance_id] = 1.0 if record.passed else 0.0
        elif metric in record.scores:
            values[record.instance_id] = float(record.scores[metric])
    return values


LOWER_IS_BETTER = frozenset({"wer", "cer", "mer", "ter", "error_rate", "failure_rate",
                             "format_failure_rate", "stereotype_consistent",
                             "stereotype_consistent_rate", "wer_increase", "wer_ratio",
                             "output_toxic_rate", "over_refusal_rate"})


BINARY = frozenset({"correct", "stereotype_consistent"})
"""Per-instance values that are yes/no outcomes: compared with exact tests for proportions."""


def is_binary(metric: str) -> bool:
    return metric in BINARY


def lower_is_better(metric: str) -> bool:
    return metric.split("[", 1)[0] in LOWER_IS_BETTER
