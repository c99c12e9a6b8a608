"""Comparing two groups of per-item values: is the gap between them more than noise?

Fairness gates compare one model across two groups of items; regression gates compare two
runs on the same items. Per-item values are skewed, tied and often exactly zero (sentence
WER) or binary (correctness), so every comparison is a rank or exact test from scipy:

- paired, continuous: Wilcoxon signed-rank on b - a;
- paired, binary: McNemar's exact test (a binomial test on the discordant pairs);
- unpaired, continuous: Mann-Whitney U;
- unpaired, binary: Fisher's exact test.

"a" is the reference (baseline) group and "b" the other; a positive gap or effect means b
is larger, and alternative="greater" tests b > a.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ahelm.scoring.stats import finite_or_none, scipy_stats

ALTERNATIVES = ("two-sided", "greater", "less")


@dataclass(frozen=True)
class Comparison:
    """One test of group b against group a, with its effect size."""

    test: str
    paired: bool
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    gap: float
    p_value: float
    alternative: str
    effect_size: float
    effect_name: str

    def to_json(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "paired": self.paired,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "mean_a": finite_or_none(self.mean_a),
            "mean_b": finite_or_none(self.mean_b),
            "gap": finite_or_none(self.gap),
            "p_value": finite_or_none(self.p_value),
            "alternative": self.alternative,
            "effect_size": finite_or_none(self.effect_size),
            "effect_name": self.effect_name,
        }

    def describe(self) -> str:
        items = f"{self.n_a} pairs" if self.paired else f"{self.n_a} vs {self.n_b} items"
        sided = "" if self.alternative == "two-sided" else f" ({self.alternative})"
        return (
            f"{self.test} on {items}: gap {self.gap:+.3f}, p = {self.p_value:.2g}{sided}, "
            f"{self.effect_name} {self.effect_size:.2f}"
        )


@dataclass(frozen=True)
class RegressionVerdict:
    """Whether a candidate run is significantly, and by more than a margin, worse."""

    comparison: Comparison
    worse_by: float
    significant: bool
    regressed: bool
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "comparison": self.comparison.to_json(),
            "worse_by": finite_or_none(self.worse_by),
            "significant": self.significant,
            "regressed": self.regressed,
            "message": self.message,
        }



def _values(name: str, values: Sequence[float], binary: bool) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"group {name} must be a flat sequence of per-item values")
    if len(array) == 0:
        raise ValueError(f"group {name} is empty: a comparison needs at least one item per group")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"group {name} has NaN or infinite values")
    if binary and not np.all((array == 0) | (array == 1)):
        bad = sorted({float(v) for v in array if v not in (0, 1)})[:5]
        raise ValueError(f"group {name} is binary but has values other than 0 and 1: {bad}")
    return array


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, not {alternative!r}")


def _odds_ratio(hits_b: float, misses_b: float, hits_a: float, misses_a: float) -> float:
    """(hits_b / misses_b) / (hits_a / misses_a), with 0.5 added to every count if one is 0.

    The Haldane-Anscombe correction keeps the ratio finite (and JSON-writable) when a count
    is 0; with no zero count it is the plain sample odds ratio.
    """
    counts = np.array([hits_b, misses_b, hits_a, misses_a], dtype=float)
    if np.any(counts == 0):
        counts += 0.5
    return float(counts[0] * counts[3] / (counts[1] * counts[2]))


def compare_paired(
    a: Sequence[float], b: Sequence[float], *, binary: bool, alternative: str = "two-sided"
) -> Comparison:
    """Compare b with a item by item (a[i] and b[i] are the same item)."""
    _check_alternative(alternative)
    x, y = _values("a", a, binary), _values("b", b, binary)
    if len(x) != len(y):
        raise ValueError(f"paired groups must have equal lengths, got {len(x)} and {len(y)}")
    n, mean_a, mean_b = len(x), float(x.mean()), float(y.mean())

    if binary:
        # McNemar's exact test: under H0 a discordant pair is equally likely either way round,
        # so the count of pairs only b got right is Binomial(discordant, 1/2).
        only_b = int(np.sum((y == 1) & (x == 0)))
        only_a = int(np.sum((x == 1) & (y == 0)))
        discordant = only_a + only_b
        p = (
            1.0
            if discordant == 0
            else float(scipy_stats().binomtest(only_b, discordant, 0.5, alternative=alternative).pvalue)
        )
        # The conditional odds ratio b-only / a-only, with 0.5 added to both when one is 0
        # so it stays finite (no discordant pairs gives 1).
        half = 0.5 if 0 in (only_a, only_b) else 0.0
        effect = (only_b + half) / (only_a + half)
        return Comparison(
            "mcnemar exact", True, n, n, mean_a, mean_b, mean_b - mean_a, p, alternative,
            effect, "odds ratio (discordant pairs)",
        )

    d = y - x
    if np.all(d == 0):
        p, effect = 1.0, 0.0
    else:
        # Pratt's zero method ranks the zero differences with the others and then drops
        # them, and scipy corrects the normal approximation for them: it keeps the size
        # right when half the pairs tie at WER 0, where "zsplit" overstates the variance
        # (conservative) and "wilcox" re-ranks as if the ties did not exist.
        p = float(scipy_stats().wilcoxon(d, zero_method="pratt", alternative=alternative).pvalue)
        # Matched-pairs rank-biserial: (R+ - R-) over the rank sum of all n pairs, ranking
        # |d| with the zeros (as in the test). Without zeros this is the textbook r; pairs
        # that tie pull it toward 0 instead of being ignored.
        ranks = scipy_stats().rankdata(np.abs(d))
        effect = float((ranks[d > 0].sum() - ranks[d < 0].sum()) / (n * (n + 1) / 2))
    return Comparison(
        "wilcoxon signed-rank", True, n, n, mean_a, mean_b, mean_b - mean_a, p, alternative,
        effect, "matched-pairs rank-biserial",
    )


def compare_unpaired(
    a: Sequence[float], b: Sequence[float], *, binary: bool, alternative: str = "two-sided"
) -> Comparison:
    """Compare b with a when the two groups hold different items."""
    _check_alternative(alternative)
    x, y = _values("a", a, binary), _values("b", b, binary)
    n_a, n_b, mean_a, mean_b = len(x), len(y), float(x.mean()), float(y.mean())

    if binary:
        hits_a, hits_b = float(x.sum()), float(y.sum())
        table = np.array([[hits_b, n_b - hits_b], [hits_a, n_a - hits_a]], dtype=np.int64)
        # Rows b then a, so an odds ratio above 1 (alternative "greater") means b is larger.
        p = float(scipy_stats().fisher_exact(table, alternative=alternative).pvalue)
        effect = _odds_ratio(hits_b, n_b - hits_b, hits_a, n_a - hits_a)
        return Comparison(
            "fisher exact", False, n_a, n_b, mean_a, mean_b, mean_b - mean_a, p, alternative,
            effect, "odds ratio",
        )

    if np.all(np.concatenate([x, y]) == x[0]):
        p, effect = 1.0, 0.0  # every value ties: no evidence either way (scipy gives NaN)
    else:
        result = scipy_stats().mannwhitneyu(y, x, alternative=alternative)
        p = float(result.pvalue)
        # U counts the (b, a) pairs where b is larger (ties count 1/2); r = P(b>a) - P(b<a).
        effect = float(2 * result.statistic / (n_a * n_b) - 1)
    return Comparison(
        "mann-whitney u", False, n_a, n_b, mean_a, mean_b, mean_b - mean_a, p, alternative,
        effect, "rank-biserial",
    )


def regression(
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    binary: bool,
    higher_is_better: bool,
    margin: float,
    alpha: float,
) -> RegressionVerdict:
    """Has the candidate run got worse than the baseline on the same items?

    It regresses only if a one-sided paired test says it is worse (p < alpha) and its mean
    is worse by more than margin (in the metric's units): a gap that is not significant
    never regresses, however large, and a significant one within the margin is tolerated.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if not margin >= 0:
        raise ValueError(f"margin must be zero or positive, got {margin}")
    worse = "less" if higher_is_better else "greater"
    comparison = compare_paired(baseline, candidate, binary=binary, alternative=worse)
    worse_by = -comparison.gap if higher_is_better else comparison.gap
    significant = comparison.p_value < alpha
    regressed = significant and worse_by > margin
    if regressed:
        verdict = "REGRESSED"
    elif significant:
        verdict = "worse but within the margin"
    else:
        verdict = "no significant regression"
    message = (
        f"{verdict}: candidate worse by {worse_by:+.4f} (margin {margin:g}, "
        f"{'higher' if higher_is_better else 'lower'} is better; {comparison.mean_a:.4f} -> "
        f"{comparison.mean_b:.4f}); {comparison.describe()}, alpha {alpha:g}"
    )
    return RegressionVerdict(comparison, worse_by, significant, regressed, message)
