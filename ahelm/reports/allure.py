"""Allure results: the aspect -> scenario hierarchy, a playable audio clip, prompt, output, scores.

Allure has no native audio preview, so the clip is attached as an HTML page with an
``<audio controls>`` player whose source is the clip itself, inline. Nothing here runs unless
pytest was started with ``--alluredir``.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import pytest

from ahelm.core import InstanceError

if TYPE_CHECKING:
    from ahelm.core import Instance, Record
    from ahelm.gates.verdict import GateResult

_MIME = {".ogg": "audio/ogg", ".opus": "audio/ogg", ".wav": "audio/wav", ".flac": "audio/flac",
         ".mp3": "audio/mpeg"}


def _active(config: pytest.Config) -> bool:
    return bool(config.getoption("allure_report_dir", None))


def audio_player_html(data: bytes, mime: str, title: str, details: dict[str, str]) -> str:
    source = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in details.items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>"
        f"{html.escape(title)}</title></head><body style='font-family:sans-serif'>"
        f"<audio controls preload='auto' src='{source}'></audio>"
        f"<table style='margin-top:8px;text-align:left'>{rows}</table></body></html>"
    )


def attach_instance(config: pytest.Config, instance: Instance, record: Record) -> None:
    if not _active(config):
        return
    import allure

    allure.dynamic.parent_suite(instance.aspect)
    allure.dynamic.suite(instance.scenario)
    allure.dynamic.epic(instance.aspect)
    allure.dynamic.feature(instance.scenario)
    allure.dynamic.title(f"{instance.scenario} · {instance.id}")
    for key, value in instance.groups:
        allure.dynamic.tag(f"{key}={value}")
    if instance.groups:
        allure.dynamic.sub_suite(", ".join(f"{k}={v}" for k, v in instance.groups))
    details = {
        "expected": " / ".join(instance.references),
        "output": record.output if record.output is not None else f"(error) {record.error}",
        "status": record.status,
        "bar": record.bar or "",
    }
    if instance.audio is not None:
        clip = instance.audio
        if clip.perturbation:
            details["heard"] = clip.describe()
            allure.dynamic.parameter("perturbation", clip.describe())
        try:
            data = clip.read_verified()
        except InstanceError as exc:
            allure.attach(f"audio unavailable: {exc}", "audio", allure.attachment_type.TEXT)
        else:
            mime = _MIME.get(clip.suffix, "application/octet-stream")
            name = "audio (as heard by the model)" if clip.perturbation else "audio"
            allure.attach(audio_player_html(data, mime, instance.id, details), name,
                          allure.attachment_type.HTML)
            if clip.perturbation:
                clean = replace(clip, perturbation=(), seed=0)
                allure.attach(
                    audio_player_html(clean.read_verified(),
                                      _MIME.get(clean.suffix, "application/octet-stream"),
                                      f"{instance.id} (clean)", {"heard": "clean source"}),
                    "audio (clean source)", allure.attachment_type.HTML,
                )
    allure.attach(instance.prompt, "prompt", allure.attachment_type.TEXT)
    allure.attach(details["output"], "output", allure.attachment_type.TEXT)
    allure.attach(details["expected"], "expected", allure.attachment_type.TEXT)
    allure.attach(
        json.dumps(dict(record.scores), indent=2), "scores", allure.attachment_type.JSON
    )


def attach_gate(config: pytest.Config, result: GateResult, aspect: str) -> None:
    if not _active(config):
        return
    import allure

    allure.dynamic.parent_suite(aspect)
    allure.dynamic.suite(result.scenario)
    allure.dynamic.sub_suite("gates")
    allure.dynamic.epic(aspect)
    allure.dynamic.feature(result.scenario)
    allure.dynamic.title(f"{result.kind} gate on {result.scenario}: {result.condition}")
    # Every gate item of a module shares one Allure full name; the parameter keeps their
    # histories apart, or Allure would show them as retries of one test.
    allure.dynamic.parameter("gate", result.name)
    allure.dynamic.severity(allure.severity_level.CRITICAL)
    allure.dynamic.tag("gate")
    allure.dynamic.tag(f"gate:{result.kind}")
    allure.dynamic.description(result.message)
    payload: dict[str, Any] = result.to_json()
    allure.attach(json.dumps(payload, indent=2), "gate", allure.attachment_type.JSON)


CATEGORIES_FILE = Path(__file__).with_name("allure_categories.json")
"""Allure's defect categories for an ahelm run (a test's message decides its category); also
read by allurerc.mjs, since Allure 3 takes categories from its configuration."""


def write_run_info(config: pytest.Config, summary: dict[str, Any]) -> None:
    """environment.properties (model, config hash, versions) and categories.json, next to the
    results, so that the Allure report says what was tested and sorts what went wrong."""
    folder = config.getoption("allure_report_dir", None)
    if not folder:
        return
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    model = summary["model"]
    environment = {
        "model": model["name"],
        "provider": model["provider"],
        "model_config": model["path"],
        "model_config_digest": summary["model_config_digest"],
        "suite_size": summary["suite_size"],
        "run_id": summary["run_id"],
        "verdict": summary["verdict"],
        **{f"version.{name}": value for name, value in summary["versions"].items()},
    }
    lines = (f"{key}={_property(str(value))}" for key, value in environment.items())
    (target / "environment.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (target / "categories.json").write_text(CATEGORIES_FILE.read_text(encoding="utf-8"),
                                            encoding="utf-8")


def _property(value: str) -> str:
    """A .properties value: backslashes, line breaks and non-ASCII escaped."""
    value = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return value.encode("ascii", "backslashreplace").decode("ascii").replace("\\x", "\\u00")


def attach_property(config: pytest.Config, outcome: Any, aspect: str,
                    clips: Sequence[Instance]) -> None:
    """A property test: its settings, and for a failure the minimal counterexample with the
    clean and the perturbed clip, both playable."""
    if not _active(config):
        return
    import allure

    allure.dynamic.parent_suite(aspect)
    allure.dynamic.suite(outcome.scenario)
    allure.dynamic.sub_suite("properties")
    allure.dynamic.tag("property")
    allure.dynamic.tag(f"property:{outcome.check}")
    allure.dynamic.description(outcome.message or f"{outcome.name} holds over "
                               f"{outcome.examples} examples")
    allure.attach(json.dumps(outcome.to_json(), indent=2), "property", allure.attachment_type.JSON)
    failure = outcome.counterexample
    if failure is None:
        return
    from ahelm.robustness.perturbations import Perturbation
    from ahelm.robustness.properties import perturbed

    try:
        instance = next(i for i in clips if i.id == failure.instance)
        chain = [Perturbation(c["kind"], c["severity"]) for c in failure.chain]
        heard = perturbed(instance, chain, failure.seed)
        assert instance.audio is not None and heard.audio is not None
        for label, clip, said in (("clean", instance.audio, failure.clean_output),
                                  ("perturbed", heard.audio, failure.perturbed_output)):
            details = {"instance": failure.instance, "heard": clip.describe(),
                       "output": said or "", "seed": str(failure.seed)}
            allure.attach(audio_player_html(clip.read_verified(),
                                            _MIME.get(clip.suffix, "application/octet-stream"),
                                            f"{failure.instance} ({label})", details),
                          f"audio ({label})", allure.attachment_type.HTML)
    except Exception as exc:  # the verdict stands; only the attachment is missing
        allure.attach(f"clips unavailable: {type(exc).__name__}: {exc}", "audio",
                      allure.attachment_type.TEXT)


def attach_breaking_point(config: pytest.Config, point: dict[str, Any], scenario: str) -> None:
    """A breaking-point bisection: under robustness → scenario → breaking points, with its curve."""
    if not _active(config):
        return
    import allure

    allure.dynamic.parent_suite("robustness")
    allure.dynamic.suite(scenario)
    allure.dynamic.sub_suite("breaking points")
    allure.dynamic.title(f"breaking point of {point['kind']} ({point['property']})")
    allure.dynamic.tag("breaking-point")
    where = point.get("breaking_description") or "not broken at severity 1"
    allure.dynamic.description(
        f"{point['label']}: breaks at {where}; clean WER {point['clean_wer']:.3f}, "
        f"delta {point['delta']:g}, promised up to severity {point['max_severity']:g}")
    allure.attach(json.dumps(point, indent=2), "breaking point", allure.attachment_type.JSON)
