"""Unit tests of transcript normalisation, WER/CER scoring and the scenario-level statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ahelm.scoring.asr import normalise, score_transcript
from ahelm.scoring.stats import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    Metric,
    proportion,
    ratio_of_sums,
)

# -- normalise ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello World", "hello world"),
        ("THE Cat", "the cat"),
        ("Hello, world! How are you?", "hello world how are you"),
        ("don't stop.", "dont stop"),
        ("well-known", "well known"),
        ("rock-n-roll", "rock n roll"),
        ("x - y", "x y"),
        ("  leading and   trailing  ", "leading and trailing"),
        ("a\u00a0b", "a b"),  # NFKC turns the no-break space into a space
        ("\ufb01ne", "fine"),  # the "fi" ligature
        ("\uff34\uff45\uff53\uff54", "test"),  # full-width letters
        ("caf\u0065\u0301", "caf\u00e9"),  # combining accent composed
        ("...", ""),
        ("", ""),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_punctuation_is_removed_exactly_as_jiwer_removes_it() -> None:
    """normalise deletes punctuation with one translation table over jiwer's own set; the words
    must be those of jiwer's ToLowerCase + RemovePunctuation pipeline, whatever the script."""
    import random

    import jiwer

    from ahelm.scoring.asr import _word_transform

    jiwers = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(),
                            jiwer.RemoveMultipleSpaces(), jiwer.Strip(),
                            jiwer.ReduceToListOfListOfWords()])
    rng = random.Random(7)
    alphabet = [chr(i) for i in range(0x20, 0x3000)] + list("\u03a3\u03a3 \u3001\u3002\uff0c")
    # "A(Σ" lower-cased first gives "a(σ"; with "(" deleted first it would end in a final "ς".
    texts = ["A(\u03a3", "Hello, (world)!", "\u00bfQu\u00e9?", "\u2026"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
              for _ in range(3000)]
    for text in texts:
        assert _word_transform()(text) == jiwers(text), text


def test_the_punctuation_table_deletes_exactly_jiwers_punctuation() -> None:
    import sys

    import jiwer

    from ahelm.scoring.asr import _Punctuation

    table = _Punctuation()
    deleted = {chr(c) for c in range(sys.maxunicode + 1) if table[c] is None}
    assert deleted == set(jiwer.RemovePunctuation().tokens_to_remove)
    assert table[ord("a")] == ord("a") and table[ord("!")] is None


def test_normalise_makes_equivalent_transcripts_score_perfectly() -> None:
    scores = score_transcript(
        "The well-known café, opened at dawn.", "the WELL KNOWN cafe\u0301 opened at dawn"
    )
    assert scores["wer"] == 0.0
    assert scores["cer"] == 0.0


@pytest.mark.parametrize("separator", ["\n", "\t"])
def test_single_newline_or_tab_separates_words(separator: str) -> None:
    assert normalise(f"the cat{separator}sat") == "the cat sat"
    assert score_transcript("the cat sat", f"the cat{separator}sat")["wer"] == 0.0


@pytest.mark.parametrize("hyphen", ["\u2010", "\u2011"])
def test_unicode_hyphens_are_hyphens(hyphen: str) -> None:
    assert normalise(f"well{hyphen}known") == "well known"


# -- score_transcript -----------------------------------------------------------------------------


def test_substitution() -> None:
    scores = score_transcript("the cat sat", "the dog sat")
    # 1 word substituted of 3; 3 characters substituted of 11 ("the cat sat" counts spaces)
    assert scores["wer"] == pytest.approx(1 / 3)
    assert scores["cer"] == pytest.approx(3 / 11)
    assert scores["mer"] == pytest.approx(1 / 3)
    assert scores["wip"] == pytest.approx((2 / 3) * (2 / 3))
    assert scores["word_errors"] == 1.0 and scores["ref_words"] == 3.0
    assert scores["char_errors"] == 3.0 and scores["ref_chars"] == 11.0


def test_deletion() -> None:
    scores = score_transcript("the cat sat", "the sat")
    # one word deleted; "cat " (4 characters) deleted
    assert scores["wer"] == pytest.approx(1 / 3)
    assert scores["cer"] == pytest.approx(4 / 11)
    assert scores["mer"] == pytest.approx(1 / 3)
    assert scores["wip"] == pytest.approx((2 / 3) * (2 / 2))
    assert (scores["word_errors"], scores["ref_words"]) == (1.0, 3.0)
    assert (scores["char_errors"], scores["ref_chars"]) == (4.0, 11.0)


def test_insertion() -> None:
    scores = score_transcript("the cat sat", "the big cat sat")
    # one word inserted: WER 1/3 but MER 1/(3 hits + 1 insertion); "big " inserted
    assert scores["wer"] == pytest.approx(1 / 3)
    assert scores["mer"] == pytest.approx(1 / 4)
    assert scores["wip"] == pytest.approx((3 / 3) * (3 / 4))
    assert scores["cer"] == pytest.approx(4 / 11)
    assert (scores["word_errors"], scores["ref_words"]) == (1.0, 3.0)
    assert (scores["char_errors"], scores["ref_chars"]) == (4.0, 11.0)


def test_mixed_errors_can_exceed_one() -> None:
    scores = score_transcript("yes", "no no no")
    # 1 substitution + 2 insertions over 1 reference word
    assert scores["wer"] == pytest.approx(3.0)
    assert scores["word_errors"] == 3.0 and scores["ref_words"] == 1.0


def test_perfect_match_after_normalisation() -> None:
    scores = score_transcript("Hello, World!", "hello world")
    assert scores["wer"] == 0.0 and scores["cer"] == 0.0
    assert scores["mer"] == 0.0 and scores["wip"] == 1.0
    assert scores["word_errors"] == 0.0 and scores["ref_words"] == 2.0


@pytest.mark.parametrize("hypothesis", ["", "   ", "?!..."])
def test_empty_hypothesis_deletes_every_word(hypothesis: str) -> None:
    scores = score_transcript("the cat sat", hypothesis)
    assert scores == {
        "wer": 1.0,
        "cer": 1.0,
        "mer": 1.0,
        "wip": 0.0,
        "word_errors": 3.0,
        "ref_words": 3.0,
        "char_errors": 11.0,
        "ref_chars": 11.0,
    }


@pytest.mark.parametrize("reference", ["", "  ", "..."])
def test_empty_reference_raises(reference: str) -> None:
    with pytest.raises(ValueError, match="reference transcript is empty"):
        score_transcript(reference, "anything")


# -- ratio_of_sums --------------------------------------------------------------------------------

ERRORS = [1, 0, 2, 3, 0, 1, 4, 0, 2, 1]
WORDS = [5, 6, 7, 8, 5, 6, 7, 8, 9, 4]


def test_ratio_of_sums_point_value_is_sum_over_sum() -> None:
    metric = ratio_of_sums(ERRORS, WORDS)
    assert metric.value == pytest.approx(sum(ERRORS) / sum(WORDS))
    # not the mean of per-instance rates
    assert metric.value != pytest.approx(sum(e / w for e, w in zip(ERRORS, WORDS, strict=True)) / len(WORDS))
    assert metric.n == len(ERRORS)
    assert metric.lower_is_better is True
    assert "bootstrap" in metric.method


def test_ratio_of_sums_interval_contains_the_value_and_has_width() -> None:
    metric = ratio_of_sums(ERRORS, WORDS)
    assert metric.ci_low < metric.value < metric.ci_high
    assert 0.0 <= metric.ci_low and metric.ci_high <= max(e / w for e, w in zip(ERRORS, WORDS, strict=True))


@pytest.mark.parametrize("size", [10, 333, 2500])
def test_ratio_of_sums_interval_is_scipys_paired_percentile_bootstrap(size: int) -> None:
    rng = np.random.default_rng(size)
    errors = rng.integers(0, 6, size).astype(float)
    words = rng.integers(3, 12, size).astype(float)
    metric = ratio_of_sums(errors, words)
    reference = stats.bootstrap(
        (errors, words), lambda e, w, axis=-1: e.sum(axis=axis) / w.sum(axis=axis),
        paired=True, vectorized=True, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=0.95,
        method="percentile", rng=np.random.default_rng(BOOTSTRAP_SEED),
    ).confidence_interval
    assert (metric.ci_low, metric.ci_high) == pytest.approx((reference.low, reference.high),
                                                          rel=1e-12)


def test_ratio_of_sums_is_seeded() -> None:
    first = ratio_of_sums(ERRORS, WORDS)
    second = ratio_of_sums(list(ERRORS), list(WORDS))
    assert first == second
    assert (first.ci_low, first.ci_high) == (second.ci_low, second.ci_high)


def test_ratio_of_sums_interval_narrows_with_more_data() -> None:
    small = ratio_of_sums(ERRORS, WORDS)
    large = ratio_of_sums(ERRORS * 10, WORDS * 10)
    assert large.value == pytest.approx(small.value)
    assert (large.ci_high - large.ci_low) < (small.ci_high - small.ci_low)


@pytest.mark.parametrize(
    ("numerators", "denominators", "value"),
    [
        ([1, 2, 3], [2, 4, 6], 0.5),  # every instance has the same rate
        ([0, 0, 0, 0], [3, 5, 7, 9], 0.0),
        ([3], [10], 0.3),  # one instance
    ],
)
def test_ratio_of_sums_constant_rate_has_zero_width_interval(
    numerators: list[float], denominators: list[float], value: float
) -> None:
    metric = ratio_of_sums(numerators, denominators)
    assert (metric.value, metric.ci_low, metric.ci_high) == (
        pytest.approx(value),
        pytest.approx(value),
        pytest.approx(value),
    )
    assert metric.n == len(numerators)


@pytest.mark.parametrize(("numerators", "denominators"), [([], []), ([0, 0], [0, 0])])
def test_ratio_of_sums_without_data_is_nan_and_null_in_json(
    numerators: list[float], denominators: list[float]
) -> None:
    metric = ratio_of_sums(numerators, denominators)
    assert math.isnan(metric.value) and math.isnan(metric.ci_low) and math.isnan(metric.ci_high)
    assert metric.n == 0
    data = metric.to_json()
    assert data["value"] is None
    assert data["ci95"] == [None, None]
    assert data["n"] == 0


def test_metric_to_json() -> None:
    metric = Metric(0.25, 0.1, 0.4, 12, lower_is_better=True, method="ratio")
    assert metric.to_json() == {
        "value": 0.25,
        "ci95": [0.1, 0.4],
        "n": 12,
        "lower_is_better": True,
        "method": "ratio",
    }


# -- proportion -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("successes", "total"), [(7, 10), (0, 5), (5, 5), (1, 1), (33, 320)])
def test_proportion_is_the_exact_interval(successes: int, total: int) -> None:
    metric = proportion(successes, total)
    expected = stats.binomtest(successes, total).proportion_ci(0.95, method="exact")
    assert metric.value == pytest.approx(successes / total)
    assert metric.ci_low == pytest.approx(expected.low)
    assert metric.ci_high == pytest.approx(expected.high)
    assert 0.0 <= metric.ci_low <= metric.value <= metric.ci_high <= 1.0
    assert metric.n == total
    assert metric.lower_is_better is False
    assert "exact" in metric.method


def test_proportion_known_value() -> None:
    # Clopper-Pearson 95% interval for 7/10 from beta quantiles:
    # low = Beta(0.025; k, n-k+1), high = Beta(0.975; k+1, n-k)
    n, k = 10, 7
    metric = proportion(k, n)
    assert metric.ci_low == pytest.approx(stats.beta.ppf(0.025, k, n - k + 1), abs=1e-9)
    assert metric.ci_high == pytest.approx(stats.beta.ppf(0.975, k + 1, n - k), abs=1e-9)
    assert metric.ci_low == pytest.approx(0.3475, abs=1e-4)
    assert metric.ci_high == pytest.approx(0.9333, abs=1e-4)


def test_proportion_lower_is_better_flag() -> None:
    assert proportion(1, 4, lower_is_better=True).lower_is_better is True


def test_proportion_of_nothing_is_nan() -> None:
    metric = proportion(0, 0)
    assert math.isnan(metric.value) and math.isnan(metric.ci_low) and math.isnan(metric.ci_high)
    assert metric.n == 0
    assert metric.to_json()["value"] is None
    assert metric.to_json()["ci95"] == [None, None]



def test_metrics_key_changes_with_what_metrics_depend_on() -> None:
    from dataclasses import replace

    from ahelm.core import Record
    from ahelm.reports.summary import metrics_key

    records = [Record(f"i{n}", "mini", "perception", "asr", "pass", "p", ("ref",), "out",
                      {"wer": n / 10}, {"voice": "a"}, latency_s=0.1 * n) for n in range(4)]
    key = metrics_key(records)
    assert metrics_key(list(reversed(records))) == key
    assert metrics_key([replace(r, latency_s=9.0, cached=True) for r in records]) == key
    assert metrics_key(records[:3]) != key
    assert metrics_key([replace(records[0], scores={"wer": 0.5}), *records[1:]]) != key
    assert metrics_key([replace(records[0], status="fail"), *records[1:]]) != key
    assert metrics_key([replace(records[0], groups={"voice": "b"}), *records[1:]]) != key
