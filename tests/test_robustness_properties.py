"""Robustness properties end to end: hypothesis, perturbed audio, the model, shrinking, reports.

A fragile fake model hears the clip and measures its signal-to-noise ratio; below a known SNR it
answers garbage. The property "WER stays within delta of clean" must fail and shrink to a white
noise level within a small margin of that SNR, and the breaking-point bisection must land there
too. A robust fake must pass both.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from suitekit import make_project, runs

pytest_plugins = ["pytester"]

THRESHOLD_DB = 16.0

FRAGILE = '''
import json
from pathlib import Path

import numpy as np

from ahelm.audio import decode


def snr_db(samples):
    """A tone plus noise: power near the spectral peak over the power elsewhere (Hann window,
    so the tone's own leakage stays near its peak)."""
    windowed = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(windowed)) ** 2
    peak = int(np.argmax(spectrum))
    tone = spectrum[max(0, peak - 8): peak + 9].sum()
    return 10 * np.log10(tone / max(spectrum.sum() - tone, 1e-20))


class Fragile:
    def __init__(self, manifest, threshold_db):
        rows = [json.loads(line) for line in Path(manifest).read_text().splitlines() if line]
        self.truth = {row["id"]: row["transcript"] for row in rows}
        self.threshold_db = threshold_db

    def generate(self, request):
        samples = decode(request.audio.read_verified(), str(request.audio.path))
        heard = snr_db(samples)
        if heard < self.threshold_db:
            return "static hiss and nothing else"
        return self.truth[request.instance_id.split("~")[0]]


def create(**options):
    return Fragile(**options)
'''

POLICY = '''
[properties.defaults]
examples = { smoke = 30, full = 30 }

[properties.asr_wer]
check = "wer_within_delta"
scenario = "mini_asr"
delta = 0.1
max_severity = 1.0
max_length = 1
kinds = ["gaussian_noise"]
clips = 2
breaking_points = { clips = 2, steps = 9, smoke_clips = 2, smoke_steps = 9 }
'''

SUITE = '''
import pytest


def test_wer_property(robustness):
    robustness.check("asr_wer")


def test_breaking_point(robustness):
    robustness.breaking_point("asr_wer", "gaussian_noise")
'''


def project(pytester: pytest.Pytester, threshold_db: float) -> None:
    paths = make_project(pytester, sentences=3, gates='["wer <= 0.2"]', policy_extra=POLICY)
    (pytester.path / "fragile.py").write_text(FRAGILE)
    manifest = paths["scenario"] / "manifest.jsonl"
    (pytester.path / "model_configs" / "fragile.toml").write_text(textwrap.dedent(f"""\
        provider = "python"
        object = "fragile:create"
        [options]
        manifest = "{manifest}"
        threshold_db = {threshold_db}
        """))
    (pytester.path / "suites" / "test_robust.py").write_text(SUITE)


def summary(pytester: pytest.Pytester) -> dict:
    return json.loads((runs(pytester)[-1] / "summary.json").read_text())


def test_fragile_model_fails_and_shrinks_to_its_snr(pytester: pytest.Pytester) -> None:
    project(pytester, THRESHOLD_DB)
    result = pytester.runpytest("--model=fragile", "--suite-size=smoke", "-p", "no:randomly")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "*asr_wer on mini_asr: minimal failing perturbation: white noise at * dB SNR*",
        "*replay: ahelm perturb --scenario mini_asr --instance * --chain gaussian_noise:*",
        "*property asr_wer*FAILS*",
    ])
    data = summary(pytester)
    prop = data["properties"][0]
    assert prop["passed"] is False and prop["name"] == "asr_wer"
    step = prop["counterexample"]["chain"][0]
    assert step["kind"] == "gaussian_noise"
    # The mildest failing white noise sits just below the model's threshold.
    assert THRESHOLD_DB - 1.0 <= step["snr"] < THRESHOLD_DB + 0.5
    assert prop["counterexample"]["perturbed_output"] == "static hiss and nothing else"
    point = data["robustness_profile"]["gaussian_noise"]
    assert abs(point["breaking_value"] - THRESHOLD_DB) <= 1.0
    assert point["passed"] is False  # it breaks within the promised max_severity of 1.0
    assert data["verdict"] == "fail" and "property asr_wer" in data["verdict_reason"]
    report = (runs(pytester)[-1] / "report.html").read_text()
    assert "Robustness properties" in report and "<svg class='chart profile'" in report


def test_counterexample_is_the_same_under_xdist(pytester: pytest.Pytester) -> None:
    project(pytester, THRESHOLD_DB)
    pytester.runpytest("--model=fragile", "--suite-size=smoke", "-p", "no:randomly",
                       "--report-dir", str(pytester.path / "one"))
    pytester.runpytest("--model=fragile", "--suite-size=smoke", "-p", "no:randomly", "-n", "2",
                       "--report-dir", str(pytester.path / "two"))

    def found(folder: str) -> dict:
        run = sorted((pytester.path / folder / "runs").iterdir())[-1]
        return json.loads((run / "summary.json").read_text())["properties"][0]["counterexample"]

    assert found("one") == found("two")
    # A rerun replays every example, shrink steps included, from the answer cache.
    pytester.runpytest("--model=fragile", "--suite-size=smoke", "-p", "no:randomly",
                       "--report-dir", str(pytester.path / "one"))
    rerun = sorted((pytester.path / "one" / "runs").iterdir())[-1]
    data = json.loads((rerun / "summary.json").read_text())
    assert data["dispatch"]["model_calls"] == 0 and data["dispatch"]["cache_hits"] > 20
    assert data["properties"][0]["counterexample"] == found("two")


def test_robust_model_passes(pytester: pytest.Pytester) -> None:
    project(pytester, -100.0)
    result = pytester.runpytest("--model=fragile", "--suite-size=smoke", "-p", "no:randomly")
    assert result.ret == 0, result.stdout.str()[-2000:]
    data = summary(pytester)
    assert data["properties"][0]["passed"] is True
    assert data["properties"][0]["examples"] >= 10
    assert data["robustness_profile"]["gaussian_noise"]["breaking_severity"] is None
    result.stdout.fnmatch_lines(["*property asr_wer*holds*"])


def test_unknown_property_is_a_clear_failure(pytester: pytest.Pytester) -> None:
    project(pytester, THRESHOLD_DB)
    (pytester.path / "suites" / "test_robust.py").write_text(
        "def test_p(robustness):\n    robustness.check('nope')\n")
    result = pytester.runpytest("--model=fragile", "-p", "no:randomly")
    result.stdout.fnmatch_lines(["*no property 'nope' in the gate policy's*(known: asr_wer)*"])


def test_bad_property_policy_stops_the_run(pytester: pytest.Pytester) -> None:
    project(pytester, THRESHOLD_DB)
    policy = pytester.path / "suites" / "gates.toml"
    policy.write_text(policy.read_text().replace('check = "wer_within_delta"', 'check = "vibes"'))
    result = pytester.runpytest("--model=fragile", "-p", "no:randomly")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*properties.asr_wer.check*must be one of*"])
    assert not (Path(pytester.path) / "reports" / "runs").exists()


def test_allure_shows_the_counterexample_with_both_clips(pytester: pytest.Pytester) -> None:
    project(pytester, THRESHOLD_DB)
    alluredir = pytester.path / "allure"
    pytester.runpytest("--model=fragile", "--suite-size=smoke", "-p", "no:randomly",
                       f"--alluredir={alluredir}")
    results = [json.loads(p.read_text()) for p in alluredir.glob("*-result.json")]
    prop = next(r for r in results if r["name"] == "test_wer_property")
    assert prop["status"] == "failed"
    assert "minimal failing perturbation: white noise at" in prop["description"]
    attachments = {a["name"]: a for a in prop["attachments"]}
    assert {"property", "audio (clean)", "audio (perturbed)"} <= set(attachments)
    clean = (alluredir / attachments["audio (clean)"]["source"]).read_text()
    noisy = (alluredir / attachments["audio (perturbed)"]["source"]).read_text()
    assert "data:audio/flac;base64," in clean and "data:audio/wav;base64," in noisy
    assert "white noise at" in noisy and "static hiss" in noisy
    data = json.loads((alluredir / attachments["property"]["source"]).read_text())
    assert data["counterexample"]["replay"].startswith("ahelm perturb --scenario mini_asr")
    point = next(r for r in results if r["name"].startswith("breaking point of gaussian_noise"))
    labels = {(label["name"], label["value"]) for label in point["labels"]}
    assert {("parentSuite", "robustness"), ("suite", "mini_asr"),
            ("subSuite", "breaking points")} <= labels
    assert "breaks at white noise at" in point["description"]
