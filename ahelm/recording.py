"""From a model's answer to the transparent per-instance Record: scores, verdict, provenance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ahelm.core import Answer, Instance, InstanceError, Record
from ahelm.gates.expr import Condition

if TYPE_CHECKING:
    from ahelm.judging import Judge
    from ahelm.scenarios import Scenario


def build_record(
    scenario: Scenario,
    instance: Instance,
    answer: Answer,
    bar: Condition,
    audio_label: str | None,
    judge: Judge | None = None,
) -> Record:
    """Score ``answer`` with the scenario's family and judge it against ``bar``.

    No answer, or a scorer that cannot decide (a judge without a verdict), makes an error
    record: the instance fails alone and the reason is kept. ``output_toxic`` is added later,
    in batches (ahelm.scoring.toxicity.with_output_toxicity).
    """
    base: dict[str, Any] = dict(
        instance_id=instance.id,
        scenario=instance.scenario,
        aspect=instance.aspect,
        family=scenario.family.name,
        prompt=instance.prompt,
        references=instance.references,
        groups=dict(instance.groups),
        audio=audio_label,
        key=answer.key,
        cached=answer.cached,
        bar=bar.text,
        pair=instance.pair,
        perturbation=(instance.audio.describe()
                      if instance.audio is not None and instance.audio.perturbation else None),
    )
    error: InstanceError | None = answer.error
    if answer.response is not None:
        response = answer.response
        try:
            scores = dict(scenario.family.score(instance, response.text, judge))
        except InstanceError as exc:
            error = exc
        else:
            return Record(
                status="pass" if bar.holds_for(scores) else "fail",
                output=response.text,
                scores=scores,
                latency_s=response.latency_s,
                raw=response.raw,
                **base,
            )
    return Record(
        status="error",
        output=answer.response.text if answer.response is not None else None,
        scores={},
        error=str(error),
        error_kind=getattr(error, "kind", "error"),
        raw=getattr(error, "raw", None),
        **base,
    )
