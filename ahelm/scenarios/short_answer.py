"""Short-answer scenarios: spoken questions, word problems, questions about a conversation.

The question is either spoken in the clip (row ``question`` null) or asked in the text prompt.
Scored by AHELM's quasi-prefix exact match against the row's acceptable ``answers``
(:mod:`ahelm.scoring.text`); ``exact_match`` (quasi-exact) is kept too.

Options (``[options]`` in scenario.toml): ``unanswerable = true`` tells the model that it may
reply "unanswerable" when the recording does not settle the question (CoRe-Bench-like
scenarios, whose unanswerable items have the gold answer "unanswerable").
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
from ahelm.scoring.stats import Metric
from ahelm.scoring.text import normalise_answer, quasi_exact_match, quasi_prefix_exact_match

if TYPE_CHECKING:
    from ahelm.judging import Judge

SPOKEN_QUESTION = "Answer the question asked in this recording."
ABOUT_RECORDING = "Answer this question about the recording: {question}"
INSTRUCTION = "Reply with the answer only, in as few words as possible."
UNANSWERABLE = (
    'If the recording does not give enough information to answer, reply "unanswerable".'
)
MAX_TOKENS = 10
"""AHELM's output budget for short answers."""


class ShortAnswerFamily:
    name = "short_answer"
    default_bar = Condition.parse("correct >= 1")

    def instance(self, spec: ScenarioSpec, row: Mapping[str, Any], where: str) -> Instance:
        question = row.get("question")
        if question is not None and not (isinstance(question, str) and question.strip()):
            raise ScenarioError(f"{where}: field 'question' should be a string or null")
        answers = string_list(row, "answers", where)
        if not all(normalise_answer(a) for a in answers):
            raise ScenarioError(f"{where}: field 'answers' has an answer that normalises to nothing")
        lines = [ABOUT_RECORDING.format(question=question.strip()) if question else SPOKEN_QUESTION,
                 INSTRUCTION]
        if spec.options.get("unanswerable"):
            lines.append(UNANSWERABLE)
        return Instance(
            id=require(row, "id", str, where),
            scenario=spec.name,
            aspect=spec.aspect,
            prompt=" ".join(lines),
            audio=audio_clip(spec, row, where),
            references=answers,
            groups=group_labels(spec, row, where),
            max_tokens=MAX_TOKENS,
            language=str(row.get("language") or spec.language),
            pair=pair_key(spec, row, where),
        )

    def score(self, instance: Instance, output: str, judge: Judge | None = None) -> dict[str, float]:
        return {
            "correct": float(quasi_prefix_exact_match(output, instance.references)),
            "exact_match": float(quasi_exact_match(output, instance.references)),
        }

    def explain(self, record: Record) -> str:
        return (f"answer does not match\n  accepted: {' | '.join(record.references)}\n"
                f"  output:   {(record.output or '').strip()[:300]!r}")

    def metrics(self, records: Sequence[Record]) -> dict[str, Metric]:
        metrics = {"accuracy": accuracy(records), **outcome_metrics(records)}
        metrics.update(per_group(records, accuracy, "accuracy"))
        return metrics
