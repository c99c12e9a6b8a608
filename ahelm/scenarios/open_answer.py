"""Open answers graded by a judge: captions (AudioCaps) and open questions about a clip
(AIR-Bench chat).

Rows: ``id``, ``audio``, ``question`` (the text prompt, e.g. "Describe the sounds in this
clip."), ``answers`` (one or more reference answers). AHELM grades these answers with a language
model on a 1-5 rubric against the references; here that is the ``--judge`` model
(:mod:`ahelm.judging`), whose grade is ``judge_score`` and whose verdict ``correct`` is a grade
of at least ``[options] pass_grade`` (default 4).

Without a judge the answers still get ``chrf``, sentence chrF against the closest reference
(0-100), an offline proxy recorded as such (``judged_by_model`` 0): ``correct`` is then a chrF of
at least ``[options] pass_chrf`` (default 40). The two methods are never mixed in one metric:
``judge_score`` rests on judged answers only.

Options: ``max_tokens`` (default 50, AHELM's budget for captions; AIR-Bench chat uses 200).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ahelm.core import Instance, Record
from ahelm.gates.expr import Condition
from ahelm.scenarios.base import (
    ScenarioError,
    ScenarioSpec,
    accuracy,
    audio_clip,
    group_labels,
    outcome_metrics,
    pair_key,
    per_group,
    require,
    string_list,
)
from ahelm.scoring.stats import Metric, ratio_of_sums
from ahelm.scoring.translation import sentence_scores

if TYPE_CHECKING:
    from ahelm.judging import Judge

MAX_TOKENS = 50
PASS_GRADE = 4.0
PASS_CHRF = 40.0


class OpenAnswerFamily:
    name = "open_answer"
    default_bar = Condition.parse("correct >= 1")

    def instance(self, spec: ScenarioSpec, row: Mapping[str, Any], where: str) -> Instance:
        question = require(row, "question", str, where)
        if not question.strip():
            raise ScenarioError(f"{where}: field 'question' is empty")
        budget = spec.options.get("max_tokens", MAX_TOKENS)
        if not isinstance(budget, int) or budget < 1:
            raise ScenarioError(f"{spec.directory}: option 'max_tokens' should be a positive int")
        return Instance(
            id=require(row, "id", str, where),
            scenario=spec.name,
            aspect=spec.aspect,
            prompt=question.strip(),
            audio=audio_clip(spec, row, where),
            references=string_list(row, "answers", where),
            groups=group_labels(spec, row, where),
            max_tokens=budget,
            language=str(row.get("language") or spec.language),
            pair=pair_key(spec, row, where),
            attributes=(("pass_grade", str(spec.options.get("pass_grade", PASS_GRADE))),
                        ("pass_chrf", str(spec.options.get("pass_chrf", PASS_CHRF)))),
        )

    def score(self, instance: Instance, output: str, judge: Judge | None = None) -> dict[str, float]:
        chrf = max(sentence_scores(reference, output.strip())["chrf"]
                   for reference in instance.references)
        scores = {"chrf": chrf, "judged_by_model": float(judge is not None)}
        if judge is not None:
            grade = judge.grade(instance.id, instance.prompt, instance.references, output).value
            scores["judge_score"] = grade
            scores["correct"] = float(grade >= float(instance.attribute("pass_grade")))
        else:
            scores["correct"] = float(chrf >= float(instance.attribute("pass_chrf")))
        return scores

    def explain(self, record: Record) -> str:
        if record.scores.get("judged_by_model"):
            how = f"the judge graded it {record.scores.get('judge_score', 0):.0f}/5"
        else:
            how = f"no judge: chrF {record.scores.get('chrf', 0):.1f} against the references"
        return (f"open answer below the bar ({how})\n"
                f"  references: {' | '.join(record.references)[:300]}\n"
                f"  output:     {(record.output or '').strip()[:300]!r}")

    def metrics(self, records: Sequence[Record]) -> dict[str, Metric]:
        metrics = {"accuracy": accuracy(records), **outcome_metrics(records),
                   "chrf": _mean("chrf")(records)}
        if any("judge_score" in r.scores for r in records):
            metrics["judge_score"] = _mean("judge_score")(records)
            metrics.update(per_group(records, _mean("judge_score"), "judge_score"))
        metrics.update(per_group(records, accuracy, "accuracy"))
        return metrics


def _mean(name: str) -> Any:
    def compute(records: Sequence[Record]) -> Metric:
        values = [r.scores[name] for r in records if r.status != "error" and name in r.scores]
        return ratio_of_sums(values, [1.0] * len(values), lower_is_better=False)
    return compute
