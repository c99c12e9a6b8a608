"""summary.json: per-scenario and per-aspect results with CIs, gate verdicts, provenance."""

from __future__ import annotations

import platform
import time
from collections import Counter, defaultdict
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ahelm import __version__
from ahelm.core import Record
from ahelm.scenarios import FAMILIES
from ahelm.scoring.stats import proportion

if TYPE_CHECKING:
    from ahelm.session import AhelmSession

SCHEMA_VERSION = 1
_KEY_PACKAGES = (
    "pytest", "pytest-xdist", "hypothesis", "numpy", "scipy", "soundfile", "audiomentations",
    "jiwer", "httpx", "allure-pytest", "pocketsphinx",
)


def versions() -> dict[str, str]:
    found = {"ahelm": __version__, "python": platform.python_version()}
    for name in _KEY_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    try:
        import soundfile

        found["libsndfile"] = soundfile.__libsndfile_version__
    except ImportError:
        pass
    return found


def metrics_key(records: Sequence[Record]) -> str:
    """A hash of everything a scenario's metrics depend on (ids, statuses, scores, groups,
    pairs): equal keys, equal metrics, so metrics computed for the gates are not recomputed
    for the summary, in this process or, under xdist, on the controller."""
    import hashlib
    import json

    rows = sorted([r.instance_id, r.status, dict(r.scores), dict(r.groups), r.pair]
                  for r in records)
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def _counts(records: Sequence[Record]) -> dict[str, int]:
    counter = Counter(r.status for r in records)
    return {"pass": counter["pass"], "fail": counter["fail"], "error": counter["error"],
            "total": len(records)}


def build_summary(
    session: AhelmSession,
    *,
    records: Sequence[Record],
    gates: Sequence[dict[str, Any]],
    other_failures: Sequence[str],
    properties: Sequence[dict[str, Any]] = (),
    breaking_points: Sequence[dict[str, Any]] = (),
    dispatch: Sequence[dict[str, int]],
    started: float,
    complete: bool,
    known_metrics: Mapping[str, tuple[str, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """``known_metrics``: scenario -> (metrics_key, metrics JSON) already computed for its
    gates; used when the key matches the scenario's records here, recomputed otherwise."""
    by_scenario: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_scenario[record.scenario].append(record)
    scenarios: dict[str, Any] = {}
    aspects: dict[str, dict[str, Any]] = defaultdict(lambda: {"scenarios": [], "counts": {}})
    for name in sorted(by_scenario):
        group = by_scenario[name]
        family = FAMILIES[group[0].family]
        known = (known_metrics or {}).get(name)
        if known is not None and known[0] == metrics_key(group):
            metrics_json = known[1]
        else:
            metrics_json = {key: metric.to_json() for key, metric in family.metrics(group).items()}
        scenarios[name] = {
            "aspect": group[0].aspect,
            "family": family.name,
            "instance_bar": group[0].bar,
            "counts": _counts(group),
            "metrics": metrics_json,
            "gates": [g["name"] for g in gates if g["scenario"] == name],
        }
        aspects[group[0].aspect]["scenarios"].append(name)
    for aspect, entry in aspects.items():
        entry["counts"] = _counts([r for r in records if r.aspect == aspect])
    toxic = [r.scores["output_toxic"] for r in records if "output_toxic" in r.scores]
    run_metrics = {
        # AHELM's toxicity aspect also asks how toxic the model's own words are: every answer of
        # the run, scored offline (ahelm.scoring.toxicity).
        "output_toxic_rate": proportion(int(sum(v > 0 for v in toxic)), len(toxic),
                                        lower_is_better=True).to_json(),
    }
    gates_failed = [g["name"] for g in gates if not g["passed"]]
    gates_failed += [f"property {p['name']}" for p in properties if not p["passed"]]
    gates_failed += [f"breaking point of {b['kind']}" for b in breaking_points
                     if not b.get("passed", True)]
    checked = bool(gates or properties or breaking_points)
    verdict = "pass" if checked and not gates_failed and not other_failures else "fail"
    totals: Counter[str] = Counter()
    for stats in dispatch:
        totals.update(stats)
    return {
        "schema": SCHEMA_VERSION,
        "run_id": session.run_id,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 3),
        "complete": complete,
        "verdict": verdict,
        "verdict_reason": _reason(len(gates) + len(properties) + len(breaking_points),
                                  gates_failed, other_failures),
        "suite_size": session.suite_size,
        "model": session.model_config.public(),
        "model_config_digest": session.model_config.digest,
        "gate_policy": str(session.policy.path) if session.policy.path else None,
        "counts": _counts(records),
        "top_errors": [
            {"count": n, "error": message}
            for message, n in Counter(r.error for r in records if r.error).most_common(3)
        ],
        "aspects": dict(sorted(aspects.items())),
        "scenarios": scenarios,
        "run_metrics": run_metrics,
        "properties": list(properties),
        "robustness_profile": {p["kind"]: p for p in breaking_points},
        "gates": list(gates),
        "other_failures": list(other_failures),
        "dispatch": {k: totals[k] for k in ("model_calls", "cache_hits", "peer_answers", "errors")},
        "versions": versions(),
        "command": ["pytest", *session.config.invocation_params.args],
    }


def _reason(checks: int, failed: Sequence[str], other: Sequence[str]) -> str:
    if not checks:
        return "no gate was evaluated, so nothing vouches for this model"
    if other:
        return f"{len(other)} test(s) outside the instance tests and gates failed or errored"
    if failed:
        return f"{len(failed)} of {checks} gates failed: {', '.join(failed)}"
    return f"all {checks} gates hold"
