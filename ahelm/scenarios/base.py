"""What every scenario family provides, and the metrics all families share."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Protocol, Sequence

from ahelm.core import AudioClip, Instance, Record
from ahelm.gates.expr import Condition
from ahelm.scoring.stats import Metric, proportion

if TYPE_CHECKING:
    from ahelm.judging import Judge


class ScenarioError(Exception):
    """A scenario's files are wrong; names the file, line and field."""


@dataclass(frozen=True)
class ScenarioSpec:
    """The contents of a scenario's ``scenario.toml``."""

    name: str
    aspect: str
    family: str
    directory: Path
    title: str = ""
    language: str = "en"
    smoke_size: int = 40
    group_by: tuple[str, ...] = ()
    pair_by: str | None = None
    """A manifest field shared by instances that differ only in their group (the same sentence
    read by several voices): fairness tests pair on it, and the smoke subset keeps pairs whole."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """The ``[options]`` table: settings of the scenario's family (see each family)."""
    checksums: bool = True
    """Rows promise each file's sha256 (our corpus). A real dataset's loader promises none:
    its clips are then addressed by the hash of the bytes found (AudioClip.identity)."""
    dataset: str | None = None
    """The real dataset (:mod:`ahelm.datasets`) the scenario was loaded from, if any."""


class Family(Protocol):
    """A scenario family: how manifest rows become instances and how answers are scored."""

    name: str
    default_bar: Condition

    def instance(self, spec: ScenarioSpec, row: Mapping[str, Any], where: str) -> Instance: ...

    def score(self, instance: Instance, output: str, judge: Judge | None) -> dict[str, float]:
        """Per-instance scores of one answer; ``judge`` is the ``--judge`` model, if any.
        May raise InstanceError (a judge that gives no verdict): the instance is then an error."""
        ...

    def explain(self, record: Record) -> str: ...

    def metrics(self, records: Sequence[Record]) -> dict[str, Metric]: ...


def json_lines(path: Path, error: type[ScenarioError] = ScenarioError,
               ) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(file:line, object)`` for every non-blank line of a JSON-lines file; a line that is not
    a JSON object raises ``error`` naming the file and line."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise error(f"{where}: expected a JSON object")
            yield where, row


def require(row: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    """A manifest field that must be present and of ``kind``; the error names the place."""
    if name not in row:
        raise ScenarioError(f"{where}: field '{name}' is missing")
    value = row[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ScenarioError(
            f"{where}: field '{name}' should be {kind.__name__}, got {type(value).__name__}"
        )
    return value


def outcome_metrics(records: Sequence[Record]) -> dict[str, Metric]:
    """Shared by every family: pass_rate over answered instances; error_rate (no answer) and
    failure_rate, the error budget (no answer or an answer in the wrong format), over all;
    output_toxic_rate, the share of the model's answers the offline classifier finds toxic."""
    answered = [r for r in records if r.status != "error"]
    errors = len(records) - len(answered)
    format_failures = sum(1 for r in answered if r.scores.get("format_failure", 0.0) > 0)
    toxic = [r.scores["output_toxic"] for r in answered if "output_toxic" in r.scores]
    return {
        "pass_rate": proportion(sum(r.passed for r in answered), len(answered)),
        "error_rate": proportion(errors, len(records), lower_is_better=True),
        "format_failure_rate": proportion(format_failures, len(answered), lower_is_better=True),
        "failure_rate": proportion(errors + format_failures, len(records), lower_is_better=True),
        "output_toxic_rate": proportion(int(sum(v > 0 for v in toxic)), len(toxic),
                                        lower_is_better=True),
    }


def per_group(
    records: Sequence[Record], compute: Callable[[Sequence[Record]], Metric], name: str
) -> dict[str, Metric]:
    """``name[key=value]`` for every group label present in the records."""
    labels = sorted({(k, v) for r in records for k, v in r.groups.items()})
    return {
        f"{name}[{key}={value}]": compute([r for r in records if r.groups.get(key) == value])
        for key, value in labels
    }


def audio_clip(spec: ScenarioSpec, row: Mapping[str, Any], where: str) -> AudioClip:
    """The row's ``audio`` (relative to the scenario folder) and ``sha256``; an optional
    ``perturbation`` (list of {kind, severity}) and ``seed`` make it a perturbed clip, and an
    optional ``then`` (list of more files) a joined one. ``sha256`` is required unless the
    scenario comes from a real dataset (``spec.checksums`` false)."""
    steps: list[tuple[str, float]] = []
    for index, step in enumerate(row.get("perturbation") or ()):
        if not isinstance(step, dict) or not isinstance(step.get("kind"), str) or not isinstance(
            step.get("severity"), (int, float)
        ):
            raise ScenarioError(
                f"{where}: field 'perturbation'[{index}] should be {{kind: str, severity: number}}"
            )
        from ahelm.robustness.perturbations import Perturbation

        try:
            Perturbation(step["kind"], float(step["severity"]))
        except ValueError as exc:
            raise ScenarioError(f"{where}: field 'perturbation'[{index}]: {exc}") from None
        steps.append((step["kind"], float(step["severity"])))
    seed = row.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ScenarioError(f"{where}: field 'seed' should be int")
    then = row.get("then") or []
    if not isinstance(then, list) or not all(isinstance(p, str) and p for p in then):
        raise ScenarioError(f"{where}: field 'then' should be a list of audio file paths")
    return AudioClip(
        path=_inside(spec.directory, require(row, "audio", str, where)),
        sha256=require(row, "sha256", str, where) if spec.checksums or "sha256" in row else "",
        perturbation=tuple(steps),
        seed=seed,
        then=tuple(_inside(spec.directory, p) for p in then),
    )


def _inside(directory: Path, relative: str) -> Path:
    """An absolute, normalised path under the scenario folder (no file system calls: resolving
    every clip's path cost a 2,800-instance collection 70 ms of lstat)."""
    return Path(os.path.normpath(os.path.join(os.path.abspath(directory), relative)))


def group_labels(spec: ScenarioSpec, row: Mapping[str, Any], where: str) -> tuple[tuple[str, str], ...]:
    return tuple((key, str(require(row, key, str, where))) for key in spec.group_by)


def pair_key(spec: ScenarioSpec, row: Mapping[str, Any], where: str) -> str | None:
    return str(require(row, spec.pair_by, str, where)) if spec.pair_by else None


def string_list(row: Mapping[str, Any], name: str, where: str, *, at_least: int = 1) -> tuple[str, ...]:
    value = require(row, name, list, where)
    if len(value) < at_least or not all(isinstance(v, str) and v.strip() for v in value):
        raise ScenarioError(
            f"{where}: field '{name}' should be a list of at least {at_least} non-empty strings"
        )
    return tuple(value)


def accuracy(records: Sequence[Record]) -> Metric:
    """Share of answered instances that met their bar."""
    answered = [r for r in records if r.status != "error"]
    return proportion(sum(r.passed for r in answered), len(answered))


def score_rate(name: str, *, lower_is_better: bool = False) -> Callable[[Sequence[Record]], Metric]:
    """Share of answered instances with a (0/1) score ``name`` of 1, among those that have it."""
    def compute(records: Sequence[Record]) -> Metric:
        values = [r.scores[name] for r in records if r.status != "error" and name in r.scores]
        return proportion(int(sum(v > 0 for v in values)), len(values),
                          lower_is_better=lower_is_better)
    return compute
