"""Judging a gate against a scenario's metrics, with a message that gives the numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from ahelm.gates.policy import Gate
from ahelm.scoring.stats import Metric


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    metric: Metric | None
    passed: bool
    message: str

    def to_json(self) -> dict[str, Any]:
        metric = self.metric.to_json() if self.metric else None
        return {
            "name": self.gate.name,
            "scenario": self.gate.scenario,
            "condition": self.gate.condition.text,
            "metric": self.gate.condition.metric,
            "op": self.gate.condition.op,
            "threshold": self.gate.condition.threshold,
            "value": metric["value"] if metric else None,
            "ci95": metric["ci95"] if metric else None,
            "n": metric["n"] if metric else 0,
            "passed": self.passed,
            "message": self.message,
            "source": self.gate.source,
        }


def evaluate(gate: Gate, metrics: Mapping[str, Metric]) -> GateResult:
    condition = gate.condition
    metric = metrics.get(condition.metric)
    if metric is None:
        known = ", ".join(sorted(metrics)) or "none"
        return GateResult(
            gate, None, False,
            f"{gate.scenario} has no metric '{condition.metric}' (declared in {gate.source}); "
            f"its metrics are: {known}",
        )
    if math.isnan(metric.value):
        return GateResult(
            gate, metric, False,
            f"{gate.scenario} {condition.metric} is undefined (no scored instances): "
            "a gate never passes without evidence",
        )
    passed = condition.holds(metric.value)
    verdict = "holds" if passed else "FAILS"
    message = (
        f"{gate.scenario} {condition.metric} = {metric.value:.4f} "
        f"(95% CI {metric.ci_low:.4f}–{metric.ci_high:.4f}, n={metric.n}) "
        f"{verdict} {condition.op} {condition.threshold:g}"
    )
    return GateResult(gate, metric, passed, message)
