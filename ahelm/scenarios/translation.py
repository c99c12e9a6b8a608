"""Speech translation into English, scored with sacrebleu (corpus BLEU and chrF).

One answer passes when its sentence chrF reaches the bar (default 40); the scenario's BLEU
and chrF are corpus scores over all answered instances, with bootstrap intervals.
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
from ahelm.scoring.stats import Metric
from ahelm.scoring.translation import corpus_metric, sentence_scores

if TYPE_CHECKING:
    from ahelm.judging import Judge

PROMPT = (
    "Translate the speech in this recording into English. "
    "Reply with the English translation only."
)
MAX_TOKENS = 50
"""AHELM's output budget for translations."""


def _corpus(which: str) -> Callable[[Sequence[Record]], Metric]:
    def compute(records: Sequence[Record]) -> Metric:
        return corpus_metric([dict(r.scores) for r in records if r.status != "error"], which)
    return compute


class TranslationFamily:
    name = "translation"
    default_bar = Condition.parse("chrf >= 40")

    def instance(self, spec: ScenarioSpec, row: Mapping[str, Any], where: str) -> Instance:
        language = require(row, "source_language", str, where)
        require(row, "source_text", str, where)
        return Instance(
            id=require(row, "id", str, where),
            scenario=spec.name,
            aspect=spec.aspect,
            prompt=PROMPT,
            audio=audio_clip(spec, row, where),
            references=(require(row, "reference", str, where),),
            groups=group_labels(spec, row, where),
            max_tokens=MAX_TOKENS,
            language=language,
            pair=pair_key(spec, row, where),
            attributes=(("source_text", row["source_text"]),),
        )

    def score(self, instance: Instance, output: str, judge: Judge | None = None) -> dict[str, float]:
        return sentence_scores(instance.references[0], output.strip())

    def explain(self, record: Record) -> str:
        return (f"chrF {record.scores.get('chrf', float('nan')):.1f} misses the bar {record.bar}\n"
                f"  reference:   {record.references[0]}\n"
                f"  translation: {(record.output or '').strip()[:300]}")

    def metrics(self, records: Sequence[Record]) -> dict[str, Metric]:
        metrics = {"bleu": _corpus("bleu")(records), "chrf": _corpus("chrf")(records),
                   **outcome_metrics(records)}
        metrics.update(per_group(records, _corpus("bleu"), "bleu"))
        metrics.update(per_group(records, _corpus("chrf"), "chrf"))
        return metrics
