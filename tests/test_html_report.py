"""report.html: structure, escaping, embedded audio, a real run, and a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from suitekit import make_project, runs

from ahelm.core import Record
from ahelm.reports.html import (
    MAX_CLIPS,
    confusion_matrix_html,
    curve_svg,
    grouped_metrics,
    render_html,
)

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

EVIL = "<script>alert(1)</script>"
CHROMIUM = "/usr/bin/chromium"


def _record(rid: str, status: str, output: str | None, **extra: Any) -> Record:
    fields: dict[str, Any] = {
        "instance_id": rid, "scenario": "mini_asr", "aspect": "perception", "family": "asr",
        "status": status, "prompt": "Transcribe <this>.", "references": ("the red boat",),
        "output": output, "scores": {"wer": 1.0} if status == "fail" else {"wer": 0.0},
        "groups": {"voice": "bob", "gender": "male"},
    }
    fields.update(extra)
    return Record(**fields)


def _summary(verdict: str = "fail") -> dict[str, Any]:
    metric = {"value": 0.25, "ci95": [0.1, 0.4], "n": 4, "method": "ratio, bootstrap"}
    return {
        "run_id": "20260101-000000-fake-abcd", "started": "2026-01-01T00:00:00+0000",
        "duration_s": 1.5, "complete": True, "verdict": verdict,
        "verdict_reason": "1 of 2 gates failed: mini_asr:wer<=0.2", "suite_size": "smoke",
        "model": {"name": "fake <model>", "provider": "python", "path": "/x/fake.toml"},
        "counts": {"pass": 2, "fail": 1, "error": 1, "total": 4},
        "aspects": {"perception": {"scenarios": ["mini_asr"],
                                   "counts": {"pass": 2, "fail": 1, "error": 1, "total": 4}}},
        "scenarios": {"mini_asr": {
            "aspect": "perception", "family": "asr", "instance_bar": "wer <= 0.25",
            "counts": {"pass": 2, "fail": 1, "error": 1, "total": 4},
            "metrics": {"wer": metric, "wer[voice=ann]": {**metric, "value": 0.0},
                        "wer[voice=bob]": {**metric, "value": 0.5},
                        "wer[gender=male]": metric},
        }},
        "gates": [
            {"kind": "threshold", "name": "mini_asr:wer<=0.2", "condition": "wer <= 0.2",
             "passed": False, "message": "mini_asr wer = 0.25 FAILS <= 0.2", "value": 0.25,
             "ci95": [0.1, 0.4], "n": 4, "details": {}},
            {"kind": "fairness", "name": "mini_asr:fair:wer~voice",
             "condition": "gap in wer across voice <= 0.6", "passed": True,
             "message": "gap 0.5 holds", "value": 0.5, "ci95": None, "n": 2,
             "details": {"test": {"p_value": 0.0312}}},
        ],
        "other_failures": [], "dispatch": {"model_calls": 4, "cache_hits": 0},
        "versions": {"ahelm": "0"}, "command": ["pytest", "--model=fake"],
    }


def _clip(path: Path) -> Path:
    t = np.arange(8000) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    return path


def _synthetic(tmp_path: Path) -> tuple[dict[str, Any], list[Record]]:
    _clip(tmp_path / "bad.wav")
    records = [
        _record("s01-ann", "pass", "the red boat", audio="bad.wav"),
        _record("s02-ann", "pass", "the red boat"),
        _record("s01-bob", "fail", EVIL, audio="bad.wav"),
        _record("s02-bob", "error", None, error="simulated outage <b>", audio="missing.wav"),
    ]
    return _summary(), records


def test_structure_escaping_and_audio(tmp_path: Path) -> None:
    summary, records = _synthetic(tmp_path)
    page = render_html(summary, records, tmp_path)
    verdict = page.index("class='verdict fail'")
    assert verdict < page.index("id='gates'") < page.index("<h2>Aspects")
    assert verdict < page.index("mini_asr wer = 0.25 FAILS")
    assert page.count("<tr class='gate ") == 2
    assert "<span class='bad'>FAIL</span>" in page and "<span class='ok'>pass</span>" in page
    assert "0.031" in page  # p from details
    assert "<svg" in page and "wer by voice (95% CI)" in page and "wer by gender" in page
    audios = re.findall(r"<audio [^>]*>", page)
    assert len(audios) == 1  # only the wrong one with a readable file; passes carry none
    assert "preload='metadata'" in audios[0] and "src='data:audio/wav;base64," in audios[0]
    assert "audio unavailable: missing.wav" in page
    assert EVIL not in page and html_escaped(EVIL) in page
    assert "simulated outage &lt;b&gt;" in page and "fake &lt;model&gt;" in page
    assert "Transcribe &lt;this&gt;." in page
    assert "http://" not in page and "https://" not in page


def html_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_urls_only_inside_escaped_user_text(tmp_path: Path) -> None:
    summary, records = _synthetic(tmp_path)
    link = "<a href='https://evil.example/x'>x</a>"
    records.append(_record("s03-bob", "fail", link))
    page = render_html(summary, records, tmp_path)
    assert "<a href" not in page and "&lt;a href=&#x27;https://evil.example/x&#x27;&gt;" in page
    assert "https://" not in page.replace("https://evil.example/x", "")


def test_audio_cap_and_passing_run(tmp_path: Path) -> None:
    _clip(tmp_path / "a.wav")
    many = [_record(f"i{n:03d}", "fail", "x", audio="a.wav") for n in range(MAX_CLIPS + 3)]
    page = render_html(_summary(), many, tmp_path)
    assert page.count("<audio ") == MAX_CLIPS and "capped" in page
    passing = render_html({**_summary("pass"), "verdict_reason": "all 2 gates hold"},
                          [_record("ok", "pass", "the red boat")], tmp_path)
    assert "class='verdict pass'" in passing and "every instance passed" not in passing
    assert "None: all passed." in passing


def test_curves_and_confusion_matrix_render_only_when_supported() -> None:
    metrics = {f"wer[snr={db}]": {"value": v, "ci95": [v - 0.05, v + 0.05], "n": 5}
               for db, v in (("20", 0.1), ("0", 0.6), ("10", 0.3))}
    groups = grouped_metrics(metrics)
    assert list(groups) == [("wer", "snr")]
    svg = curve_svg("wer by snr", groups[("wer", "snr")])
    assert "<polyline" in svg and svg.index(">0<") < svg.index(">10<") < svg.index(">20<")
    summary = _summary()
    summary["scenarios"]["mini_asr"]["metrics"].update(metrics)
    assert "<polyline" in render_html(summary, [], None)
    assert "<polyline" not in render_html(_summary(), [], None)
    plain = [_record("a", "pass", "x")]
    assert confusion_matrix_html(plain) == ""
    labelled = [_record(str(i), "pass", "x", scores={"label": t, "predicted": p})
                for i, (t, p) in enumerate([("cat", "cat"), ("cat", "dog"), ("dog", "dog"),
                                            ("<b>", "dog")])]
    matrix = confusion_matrix_html(labelled)
    assert "Confusion matrix" in matrix and "&lt;b&gt;" in matrix and "<b>" not in matrix
    assert matrix.count("<tr><th>") == 1 + 3  # the header row, then one row per label


def _fake_run(pytester: pytest.Pytester) -> Path:
    make_project(pytester, sentences=2, wrong=["s01-bob"])
    pytester.runpytest("--model=fake", "-p", "no:randomly")
    report = runs(pytester)[-1] / "report.html"
    assert report.is_file()
    return report


def test_run_writes_report_html(pytester: pytest.Pytester) -> None:
    page = _fake_run(pytester).read_text(encoding="utf-8")
    assert "class='verdict fail'" in page and "1 of 2 gates failed: mini_asr:wer&lt;=0.2" in page
    assert "s01-bob" in page and "completely different words here" in page
    assert page.count("src='data:audio/flac;base64,") == 1  # the one wrong clip
    assert "http://" not in page and "https://" not in page


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=5000"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(pytester: pytest.Pytester, tmp_path: Path) -> None:
    url = _fake_run(pytester).resolve().as_uri()
    dom = _chromium(tmp_path, "--dump-dom", url).stdout
    assert '<span class="big">FAIL</span>' in dom and "1 of 2 gates failed" in dom
    assert 'id="gates"' in dom and "mini_asr:wer&lt;=0.2" in dom
    audio = re.search(r"<audio [^>]*>", dom)
    assert audio and 'src="data:audio/flac;base64,' in audio.group(0)
    assert 'data-loaded="true"' in audio.group(0), audio.group(0)[:200]
    shot = tmp_path / "report.png"
    done = _chromium(tmp_path, "--window-size=1200,1800", f"--screenshot={shot}", url)
    assert shot.is_file(), done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
