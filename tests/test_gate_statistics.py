"""Unit tests of the two-group comparisons, and simulations that check the gates built on them.

The simulations know the truth, so they measure what a release gate promises: how often a
fair model or an unchanged candidate is flagged (false alarms, should be about alpha) and how
often a real gap is caught (power). The designs live here so that bench/simulate_gates.py
runs exactly the same ones with more repetitions.
"""

from __future__ import annotations

import json
import math
import re
from typing import Callable, Sequence

import numpy as np
import pytest
from scipy import optimize, special, stats

from ahelm.gates.statistics import Comparison, compare_paired, compare_unpaired, regression

ALPHA = 0.05

# -- simulation designs ---------------------------------------------------------------------------

# Sentence-level WER: an item difficulty shared by both runs or groups, a group shift and
# per-run noise on a latent scale, clipped to [0, 1] and rounded to whole words (5-25 per
# sentence). About 57% of sentences come out perfect, the mean WER is about 0.10 and the
# 90th percentile 0.33, like a decent ASR system on read speech.
WER_ITEM_SD = 0.20
WER_NOISE_SD = 0.15
WER_WORDS = np.arange(5, 26)

# Correctness: a Rasch (1PL IRT) model, P(correct) = sigmoid(ability - difficulty), with
# difficulties ~ N(0, 1.5^2) on the logit scale, redrawn for every simulated benchmark,
# and independent draws for the two runs given the item.
IRT_DIFFICULTY_SD = 1.5
BASELINE_ACCURACY = 0.75


def wer_runs(
    rng: np.random.Generator, sims: int, items: int, shift: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-item WER of two runs (sims x items each); the second one's latent is shifted."""
    words = rng.choice(WER_WORDS, size=(sims, items))
    difficulty = rng.normal(0.0, WER_ITEM_SD, size=(sims, items))
    runs = []
    for offset in (0.0, shift):
        latent = difficulty + offset + rng.normal(0.0, WER_NOISE_SD, size=(sims, items))
        runs.append(np.round(np.clip(latent, 0.0, 1.0) * words) / words)
    return runs[0], runs[1]


def expected_wer(shift: float) -> float:
    """Exact mean WER of one run: the latent is N(shift, item^2 + noise^2), then rounded."""
    scale = math.hypot(WER_ITEM_SD, WER_NOISE_SD)
    total = 0.0
    for w in WER_WORDS:
        k = np.arange(1, w + 1)
        upper = np.where(k == w, np.inf, (k + 0.5) / w)
        mass = stats.norm.cdf(upper, shift, scale) - stats.norm.cdf((k - 0.5) / w, shift, scale)
        total += float(np.sum(k / w * mass))
    return total / len(WER_WORDS)


def wer_shift_for_gap(gap: float) -> float:
    """The latent shift that moves the mean WER up by exactly gap."""
    base = expected_wer(0.0)
    return float(optimize.brentq(lambda s: expected_wer(s) - base - gap, 0.0, 1.0, xtol=1e-9))


def irt_accuracy(ability: float) -> float:
    return float(
        stats.norm.expect(lambda d: special.expit(ability - d), scale=IRT_DIFFICULTY_SD)
    )


def irt_ability(accuracy: float) -> float:
    """The ability whose expected accuracy over the difficulty distribution is accuracy."""
    return float(optimize.brentq(lambda t: irt_accuracy(t) - accuracy, -10.0, 10.0, xtol=1e-10))


def irt_runs(
    rng: np.random.Generator, sims: int, items: int, ability_a: float, ability_b: float,
    rho: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """0/1 correctness of two runs on the same items; rho > 0 correlates the runs' draws."""
    difficulty = rng.normal(0.0, IRT_DIFFICULTY_SD, size=(sims, items))
    z_a = rng.standard_normal((sims, items))
    z_b = rho * z_a + math.sqrt(1.0 - rho**2) * rng.standard_normal((sims, items))
    # A Gaussian copula: each run keeps its own P(correct) per item whatever rho is.
    a = stats.norm.cdf(z_a) < special.expit(ability_a - difficulty)
    b = stats.norm.cdf(z_b) < special.expit(ability_b - difficulty)
    return a.astype(float), b.astype(float)


RELEASE_CHURN = 0.10
"""Share of items whose answer a new release re-decides (models are deterministic at
temperature 0, so two releases agree on most items)."""


def release_runs(
    rng: np.random.Generator, sims: int, items: int, ability: float, drop: float,
    churn: float = RELEASE_CHURN,
) -> tuple[np.ndarray, np.ndarray]:
    """A baseline and its next release on the same items.

    The release keeps the baseline's answer except on a ``churn`` share of items, which it
    answers afresh with the same ability; then it loses ``drop`` of accuracy by getting some
    previously right items wrong. Expected accuracies: baseline p, release p - drop.
    """
    difficulty = rng.normal(0.0, IRT_DIFFICULTY_SD, size=(sims, items))
    p_correct = special.expit(ability - difficulty)
    a = rng.random((sims, items)) < p_correct
    redraw = rng.random((sims, items)) < churn
    b = np.where(redraw, rng.random((sims, items)) < p_correct, a)
    lose = rng.random((sims, items)) < drop / BASELINE_ACCURACY
    b = b & ~lose
    return a.astype(float), b.astype(float)


def irt_discordance(ability_a: float, ability_b: float) -> tuple[float, float]:
    """P(only a correct) and P(only b correct) on one item, independent draws."""

    def cell(x: float, y: float) -> float:
        return float(stats.norm.expect(
            lambda d: special.expit(x - d) * special.expit(d - y), scale=IRT_DIFFICULTY_SD
        ))

    return cell(ability_a, ability_b), cell(ability_b, ability_a)


def mcnemar_regression_rate(items: int, ability_a: float, ability_b: float, alpha: float) -> float:
    """Exact P(the one-sided McNemar test flags b as worse) under the IRT design.

    With difficulties redrawn per benchmark the items are i.i.d., so the discordant count K
    is Binomial(items, P(discordant)) and the b-only count given K is Binomial(K, q).
    """
    only_a, only_b = irt_discordance(ability_a, ability_b)
    k_total = np.arange(1, items + 1)[:, None]
    k_b = np.arange(items + 1)[None, :]
    rejects = (k_b <= k_total) & (stats.binom.cdf(k_b, k_total, 0.5) < alpha)
    given_k = np.where(rejects, stats.binom.pmf(k_b, k_total, only_b / (only_a + only_b)), 0.0)
    weights = stats.binom.pmf(k_total[:, 0], items, only_a + only_b)
    return float(np.sum(weights * given_k.sum(axis=1)))


def rate_band(rate: float, sims: int, confidence: float = 0.999) -> tuple[float, float]:
    """Where an observed rate out of sims runs falls if the true rate is rate."""
    low, high = stats.binom.interval(confidence, sims, rate)
    return float(low) / sims, float(high) / sims


def fairness_alarms(a: np.ndarray, b: np.ndarray, alpha: float) -> float:
    """Share of simulated item sets where the two-sided paired fairness test fires."""
    return float(np.mean([
        compare_paired(x, y, binary=False).p_value < alpha for x, y in zip(a, b, strict=True)
    ]))


def regressions(
    a: np.ndarray, b: np.ndarray, *, binary: bool, higher_is_better: bool, margin: float,
    alpha: float,
) -> tuple[float, float]:
    """Shares of simulated runs judged (significantly worse, regressed)."""
    verdicts = [
        regression(x, y, binary=binary, higher_is_better=higher_is_better, margin=margin,
                   alpha=alpha)
        for x, y in zip(a, b, strict=True)
    ]
    return (float(np.mean([v.significant for v in verdicts])),
            float(np.mean([v.regressed for v in verdicts])))


# -- unit checks against scipy ----------------------------------------------------------------------

A = [0.10, 0.00, 0.25, 0.40, 0.00, 0.05, 0.30, 0.12,
     0.00, 0.20, 0.33, 0.07, 0.00, 0.18, 0.09, 0.45]
B = [0.15, 0.00, 0.20, 0.55, 0.10, 0.05, 0.42, 0.30,
     0.00, 0.26, 0.50, 0.11, 0.04, 0.22, 0.09, 0.50]
HITS_A = [1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1]
HITS_B = [1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 1]


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_wilcoxon_matches_scipy(alternative: str) -> None:
    c = compare_paired(A, B, binary=False, alternative=alternative)
    d = np.subtract(B, A)
    expected = stats.wilcoxon(d, zero_method="pratt", alternative=alternative).pvalue
    assert c.test == "wilcoxon signed-rank" and c.paired and c.n_a == c.n_b == 16
    assert c.p_value == pytest.approx(expected)
    assert c.gap == pytest.approx(np.mean(B) - np.mean(A))
    assert c.alternative == alternative


def test_matched_pairs_rank_biserial() -> None:
    # |d| ranks 1..4; R+ = 1 + 3 + 4, R- = 2, so r = (8 - 2) / 10.
    c = compare_paired([0, 0, 0, 0], [1, -2, 3, 4], binary=False)
    assert c.effect_size == pytest.approx(0.6)
    assert compare_paired([0, 0, 0], [1, 2, 3], binary=False).effect_size == pytest.approx(1.0)
    assert compare_paired([1, 2, 3], [0, 0, 0], binary=False).effect_size == pytest.approx(-1.0)
    # A zero difference takes rank 1 and counts for neither side: (3 + 4 - 2) / 10.
    c = compare_paired([0, 0, 0, 0], [0, -1, 2, 3], binary=False)
    assert c.effect_size == pytest.approx(0.5)


def test_wilcoxon_all_zero_differences() -> None:
    c = compare_paired([0.0] * 30, [0.0] * 30, binary=False)
    assert (c.p_value, c.effect_size, c.gap) == (1.0, 0.0, 0.0)
    same = compare_paired(A, A, binary=False, alternative="greater")
    assert (same.p_value, same.effect_size) == (1.0, 0.0)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_mcnemar_matches_binomial_test(alternative: str) -> None:
    c = compare_paired(HITS_A, HITS_B, binary=True, alternative=alternative)
    only_a = sum(x == 1 and y == 0 for x, y in zip(HITS_A, HITS_B, strict=True))
    only_b = sum(x == 0 and y == 1 for x, y in zip(HITS_A, HITS_B, strict=True))
    assert (only_a, only_b) == (5, 0)
    expected = stats.binomtest(only_b, only_a + only_b, 0.5, alternative=alternative).pvalue
    assert c.test == "mcnemar exact" and c.p_value == pytest.approx(expected)
    assert c.effect_size == pytest.approx(0.5 / 5.5)  # 0.5 added to both when a count is 0
    assert (c.mean_a, c.mean_b) == pytest.approx((11 / 16, 6 / 16))


def test_mcnemar_odds_ratio_and_no_discordant_pairs() -> None:
    a = [1] * 3 + [0] * 10 + [1] * 7
    b = [0] * 3 + [1] * 10 + [1] * 7
    assert compare_paired(a, b, binary=True).effect_size == pytest.approx(10 / 3)
    c = compare_paired(HITS_A, HITS_A, binary=True)
    assert (c.p_value, c.effect_size, c.gap) == (1.0, 1.0, 0.0)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_mann_whitney_matches_scipy(alternative: str) -> None:
    a, b = A[:9], B
    c = compare_unpaired(a, b, binary=False, alternative=alternative)
    expected = stats.mannwhitneyu(b, a, alternative=alternative)
    assert c.test == "mann-whitney u" and not c.paired and (c.n_a, c.n_b) == (9, 16)
    assert c.p_value == pytest.approx(expected.pvalue)
    assert c.effect_size == pytest.approx(2 * expected.statistic / (9 * 16) - 1)


def test_rank_biserial_sign_and_ties() -> None:
    assert compare_unpaired([1, 2], [3, 4], binary=False).effect_size == 1.0
    assert compare_unpaired([3, 4], [1, 2], binary=False).effect_size == -1.0
    assert compare_unpaired([1, 2], [3, 0], binary=False).effect_size == 0.0
    c = compare_unpaired([0.2] * 5, [0.2] * 7, binary=False)
    assert (c.p_value, c.effect_size) == (1.0, 0.0)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_fisher_matches_scipy(alternative: str) -> None:
    c = compare_unpaired(HITS_A, HITS_B[:12], binary=True, alternative=alternative)
    table = [[4, 8], [11, 5]]  # rows b then a: hits, misses
    assert c.test == "fisher exact" and (c.n_a, c.n_b) == (16, 12)
    assert c.p_value == pytest.approx(stats.fisher_exact(table, alternative=alternative).pvalue)
    assert c.effect_size == pytest.approx(4 * 5 / (8 * 11))


def test_fisher_odds_ratio_stays_finite() -> None:
    c = compare_unpaired([0, 0, 0, 1], [1, 1, 1, 1], binary=True)
    assert c.effect_size == pytest.approx((4.5 * 3.5) / (0.5 * 1.5))
    same = compare_unpaired([0, 1, 1], [0, 1, 1], binary=True)
    assert same.p_value == pytest.approx(1.0) and same.effect_size == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("paired", "binary", "low", "high"),
    [
        (True, False, [0.1 * i for i in range(20)], [0.1 * i + 0.3 for i in range(20)]),
        (True, True, [0] * 15 + [1] * 5, [1] * 15 + [1] * 5),
        (False, False, [0.1 * i for i in range(20)], [0.1 * i + 0.8 for i in range(20)]),
        (False, True, [0] * 15 + [1] * 5, [1] * 18 + [0] * 2),
    ],
    ids=["wilcoxon", "mcnemar", "mann-whitney", "fisher"],
)
def test_one_sided_alternatives_point_the_right_way(
    paired: bool, binary: bool, low: Sequence[float], high: Sequence[float]
) -> None:
    compare = compare_paired if paired else compare_unpaired
    up = compare(low, high, binary=binary, alternative="greater")  # b larger: b > a holds
    assert up.p_value < 0.001 and up.gap > 0 and up.effect_size > (1.0 if binary else 0.0)
    assert compare(low, high, binary=binary, alternative="less").p_value > 0.99
    down = compare(high, low, binary=binary, alternative="less")
    assert down.p_value < 0.001 and down.gap < 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: compare_paired([0.1, 0.2], [0.1], binary=False), "equal lengths"),
        (lambda: compare_paired([], [], binary=False), "empty"),
        (lambda: compare_unpaired([0.1], [], binary=False), "group b is empty"),
        (lambda: compare_paired([0, 1, 2], [0, 1, 1], binary=True), "other than 0 and 1"),
        (lambda: compare_unpaired([0, 1], [0.5, 1], binary=True), r"\[0.5\]"),
        (lambda: compare_paired([0.1, math.nan], [0.1, 0.2], binary=False), "NaN"),
        (lambda: compare_paired([0.1], [0.2], binary=False, alternative="up"), "alternative"),
        (lambda: regression([1], [0], binary=True, higher_is_better=True, margin=0, alpha=0),
         "alpha"),
        (lambda: regression([1], [0], binary=True, higher_is_better=True, margin=-1, alpha=0.05),
         "margin"),
    ],
)
def test_invalid_input_is_rejected(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_to_json_has_no_nan_and_describe_is_one_line() -> None:
    comparisons: list[Comparison] = [
        compare_paired(A, B, binary=False),
        compare_paired([0.0] * 3, [0.0] * 3, binary=False),
        compare_paired(HITS_A, HITS_B, binary=True),
        compare_unpaired(A, B, binary=False),
        compare_unpaired([1, 1], [1, 1], binary=True),
        compare_unpaired([0.5], [0.5], binary=False),
    ]
    for c in comparisons:
        text = json.dumps(c.to_json(), allow_nan=False)
        assert "NaN" not in text and "Infinity" not in text
        assert re.fullmatch(
            r"[a-z -]+ on \d+ (pairs|vs \d+ items): gap [+-]\d\.\d{3}, p = [\d.e+-]+"
            r"( \((greater|less)\))?, [a-z ()-]+ -?\d+\.\d\d",
            c.describe(),
        ), c.describe()
    assert compare_paired(A, B, binary=False).describe().startswith(
        "wilcoxon signed-rank on 16 pairs: gap +0.059, p = "
    )
    verdict = regression(A, B, binary=False, higher_is_better=False, margin=0.01, alpha=0.05)
    json.dumps(verdict.to_json(), allow_nan=False)


# -- regression verdicts ---------------------------------------------------------------------------


def test_regression_direction_and_message() -> None:
    wer = regression(A, B, binary=False, higher_is_better=False, margin=0.02, alpha=0.05)
    assert wer.comparison.alternative == "greater"  # a higher WER is worse
    assert wer.worse_by == pytest.approx(np.mean(B) - np.mean(A))
    assert wer.significant and wer.regressed
    assert "REGRESSED" in wer.message and "wilcoxon signed-rank" in wer.message
    assert f"{wer.worse_by:+.4f}" in wer.message and "margin 0.02" in wer.message

    better = regression(B, A, binary=False, higher_is_better=False, margin=0.0, alpha=0.05)
    assert better.worse_by < 0 and not better.significant and not better.regressed

    acc = regression(HITS_A, HITS_B, binary=True, higher_is_better=True, margin=0.0, alpha=0.05)
    assert acc.comparison.alternative == "less" and acc.worse_by == pytest.approx(5 / 16)
    assert acc.comparison.p_value == pytest.approx(0.5**5) and acc.regressed


def test_large_but_not_significant_gap_never_regresses() -> None:
    verdict = regression([0.0, 0.0], [1.0, 1.0], binary=False, higher_is_better=False,
                         margin=0.0, alpha=0.05)
    assert verdict.worse_by == 1.0 and not verdict.significant and not verdict.regressed
    assert "no significant regression" in verdict.message


def test_significant_gap_within_margin_is_tolerated() -> None:
    verdict = regression(A, B, binary=False, higher_is_better=False, margin=0.1, alpha=0.05)
    assert verdict.significant and not verdict.regressed
    assert "within the margin" in verdict.message


# -- simulations with a known truth ------------------------------------------------------------------


def test_wer_design_looks_like_sentence_level_wer() -> None:
    a, b = wer_runs(np.random.default_rng(1), 1, 50_000, 0.0)
    assert 0.5 < np.mean(a == 0) < 0.65 and 0.08 < a.mean() < 0.12
    assert a.mean() == pytest.approx(expected_wer(0.0), abs=0.003)
    shift = wer_shift_for_gap(0.10)
    a, b = wer_runs(np.random.default_rng(2), 1, 50_000, shift)
    assert (b - a).mean() == pytest.approx(0.10, abs=0.003)


def test_fairness_gate_false_alarms_at_alpha_for_a_fair_model() -> None:
    sims = 4000
    a, b = wer_runs(np.random.default_rng(11), sims, 100, 0.0)
    low, high = rate_band(ALPHA, sims)
    assert low <= fairness_alarms(a, b, ALPHA) <= high


def test_fairness_gate_detects_a_ten_point_wer_gap() -> None:
    a, b = wer_runs(np.random.default_rng(12), 500, 100, wer_shift_for_gap(0.10))
    assert fairness_alarms(a, b, ALPHA) >= 0.90


def test_mcnemar_regression_false_alarms_for_identical_models() -> None:
    # The exact test is conservative (discrete binomial), so the false-alarm rate sits a
    # little under alpha; it is checked against its exact value, which must not exceed alpha.
    sims, items = 2000, 400
    ability = irt_ability(BASELINE_ACCURACY)
    expected = mcnemar_regression_rate(items, ability, ability, ALPHA)
    assert 0.7 * ALPHA < expected <= ALPHA
    a, b = irt_runs(np.random.default_rng(21), sims, items, ability, ability)
    significant, regressed = regressions(a, b, binary=True, higher_is_better=True, margin=0.0,
                                         alpha=ALPHA)
    low, high = rate_band(expected, sims)
    assert low <= regressed == significant <= high
    assert regressed <= rate_band(ALPHA, sims)[1]


@pytest.mark.parametrize(("items", "sims", "seed"), [(400, 1000, 22), (1200, 500, 23)])
def test_mcnemar_regression_power_for_a_five_point_drop(items: int, sims: int, seed: int) -> None:
    # Power is set by the discordant pairs: K ~ n * P(discordant) of them, of which the
    # candidate-only share is q < 1/2, and the test sees a z of about (n * drop) / sqrt(K).
    # Independent draws on this design make 29% of pairs discordant, so at 400 items the
    # drop is caught only about 54% of the time. Power 0.9 needs about 1050 items (exact
    # power 0.903); 1200 items (0.934) leave room for simulation noise.
    ability_a = irt_ability(BASELINE_ACCURACY)
    ability_b = irt_ability(BASELINE_ACCURACY - 0.05)
    only_a, only_b = irt_discordance(ability_a, ability_b)
    assert only_a - only_b == pytest.approx(0.05)
    expected = mcnemar_regression_rate(items, ability_a, ability_b, ALPHA)
    a, b = irt_runs(np.random.default_rng(seed), sims, items, ability_a, ability_b)
    _, regressed = regressions(a, b, binary=True, higher_is_better=True, margin=0.0, alpha=ALPHA)
    low, high = rate_band(expected, sims)
    assert low <= regressed <= high
    if items == 400:
        assert 0.45 < expected < 0.65  # underpowered: see the comment above
    else:
        assert expected > 0.90 and regressed >= 0.90


def test_mcnemar_regression_on_a_release_that_changes_few_answers() -> None:
    # The realistic case for deterministic models: the next release re-decides 10% of the
    # items. Discordance falls to about 8%, and a 5-point drop on 400 items is caught nearly
    # always; with no drop, false alarms stay at or below alpha.
    sims, items = 1000, 400
    ability = irt_ability(BASELINE_ACCURACY)
    a, b = release_runs(np.random.default_rng(24), sims, items, ability, 0.05)
    assert np.mean(a) - np.mean(b) == pytest.approx(0.05, abs=0.005)
    assert np.mean(a != b) < 0.12
    _, regressed = regressions(a, b, binary=True, higher_is_better=True, margin=0.0, alpha=ALPHA)
    assert regressed >= 0.90
    a, b = release_runs(np.random.default_rng(25), sims, items, ability, 0.0)
    _, regressed = regressions(a, b, binary=True, higher_is_better=True, margin=0.0, alpha=ALPHA)
    assert regressed <= rate_band(ALPHA, sims)[1]


def test_wilcoxon_regression_false_alarms_for_identical_runs() -> None:
    sims = 4000
    a, b = wer_runs(np.random.default_rng(31), sims, 400, 0.0)
    significant, regressed = regressions(a, b, binary=False, higher_is_better=False,
                                         margin=0.0, alpha=ALPHA)
    low, high = rate_band(ALPHA, sims)
    assert low <= significant <= high
    assert regressed <= significant


def test_wilcoxon_regression_margin() -> None:
    # A 1-point WER degradation is often significant on 400 items but under the 4-point
    # margin, so it never regresses; a 6-point one does, nearly always.
    sims, items, margin = 500, 400, 0.04
    a, b = wer_runs(np.random.default_rng(32), sims, items, wer_shift_for_gap(0.01))
    significant, regressed = regressions(a, b, binary=False, higher_is_better=False,
                                         margin=margin, alpha=ALPHA)
    assert significant > 0.3 and regressed == 0.0
    a, b = wer_runs(np.random.default_rng(33), sims, items, wer_shift_for_gap(0.06))
    assert regressions(a, b, binary=False, higher_is_better=False, margin=margin,
                       alpha=ALPHA)[1] >= 0.95
