"""Simulated false-alarm and detection rates of the fairness and regression gates.

Runs the designs of tests/test_gate_statistics.py (where they are asserted on fewer runs)
with more repetitions and prints one table; nothing is asserted here.

    python bench/simulate_gates.py [--runs N] [--seed S]
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
design: Any = importlib.import_module("tests.test_gate_statistics")

ALPHA = design.ALPHA
CHUNK = 500  # runs generated at once, to bound memory on large item sets

Runs = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]


def rates(runs: Runs, total: int, seed: int, judge: Callable[[np.ndarray, np.ndarray], Any]
          ) -> tuple[float, float, float]:
    """(significant, flagged, discordance) rates over total simulated runs."""
    rng = np.random.default_rng(seed)
    significant = flagged = discordant = 0.0
    done = 0
    while done < total:
        a, b = runs(rng, min(CHUNK, total - done))
        for x, y in zip(a, b, strict=True):
            s, f = judge(x, y)
            significant, flagged = significant + s, flagged + f
        discordant += float(np.sum(a != b)) / a.shape[1]
        done += len(a)
    return significant / total, flagged / total, discordant / total


def fairness(x: np.ndarray, y: np.ndarray) -> tuple[bool, bool]:
    fired = design.compare_paired(x, y, binary=False).p_value < ALPHA
    return fired, fired


def regression_judge(binary: bool, higher_is_better: bool, margin: float
                     ) -> Callable[[np.ndarray, np.ndarray], tuple[bool, bool]]:
    def judge(x: np.ndarray, y: np.ndarray) -> tuple[bool, bool]:
        v = design.regression(x, y, binary=binary, higher_is_better=higher_is_better,
                              margin=margin, alpha=ALPHA)
        return v.significant, v.regressed
    return judge


def wer(items: int, gap: float) -> Runs:
    shift = design.wer_shift_for_gap(gap) if gap else 0.0
    return lambda rng, sims: design.wer_runs(rng, sims, items, shift)


def irt(items: int, drop: float, rho: float = 0.0) -> Runs:
    a = design.irt_ability(design.BASELINE_ACCURACY)
    b = design.irt_ability(design.BASELINE_ACCURACY - drop) if drop else a
    return lambda rng, sims: design.irt_runs(rng, sims, items, a, b, rho)


def release(items: int, drop: float) -> Runs:
    a = design.irt_ability(design.BASELINE_ACCURACY)
    return lambda rng, sims: design.release_runs(rng, sims, items, a, drop)


def items_for_power(drop: float, power: float = 0.9, step: int = 50) -> int:
    """Smallest multiple of step items at which the exact McNemar power reaches power."""
    a = design.irt_ability(design.BASELINE_ACCURACY)
    b = design.irt_ability(design.BASELINE_ACCURACY - drop)
    items = step
    while design.mcnemar_regression_rate(items, a, b, ALPHA) < power:
        items += step
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description="Simulated rates of the fairness and regression gates.")
    parser.add_argument("--runs", type=int, default=5000, help="simulated runs per row")
    parser.add_argument("--seed", type=int, default=20250901)
    args = parser.parse_args()
    runs: int = args.runs
    start = time.perf_counter()
    a_irt = design.irt_ability(design.BASELINE_ACCURACY)
    b_irt = design.irt_ability(design.BASELINE_ACCURACY - 0.05)
    n_90 = items_for_power(0.05)
    margin = 0.04
    wer_reg = regression_judge(binary=False, higher_is_better=False, margin=margin)
    mcnemar = regression_judge(binary=True, higher_is_better=True, margin=0.0)

    rows: list[tuple[str, str, int, Runs, Callable[..., Any], str]] = [
        ("fairness: WER, wilcoxon 2-sided", "fair (gap 0)", 100, wer(100, 0.0), fairness,
         f"alpha {ALPHA}"),
        ("fairness: WER, wilcoxon 2-sided", "gap +0.02", 100, wer(100, 0.02), fairness, ""),
        ("fairness: WER, wilcoxon 2-sided", "gap +0.05", 100, wer(100, 0.05), fairness, ""),
        ("fairness: WER, wilcoxon 2-sided", "gap +0.10", 100, wer(100, 0.10), fairness, ">= 0.90"),
        ("regression: accuracy, mcnemar", "identical", 400, irt(400, 0.0), mcnemar,
         f"{design.mcnemar_regression_rate(400, a_irt, a_irt, ALPHA):.4f} exact"),
        ("regression: accuracy, mcnemar", "drop 0.05", 400, irt(400, 0.05), mcnemar,
         f"{design.mcnemar_regression_rate(400, a_irt, b_irt, ALPHA):.4f} exact"),
        ("regression: accuracy, mcnemar", "drop 0.05", n_90, irt(n_90, 0.05), mcnemar,
         f"{design.mcnemar_regression_rate(n_90, a_irt, b_irt, ALPHA):.4f} exact"),
        ("regression: accuracy, mcnemar", "drop 0.05, rho 0.5", 400, irt(400, 0.05, 0.5),
         mcnemar, "correlated runs"),
        ("regression: accuracy, mcnemar", "drop 0.05, rho 0.8", 400, irt(400, 0.05, 0.8),
         mcnemar, "correlated runs"),
        ("regression: accuracy, mcnemar", "release, no drop", 400, release(400, 0.0), mcnemar,
         f"churn {design.RELEASE_CHURN:.0%}"),
        ("regression: accuracy, mcnemar", "release, drop 0.05", 400, release(400, 0.05),
         mcnemar, f"churn {design.RELEASE_CHURN:.0%}"),
        ("regression: WER, wilcoxon, m 0.04", "identical", 400, wer(400, 0.0), wer_reg,
         f"alpha {ALPHA}"),
        ("regression: WER, wilcoxon, m 0.04", "worse +0.01", 400, wer(400, 0.01), wer_reg,
         "regressed 0"),
        ("regression: WER, wilcoxon, m 0.04", "worse +0.04", 400, wer(400, 0.04), wer_reg, ""),
        ("regression: WER, wilcoxon, m 0.04", "worse +0.06", 400, wer(400, 0.06), wer_reg, ""),
    ]
    header = (f"{'gate':<35} {'truth':<19} {'items':>5} {'runs':>5} {'signif.':>8} "
              f"{'flagged':>8} {'± mc se':>7} {'discord.':>8}  reference")
    print(header)
    print("-" * len(header))
    for i, (gate, truth, items, runs_of, judge, reference) in enumerate(rows):
        significant, flagged, discordance = rates(runs_of, runs, args.seed + i, judge)
        se = np.sqrt(max(flagged * (1 - flagged), 1e-12) / runs)
        print(f"{gate:<35} {truth:<19} {items:>5} {runs:>5} {significant:>8.4f} {flagged:>8.4f} "
              f"{se:>7.4f} {discordance:>8.3f}  {reference}")
    print(f"\nflagged = fairness alarm, or regressed (significant one-sided and worse by more than "
          f"the margin); alpha {ALPHA}.")
    print(f"McNemar, independent draws: {n_90} items are needed for 90% power on a 5-point drop "
          f"from {design.BASELINE_ACCURACY:.2f}.")
    print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
