"""Speech recognition scenarios: transcribe the clip; scored by WER after normalisation."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ahelm.core import AudioClip, Instance, Record
from ahelm.gates.expr import Condition
from ahelm.scenarios.base import ScenarioSpec, outcome_metrics, per_group, require
from ahelm.scoring.asr import normalise, score_transcript
from ahelm.scoring.stats import Metric, ratio_of_sums

PROMPT = (
    "Transcribe the speech in this recording. "
    "Reply with the transcript only, with no other words."
)
MAX_TOKENS = 100
"""AHELM's output budget for transcripts."""


def _rate(errors: str, totals: str) -> Any:
    def compute(records: Sequence[Record]) -> Metric:
        scored = [r for r in records if r.status != "error"]
        return ratio_of_sums([r.scores[errors] for r in scored], [r.scores[totals] for r in scored])

    return compute


class AsrFamily:
    name = "asr"
    default_bar = Condition.parse("wer <= 0.25")

    def instance(self, spec: ScenarioSpec, row: Mapping[str, Any], where: str) -> Instance:
        groups = tuple(
            (key, str(require(row, key, str, where))) for key in spec.group_by
        )
        return Instance(
            id=require(row, "id", str, where),
            scenario=spec.name,
            aspect=spec.aspect,
            prompt=PROMPT,
            audio=AudioClip(
                path=spec.directory / require(row, "audio", str, where),
                sha256=require(row, "sha256", str, where),
            ),
            references=(require(row, "transcript", str, where),),
            groups=groups,
            max_tokens=MAX_TOKENS,
            language=spec.language,
            pair=str(require(row, spec.pair_by, str, where)) if spec.pair_by else None,
        )

    def score(self, instance: Instance, output: str) -> dict[str, float]:
        return score_transcript(instance.references[0], output)

    def explain(self, record: Record) -> str:
        return (
            f"WER {record.scores.get('wer', float('nan')):.3f} misses the bar {record.bar}\n"
            f"  reference:  {normalise(record.references[0])}\n"
            f"  hypothesis: {normalise(record.output or '')}"
        )

    def metrics(self, records: Sequence[Record]) -> dict[str, Metric]:
        wer = _rate("word_errors", "ref_words")
        metrics = {
            "wer": wer(records),
            "cer": _rate("char_errors", "ref_chars")(records),
            **outcome_metrics(records),
        }
        metrics.update(per_group(records, wer, "wer"))
        return metrics
