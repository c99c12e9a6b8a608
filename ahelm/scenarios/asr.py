"""Speech recognition scenarios: transcribe the clip; scored by WER after normalisation.

Languages written without spaces between words (Chinese, Japanese, Thai...) are scored by
characters. ``ter`` (token error rate) is the headline for mixed-language scenarios: the
character error rate for those languages, as AHELM scores Chinese, and the word error rate for
every other language. A scenario may mix languages (a row's
``language`` overrides the scenario's).

Rows may carry a ``perturbation`` chain (robustness grids); when a scenario groups by
``condition`` with a ``clean`` condition, it also reports each condition's WER relative to clean
(``wer_increase[condition=X]``, absolute points, and ``wer_ratio[condition=X]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ahelm.core import Instance, Record
from ahelm.gates.expr import Condition
from ahelm.scenarios.base import (
    ScenarioSpec,
    audio_clip,
    group_labels,
    outcome_metrics,
    pair_key,
    per_group,
    require,
)
from ahelm.scoring.asr import normalise, score_transcript
from ahelm.scoring.stats import Metric, ratio_of_sums

if TYPE_CHECKING:
    from ahelm.judging import Judge

PROMPT = (
    "Transcribe the speech in this recording. "
    "Reply with the transcript only, with no other words."
)
MAX_TOKENS = 100
"""AHELM's output budget for transcripts."""
CHAR_LANGUAGES = frozenset({"zh", "cmn", "yue", "ja", "th", "lo", "km", "my"})
"""Scored by characters: scripts that do not put spaces between words."""


_WORD_FALLBACK = {"errors": "word_errors", "units": "ref_words"}
"""Records written before ``ter`` existed (a baseline run) count words."""


def _rate(errors: str, totals: str) -> Callable[[Sequence[Record]], Metric]:
    def value(record: Record, name: str) -> float:
        return float(record.scores.get(name, record.scores[_WORD_FALLBACK.get(name, name)]))

    def compute(records: Sequence[Record]) -> Metric:
        scored = [r for r in records if r.status != "error"]
        return ratio_of_sums([value(r, errors) for r in scored], [value(r, totals) for r in scored])

    return compute


def by_characters(language: str) -> bool:
    return language.split("-")[0].lower() in CHAR_LANGUAGES


class AsrFamily:
    name = "asr"
    default_bar = Condition.parse("ter <= 0.25")

    def instance(self, spec: ScenarioSpec, row: Mapping[str, Any], where: str) -> Instance:
        language = str(row.get("language") or spec.language)
        return Instance(
            id=require(row, "id", str, where),
            scenario=spec.name,
            aspect=spec.aspect,
            prompt=PROMPT,
            audio=audio_clip(spec, row, where),
            references=(require(row, "transcript", str, where),),
            groups=group_labels(spec, row, where),
            max_tokens=MAX_TOKENS,
            language=language,
            pair=pair_key(spec, row, where),
        )

    def score(self, instance: Instance, output: str, judge: Judge | None = None) -> dict[str, float]:
        scores = score_transcript(instance.references[0], output,
                                  chars_only=by_characters(instance.language))
        unit = "char" if by_characters(instance.language) else "word"
        scores["ter"] = scores["cer" if unit == "char" else "wer"]
        scores["by_characters"] = float(unit == "char")
        scores["errors"] = scores[f"{unit}_errors"]
        scores["units"] = scores[f"ref_{unit}s"]
        return scores

    def explain(self, record: Record) -> str:
        name = "CER" if record.scores.get("by_characters") else "WER"
        return (
            f"{name} {record.scores.get('ter', float('nan')):.3f} misses the bar "
            f"{record.bar}\n"
            f"  reference:  {normalise(record.references[0])}\n"
            f"  hypothesis: {normalise(record.output or '')}"
        )

    def metrics(self, records: Sequence[Record]) -> dict[str, Metric]:
        wer = _rate("word_errors", "ref_words")
        ter = _rate("errors", "units")
        metrics = {
            "ter": ter(records),
            "wer": wer(records),
            "cer": _rate("char_errors", "ref_chars")(records),
            **outcome_metrics(records),
        }
        metrics.update(per_group(records, wer, "wer"))
        if any(r.scores.get("errors", 0) != r.scores.get("word_errors", 0) for r in records
               if r.status != "error"):
            metrics.update(per_group(records, ter, "ter"))
        metrics.update(_relative_to_clean(records, wer))
        return metrics


def _relative_to_clean(
    records: Sequence[Record], wer: Callable[[Sequence[Record]], Metric]
) -> dict[str, Metric]:
    """Per condition: WER minus clean WER (points) and WER over clean WER, on the same clips.
    Only for scenarios that pair each perturbed record with its clean clip (``pair_by``)."""
    conditions = sorted({r.groups["condition"] for r in records if "condition" in r.groups})
    if "clean" not in conditions:
        return {}
    clean = [r for r in records if r.groups.get("condition") == "clean" and r.status != "error"
             and r.pair is not None]
    clean_by_pair = {r.pair: r for r in clean}
    out: dict[str, Metric] = {}
    for condition in conditions:
        if condition == "clean":
            continue
        mine = [r for r in records if r.groups.get("condition") == condition
                and r.status != "error" and r.pair is not None and r.pair in clean_by_pair]
        base = [clean_by_pair[r.pair] for r in mine]
        # The difference of two ratios over the same clips: a paired ratio of sums of
        # (perturbed errors - clean errors) over reference words.
        out[f"wer_increase[condition={condition}]"] = ratio_of_sums(
            [r.scores["word_errors"] - b.scores["word_errors"] for r, b in zip(mine, base, strict=True)],
            [r.scores["ref_words"] for r in mine],
        )
        clean_wer, this_wer = wer(base).value, wer(mine).value
        ratio = this_wer / clean_wer if clean_wer > 0 else float("nan")
        out[f"wer_ratio[condition={condition}]"] = Metric(ratio, ratio, ratio, len(mine), True,
                                                          "ratio of corpus WERs")
    return out
