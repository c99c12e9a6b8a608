"""Robustness as properties: hypothesis draws perturbation chains, the model answers, and a
failing property shrinks to the mildest chain that still breaks it.

Two checks (chosen by the policy's ``check``):

- ``wer_within_delta``: for every clip and every chain up to ``max_severity``, the WER of the
  model's transcript of the perturbed clip is at most the clean clip's WER + ``delta``;
- ``invariance``: the option the model picks does not change under the perturbation.

Model calls go through the run's dispatcher and cache (a perturbed clip is its own cache entry,
addressed by its identity), so a rerun replays every example from the cache. Examples are
derandomised: the same examples, the same bytes, in every run and on every xdist worker.

The breaking-point profile is a bounded bisection over one kind's severity: the smallest severity
at which the corpus WER over a few clips exceeds clean + ``delta``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ahelm.core import Instance, Record
from ahelm.robustness.perturbations import KINDS, Perturbation, describe
from ahelm.robustness.policy import PropertySpec
from ahelm.robustness.strategies import chain_seed, perturbation_chains

if TYPE_CHECKING:
    from ahelm.scenarios import Scenario


class PropertyFailed(AssertionError):
    """A robustness property does not hold; the message gives the minimal counterexample."""


def perturbed(instance: Instance, chain: Sequence[Perturbation], seed: int) -> Instance:
    """The same question about the same clip, heard through ``chain`` (noise drawn from ``seed``)."""
    if instance.audio is None:
        raise ValueError(f"{instance.id}: no audio to perturb")
    steps = tuple((p.kind, p.severity) for p in chain)
    tag = hashlib.sha256(json.dumps([steps, seed]).encode()).hexdigest()[:10]
    clip = replace(instance.audio, perturbation=steps, seed=seed)
    return dataclasses.replace(instance, id=f"{instance.id}~{tag}", audio=clip)


def chain_json(chain: Sequence[Perturbation]) -> list[dict[str, Any]]:
    return [{"kind": p.kind, "severity": p.severity, KINDS[p.kind].parameter: p.value,
             "unit": KINDS[p.kind].unit} for p in chain]


@dataclass
class Counterexample:
    """What a report shows of a failing example, enough to replay it exactly."""

    instance: str
    chain: list[dict[str, Any]]
    description: str
    seed: int
    clean_output: str | None
    perturbed_output: str | None
    clean_value: float | None
    perturbed_value: float | None
    source_audio: str

    def replay_command(self, scenario: str) -> str:
        steps = ",".join(f"{c['kind']}:{c['severity']:g}" for c in self.chain)
        return (f"ahelm perturb --scenario {scenario} --instance {self.instance} "
                f"--chain {steps} --seed {self.seed} --out perturbed.wav")


@dataclass
class PropertyOutcome:
    name: str
    check: str
    scenario: str
    passed: bool
    examples: int = 0
    message: str = ""
    counterexample: Counterexample | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if self.counterexample is not None:
            data["counterexample"]["replay"] = self.counterexample.replay_command(self.scenario)
        return data


Answer = Callable[[Instance], Record]
"""The run's way to get a scored record for an instance (cache, dispatcher, scorer)."""


class PropertyRunner:
    def __init__(self, spec: PropertySpec, scenario: Scenario, answer: Answer,
                 clips: Sequence[Instance]) -> None:
        self.spec = spec
        self.scenario = scenario
        self.answer = answer
        self.clips = list(clips)
        self.last_failure: Counterexample | None = None
        self.examples = 0

    def _value(self, record: Record) -> float | None:
        if record.status == "error":
            raise PropertyFailed(f"{record.instance_id}: no answer ({record.error_kind}: "
                                 f"{record.error}); a property needs the model's answers")
        if self.spec.check == "wer_within_delta":
            return float(record.scores["wer"])
        choice = record.scores.get("choice")
        return None if choice is None else float(choice)

    def holds(self, index: int, chain: Sequence[Perturbation]) -> bool:
        """Run one example; remember it if it fails."""
        self.examples += 1
        clean_instance = self.clips[index]
        seed = chain_seed(chain, salt=index)
        clean = self.answer(clean_instance)
        heard = self.answer(perturbed(clean_instance, chain, seed))
        before, after = self._value(clean), self._value(heard)
        if self.spec.check == "wer_within_delta":
            assert before is not None and after is not None
            ok = after <= before + self.spec.delta + 1e-12
        else:
            ok = before == after
        if not ok:
            self.last_failure = Counterexample(
                instance=clean_instance.id, chain=chain_json(chain), description=describe(chain),
                seed=seed, clean_output=clean.output, perturbed_output=heard.output,
                clean_value=before, perturbed_value=after,
                source_audio=str(clean_instance.audio.path) if clean_instance.audio else "",
            )
        return ok

    def run(self, max_examples: int, base_settings: Any) -> PropertyOutcome:
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st

        strategy = perturbation_chains(self.spec.kinds, self.spec.max_severity,
                                       self.spec.max_length)

        @settings(base_settings, max_examples=max_examples, deadline=None, derandomize=True,
                  database=None, print_blob=False,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
        @given(index=st.integers(0, len(self.clips) - 1), chain=strategy)
        def prop(index: int, chain: tuple[Perturbation, ...]) -> None:
            if not self.holds(index, chain):
                raise PropertyFailed(self._message())

        outcome = PropertyOutcome(self.spec.name, self.spec.check, self.spec.scenario, True,
                                  settings=self.settings_json(max_examples))
        try:
            prop()
        except PropertyFailed:
            outcome.passed = False
            outcome.counterexample = self.last_failure
            outcome.message = self._message()
        outcome.examples = self.examples
        return outcome

    def settings_json(self, max_examples: int) -> dict[str, Any]:
        return {"delta": self.spec.delta, "max_severity": self.spec.max_severity,
                "max_length": self.spec.max_length, "kinds": list(self.spec.kinds),
                "clips": [c.id for c in self.clips], "max_examples": max_examples}

    def _message(self) -> str:
        failure = self.last_failure
        if failure is None:
            return f"property {self.spec.name} failed"
        if self.spec.check == "wer_within_delta":
            what = (f"WER {failure.perturbed_value:.3f} > clean {failure.clean_value:.3f} "
                    f"+ delta {self.spec.delta:g}")
        else:
            what = "the chosen option changed"
        return (
            f"{self.spec.name} on {self.spec.scenario}: minimal failing perturbation: "
            f"{failure.description} (seed {failure.seed}) on {failure.instance}: {what}\n"
            f"  clean output:     {failure.clean_output!r}\n"
            f"  perturbed output: {failure.perturbed_output!r}\n"
            f"  replay: {failure.replay_command(self.spec.scenario)}"
        )


@dataclass
class BreakingPoint:
    kind: str
    breaking_severity: float | None
    """Smallest severity found to break the property; None if even severity 1 does not."""
    clean_wer: float
    curve: list[tuple[float, float]]
    delta: float
    clips: list[str]

    def to_json(self) -> dict[str, Any]:
        kind = KINDS[self.kind]
        broken = self.breaking_severity
        return {
            "kind": self.kind, "label": kind.label, "parameter": kind.parameter, "unit": kind.unit,
            "breaking_severity": broken,
            "breaking_value": None if broken is None else kind.value(broken),
            "breaking_description": None if broken is None else kind.describe(broken),
            "clean_wer": self.clean_wer, "delta": self.delta, "clips": self.clips,
            "curve": [{"severity": s, "value": kind.value(s), "wer": w} for s, w in self.curve],
        }


def corpus_wer(records: Sequence[Record]) -> float:
    errors = sum(r.scores["word_errors"] for r in records)
    words = sum(r.scores["ref_words"] for r in records)
    return float(errors / words) if words else float("nan")


def find_breaking_point(kind: str, clips: Sequence[Instance], answer: Answer, delta: float,
                        steps: int) -> BreakingPoint:
    """Bisection over severity in [0, 1]: ``steps`` halvings after checking both ends."""
    def wer_at(severity: float) -> float:
        chain = (Perturbation(kind, severity),)
        records = [answer(perturbed(c, chain, chain_seed(chain, salt=i)))
                   for i, c in enumerate(clips)]
        failed = [r for r in records if r.status == "error"]
        if failed:
            raise PropertyFailed(f"{failed[0].instance_id}: no answer: {failed[0].error}")
        return corpus_wer(records)

    clean = corpus_wer([answer(c) for c in clips])
    curve: list[tuple[float, float]] = []

    def broken(severity: float) -> bool:
        wer = wer_at(severity)
        curve.append((severity, wer))
        return wer > clean + delta + 1e-12

    if not broken(1.0):
        return BreakingPoint(kind, None, clean, sorted(curve), delta, [c.id for c in clips])
    low, high = 0.0, 1.0
    if broken(0.0):
        high = 0.0
    else:
        for _ in range(steps):
            middle = round((low + high) / 2, 6)
            if broken(middle):
                high = middle
            else:
                low = middle
    return BreakingPoint(kind, high, clean, sorted(curve), delta, [c.id for c in clips])
