"""The gate kinds: a threshold on a metric, fairness between groups, regression against a baseline.

Each judges one scenario's results and explains itself with the numbers and the test it used.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

from ahelm.core import Record
from ahelm.gates.expr import Condition
from ahelm.gates.statistics import compare_paired, compare_unpaired, regression
from ahelm.gates.verdict import (
    GateResult,
    ScenarioResults,
    is_binary,
    item_values,
    lower_is_better,
)

MIN_PAIRS = 5
"""Fewer complete pairs than this and a fairness gate falls back to an unpaired test."""


@dataclass(frozen=True)
class ThresholdGate:
    """``wer <= 0.15``; in strict mode judged on the CI bound that is least favourable."""

    scenario: str
    condition: Condition
    source: str
    strict: bool = False
    kind = "threshold"

    @property
    def name(self) -> str:
        c = self.condition
        return f"{self.scenario}:{c.metric}{c.op}{c.threshold:g}" + (":strict" if self.strict else "")

    @property
    def condition_text(self) -> str:
        return self.condition.text + (" (strict)" if self.strict else "")

    def evaluate(self, results: ScenarioResults) -> GateResult:
        c = self.condition
        metric = results.metrics.get(c.metric)
        if metric is None:
            known = ", ".join(sorted(results.metrics)) or "none"
            return _result(self, passed=False, message=(
                f"{self.scenario} has no metric '{c.metric}' (declared in {self.source}); "
                f"its metrics are: {known}"))
        ci = (metric.ci_low, metric.ci_high)
        if math.isnan(metric.value):
            return _result(self, passed=False, n=metric.n, message=(
                f"{self.scenario} {c.metric} is undefined (no scored instances): "
                "a gate never passes without evidence"))
        judged = metric.value
        if self.strict:
            judged = metric.ci_high if c.op in ("<=", "<") else metric.ci_low
        passed = c.holds(judged)
        how = f"; strict: judged on the CI bound {judged:.4f}" if self.strict else ""
        return _result(
            self, passed=passed, value=metric.value, ci95=ci, n=metric.n,
            details={"judged_value": judged, "method": metric.method},
            message=(
                f"{self.scenario} {c.metric} = {metric.value:.4f} "
                f"(95% CI {metric.ci_low:.4f}–{metric.ci_high:.4f}, n={metric.n}{how}) "
                f"{'holds' if passed else 'FAILS'} {c.op} {c.threshold:g}"
            ),
        )


@dataclass(frozen=True)
class FairnessGate:
    """The gap in ``metric`` between the best and worst group of ``by`` stays small and is not
    significant. Items sharing a pair key (the same sentence in every voice) are compared
    pairwise; with more than two groups the p-value is Bonferroni-corrected for all pairs."""

    scenario: str
    metric: str
    by: str
    max_gap: float
    alpha: float
    source: str
    kind = "fairness"

    @property
    def name(self) -> str:
        return f"{self.scenario}:fair:{self.metric}~{self.by}"

    @property
    def condition_text(self) -> str:
        return f"gap in {self.metric} across {self.by} <= {self.max_gap:g}, not significant at α={self.alpha:g}"

    def evaluate(self, results: ScenarioResults) -> GateResult:
        values = item_values(results.records, self.metric)
        by_group: dict[str, list[Record]] = defaultdict(list)
        for record in results.records:
            label = record.groups.get(self.by)
            if label is not None and record.instance_id in values:
                by_group[label].append(record)
        if len(by_group) < 2:
            return _result(self, passed=False, message=(
                f"{self.scenario}: fairness across '{self.by}' needs at least two groups with "
                f"scored instances; found {sorted(by_group) or 'none'}"))
        level = {g: _group_level(results, self.metric, self.by, g, rs, values)
                 for g, rs in by_group.items()}
        low_better = lower_is_better(self.metric)
        ordered = sorted(level, key=lambda g: (level[g], g), reverse=low_better)
        best, worst = ordered[-1], ordered[0]
        gap = abs(level[worst] - level[best])
        a, b, paired, unit = _samples(by_group[best], by_group[worst], values)
        # A yes/no metric averaged over several items of a pair (three male voices reading one
        # sentence) is a proportion per pair: compared as a continuous value.
        binary = is_binary(self.metric) and set(a) | set(b) <= {0.0, 1.0}
        compare = compare_paired if paired else compare_unpaired
        comparison = compare(a, b, binary=binary)
        k = len(by_group)
        corrections = k * (k - 1) // 2
        p_adjusted = min(1.0, comparison.p_value * corrections)
        significant = p_adjusted < self.alpha
        passed = gap <= self.max_gap and not significant
        levels = ", ".join(f"{g} {level[g]:.4f}" for g in sorted(level))
        correction = f" (Bonferroni ×{corrections}: {p_adjusted:.3g})" if corrections > 1 else ""
        message = (
            f"{self.scenario} {self.metric} by {self.by}: {levels}; worst {worst} vs best {best}: "
            f"gap {gap:.4f} ({'within' if gap <= self.max_gap else 'exceeds'} {self.max_gap:g}); "
            f"{comparison.describe()}{' (per ' + self.by + '-paired item)' if paired else ''}"
            f"{correction}: "
            f"{'significant' if significant else 'not significant'} at α={self.alpha:g} "
            f"-> {'holds' if passed else 'FAILS'}"
        )
        return _result(
            self, passed=passed, value=gap, n=len(a) + (0 if paired else len(b)), message=message,
            details={"groups": level, "best": best, "worst": worst, "paired": paired,
                     "unit": unit, "comparisons": corrections, "p_adjusted": p_adjusted,
                     "test": comparison.to_json()},
        )


def _result(
    gate: Gate,
    *,
    passed: bool,
    message: str,
    value: float | None = None,
    ci95: tuple[float | None, float | None] | None = None,
    n: int = 0,
    details: dict[str, Any] | None = None,
) -> GateResult:
    return GateResult(
        kind=gate.kind, name=gate.name, scenario=gate.scenario, source=gate.source,
        condition=gate.condition_text, passed=passed, message=message, value=value, ci95=ci95,
        n=n, details=details or {},
    )


def _group_level(
    results: ScenarioResults, metric: str, by: str, group: str, records: Sequence[Record],
    values: dict[str, float],
) -> float:
    """The scenario's own group metric (corpus WER) where it has one, else the item mean."""
    own = results.metrics.get(f"{metric}[{by}={group}]")
    if own is not None and not math.isnan(own.value):
        return own.value
    return sum(values[r.instance_id] for r in records) / len(records)


def _samples(
    best: Sequence[Record], worst: Sequence[Record], values: dict[str, float]
) -> tuple[list[float], list[float], bool, str]:
    """Per-pair means when the groups share enough pair keys, else the raw item values."""
    def by_pair(records: Sequence[Record]) -> dict[str, list[float]]:
        grouped: dict[str, list[float]] = defaultdict(list)
        for r in records:
            if r.pair is not None:
                grouped[r.pair].append(values[r.instance_id])
        return grouped

    pa, pb = by_pair(best), by_pair(worst)
    shared = sorted(set(pa) & set(pb))
    if len(shared) >= MIN_PAIRS:
        a = [sum(pa[k]) / len(pa[k]) for k in shared]
        b = [sum(pb[k]) / len(pb[k]) for k in shared]
        return a, b, True, "pairs"
    return ([values[r.instance_id] for r in best], [values[r.instance_id] for r in worst],
            False, "items")


@dataclass(frozen=True)
class RegressionGate:
    """The candidate is not significantly worse than the baseline on the same instances, beyond
    ``margin``. A difference that is not significant never fails this gate."""

    scenario: str
    metric: str
    margin: float
    alpha: float
    source: str
    baseline_records: tuple[Record, ...]
    baseline_label: str
    kind = "regression"

    @property
    def name(self) -> str:
        return f"{self.scenario}:regression:{self.metric}"

    @property
    def condition_text(self) -> str:
        return (f"{self.metric} not significantly worse than {self.baseline_label} "
                f"by more than {self.margin:g} (α={self.alpha:g})")

    def evaluate(self, results: ScenarioResults) -> GateResult:
        old = item_values(self.baseline_records, self.metric)
        new = item_values(results.records, self.metric)
        shared = sorted(set(old) & set(new))
        ids_old = {r.instance_id for r in self.baseline_records}
        ids_new = {r.instance_id for r in results.records}
        only_old = sorted(ids_old - ids_new)
        only_new = sorted(ids_new - ids_old)
        unscored = sorted((ids_old & ids_new) - set(shared))
        unmatched = _unmatched(only_old, only_new, unscored)
        details: dict[str, Any] = {"shared": len(shared), "only_in_baseline": only_old,
                                   "only_in_candidate": only_new, "unscored_in_one_run": unscored}
        if not shared:
            return _result(self, passed=False, details=details, message=(
                f"{self.scenario}: no instance has a {self.metric} in both the baseline and this "
                f"run, so nothing can be compared{unmatched}"))
        a = [old[k] for k in shared]
        b = [new[k] for k in shared]
        binary = is_binary(self.metric)
        verdict = regression(a, b, binary=binary, higher_is_better=not lower_is_better(self.metric),
                             margin=self.margin, alpha=self.alpha)
        details["test"] = verdict.comparison.to_json()
        details["worse_by"] = verdict.worse_by
        return _result(
            self, passed=not verdict.regressed, value=verdict.worse_by, n=len(shared), details=details,
            message=f"{self.scenario}: {verdict.message}{unmatched}",
        )


def _unmatched(
    only_old: Sequence[str], only_new: Sequence[str], unscored: Sequence[str] = ()
) -> str:
    parts = []
    for label, ids in (("only in the baseline", only_old), ("only in this run", only_new),
                       ("without a score in one of the runs (an error)", unscored)):
        if ids:
            shown = ", ".join(ids[:5]) + (", …" if len(ids) > 5 else "")
            parts.append(f"{len(ids)} {label} ({shown})")
    return ("; not compared: " + "; ".join(parts)) if parts else ""


Gate = ThresholdGate | FairnessGate | RegressionGate
