"""Translation scoring with sacrebleu: corpus BLEU from summed sufficient statistics, and chrF.

Each instance keeps BLEU's sufficient statistics (matched and total n-grams for n = 1..4 and the
hypothesis and reference lengths), so the scenario's BLEU is sacrebleu's corpus BLEU exactly,
and a bootstrap over instances is cheap. chrF is kept the same way (sacrebleu's character and
word n-gram statistics), so corpus chrF is exact too.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Sequence

import numpy as np

from ahelm.scoring.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, CONFIDENCE, Metric


@cache
def _metrics() -> tuple[Any, Any, Any]:
    """sacrebleu's sentence BLEU, corpus BLEU and chrF, built on first use (sacrebleu costs
    every pytest process 30 ms to import, before its first request otherwise). compute_bleu is
    static: corpus BLEU's default smoothing ("exp") must be passed to it explicitly."""
    from sacrebleu.metrics.bleu import BLEU
    from sacrebleu.metrics.chrf import CHRF

    return BLEU(effective_order=True), BLEU(), CHRF()

BLEU_KEYS = [f"bleu_match_{n}" for n in range(1, 5)] + [f"bleu_total_{n}" for n in range(1, 5)] + [
    "bleu_sys_len", "bleu_ref_len"]


def sentence_scores(reference: str, hypothesis: str) -> dict[str, float]:
    """Sentence BLEU and chrF (0-100) plus the statistics corpus scores are made from."""
    sentence_bleu, _, chrf = _metrics()
    bleu = sentence_bleu.sentence_score(hypothesis, [reference])
    chrf_stats = chrf._extract_corpus_statistics([hypothesis], [[reference]])[0]
    scores: dict[str, float] = {
        "bleu": float(bleu.score),
        "chrf": float(chrf.sentence_score(hypothesis, [reference]).score),
    }
    for n in range(4):
        scores[f"bleu_match_{n + 1}"] = float(bleu.counts[n])
        scores[f"bleu_total_{n + 1}"] = float(bleu.totals[n])
    scores["bleu_sys_len"] = float(bleu.sys_len)
    scores["bleu_ref_len"] = float(bleu.ref_len)
    for index, value in enumerate(chrf_stats):
        scores[f"chrf_stat_{index}"] = float(value)
    return scores


def _corpus_bleu(stats: np.ndarray) -> float:
    total = stats.sum(axis=0)
    return float(_metrics()[1].compute_bleu(
        correct=[int(v) for v in total[0:4]], total=[int(v) for v in total[4:8]],
        sys_len=int(total[8]), ref_len=int(total[9]), smooth_method="exp",
    ).score)


def _corpus_chrf(stats: np.ndarray) -> float:
    total = stats.sum(axis=0)
    return float(_metrics()[2]._compute_score_from_stats([int(v) for v in total]).score)


def corpus_metric(rows: Sequence[dict[str, float]], which: str) -> Metric:
    """Corpus ``bleu`` or ``chrf`` over the instances' statistics, with a seeded bootstrap CI."""
    if which == "bleu":
        keys, compute = BLEU_KEYS, _corpus_bleu
    else:
        width = sum(1 for key in (rows[0] if rows else {}) if key.startswith("chrf_stat_"))
        keys, compute = [f"chrf_stat_{i}" for i in range(width)], _corpus_chrf
    if not rows:
        return Metric(float("nan"), float("nan"), float("nan"), 0, False, "corpus")
    stats = np.array([[row[key] for key in keys] for row in rows], dtype=float)
    value = compute(stats)
    if len(rows) < 2:
        return Metric(value, value, value, len(rows), False, "corpus")
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    resamples = min(BOOTSTRAP_RESAMPLES, 1000)
    draws = [compute(stats[rng.integers(0, len(rows), len(rows))]) for _ in range(resamples)]
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Metric(value, float(low), float(high), len(rows), False, "corpus, bootstrap")
