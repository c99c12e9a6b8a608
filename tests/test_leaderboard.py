"""The leaderboard across runs: mean win rates by hand, the three files, escaping, the CLI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from suitekit import make_project, runs

from ahelm.reports import leaderboard

EVIL = "<script>alert(1)</script>"


def metric(value: float | None, lower: bool = False) -> dict[str, Any]:
    ci = None if value is None else [value - 0.05, value + 0.05]
    return {"value": value, "ci95": ci, "n": 40, "lower_is_better": lower}


def scenario(aspect: str, **metrics: dict[str, Any]) -> dict[str, Any]:
    return {"aspect": aspect, "metrics": metrics,
            "counts": {"pass": 30, "fail": 10, "error": 0, "total": 40}}


def write_run(root: Path, folder: str, name: str, scenarios: dict[str, Any],
              started: str = "2026-11-25T01:00:00+0000", verdict: str = "pass") -> Path:
    run = root / folder
    run.mkdir(parents=True)
    summary = {
        "schema": 1, "run_id": folder, "started": started, "verdict": verdict,
        "verdict_reason": "all 1 gates hold" if verdict == "pass" else "1 of 1 gates failed: x",
        "model": {"name": name, "provider": "python", "path": "x.toml",
                  "description": f"desc of {name} <b>bold</b>"},
        "aspects": {}, "scenarios": scenarios,
        "gates": [{"name": "asr_a:wer<=0.5", "passed": verdict == "pass"}],
    }
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "summary.md").write_text("# run\n")
    return run


@pytest.fixture
def three(tmp_path: Path) -> list[Path]:
    """Models A, B and C (named EVIL); C has no asr_b; A has no qa f1; A and B tie on pass_rate."""
    a = write_run(tmp_path / "runs", "run-a", "A", {
        "asr_a": scenario("perception", wer=metric(0.10, lower=True), pass_rate=metric(0.9),
                          **{"wer[gender=female]": metric(0.9, lower=True)},
                          error_rate=metric(0.5, lower=True)),
        "asr_b": scenario("perception", wer=metric(0.20, lower=True)),
        "qa": scenario("reasoning", accuracy=metric(0.5), f1=metric(None)),
    })
    b = write_run(tmp_path / "runs", "run-b", "B", {
        "asr_a": scenario("perception", wer=metric(0.20, lower=True), pass_rate=metric(0.9),
                          **{"wer[gender=female]": metric(0.0, lower=True)},
                          error_rate=metric(0.0, lower=True)),
        "asr_b": scenario("perception", wer=metric(0.10, lower=True)),
        "qa": scenario("reasoning", accuracy=metric(0.6), f1=metric(0.3)),
    }, verdict="fail")
    c = write_run(tmp_path / "runs", "run-c", EVIL, {
        "asr_a": scenario("perception", wer=metric(0.30, lower=True), pass_rate=metric(0.5),
                          error_rate=metric(0.0, lower=True)),
        "qa": scenario("reasoning", accuracy=metric(0.7), f1=metric(0.2)),
    })
    return [a, b / "summary.json", c]


def test_win_shares_by_hand() -> None:
    assert leaderboard.win_shares({"a": 0.1, "b": 0.2, "c": 0.3}, lower_is_better=True) == {
        "a": 1.0, "b": 0.5, "c": 0.0}
    assert leaderboard.win_shares({"a": 0.9, "b": 0.9, "c": 0.5}, lower_is_better=False) == {
        "a": 0.75, "b": 0.75, "c": 0.0}
    assert leaderboard.win_shares({"a": 0.4, "b": 0.4}, lower_is_better=False) == {
        "a": 0.5, "b": 0.5}
    assert leaderboard.win_shares({"a": 0.4}, lower_is_better=False) == {}


def test_mean_win_rate_by_hand(three: list[Path]) -> None:
    board = leaderboard.build(three)
    assert [(c.scenario, c.metric) for c in board.columns] == [
        ("asr_a", "wer"), ("asr_a", "pass_rate"), ("asr_b", "wer"),
        ("qa", "accuracy"), ("qa", "f1")]  # no group metrics, no error_rate
    assert board.aspects == ["perception", "reasoning"]
    by = {e.name: e for e in board.entries}
    assert by["A"].shares == {("asr_a", "wer"): 1.0, ("asr_a", "pass_rate"): 0.75,
                              ("asr_b", "wer"): 0.0, ("qa", "accuracy"): 0.0}
    assert by["B"].shares == {("asr_a", "wer"): 0.5, ("asr_a", "pass_rate"): 0.75,
                              ("asr_b", "wer"): 1.0, ("qa", "accuracy"): 0.5, ("qa", "f1"): 1.0}
    assert by[EVIL].shares == {("asr_a", "wer"): 0.0, ("asr_a", "pass_rate"): 0.0,
                               ("qa", "accuracy"): 1.0, ("qa", "f1"): 0.0}
    assert by["A"].aspects == {"perception": pytest.approx(1.75 / 3), "reasoning": 0.0}
    assert by["B"].aspects == {"perception": 0.75, "reasoning": 0.75}
    assert by[EVIL].aspects == {"perception": 0.0, "reasoning": 0.5}
    assert by["A"].overall == 1.75 / 4
    assert by["B"].overall == 3.75 / 5
    assert by[EVIL].overall == 1.0 / 4
    assert [e.name for e in board.entries] == ["B", "A", EVIL]


def test_same_model_keeps_the_newest_run(three: list[Path], tmp_path: Path) -> None:
    old = write_run(tmp_path / "runs", "run-a-old", "A", {
        "asr_a": scenario("perception", wer=metric(0.01, lower=True)),
    }, started="2026-11-24T01:00:00+0000")
    board = leaderboard.build([old, *three])
    entry = next(e for e in board.entries if e.name == "A")
    assert entry.run_dir.name == "run-a"
    assert any("model A has 2 runs" in n and "left out run-a-old" in n for n in board.notes)


def test_one_model_has_no_win_rate(three: list[Path], tmp_path: Path) -> None:
    board = leaderboard.build(three[:1])
    assert board.entries[0].overall is None
    assert board.entries[0].aspects == {"perception": None, "reasoning": None}
    assert any("at least two models" in n for n in board.notes)
    md = leaderboard.render_markdown(board, tmp_path)
    assert "| 1 | A | — | — | — | pass (1/1 gates hold) |" in md


def test_files_json_and_links(three: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "board"
    board = leaderboard.build(three)
    written = leaderboard.write(board, out)
    assert [p.name for p in written] == ["leaderboard.md", "leaderboard.json", "leaderboard.html"]
    data = json.loads((out / "leaderboard.json").read_text())
    assert [m["name"] for m in data["models"]] == ["B", "A", EVIL]
    a = data["models"][1]
    assert a["rank"] == 2 and a["overall"] == 0.4375
    assert a["cells"]["asr_a"]["wer"] == {"value": 0.1, "ci95": [0.05, 0.15000000000000002],
                                          "n": 40, "win_share": 1.0}
    assert a["cells"]["qa"]["f1"]["value"] is None and a["cells"]["qa"]["f1"]["win_share"] is None
    assert a["links"] == {"summary.md": "../runs/run-a/summary.md"}
    assert (out / a["links"]["summary.md"]).is_file()
    assert len(data["columns"]) == 5
    md = (out / "leaderboard.md").read_text()
    assert "| A | 0.100 [0.050, 0.150] | 0.900 [0.850, 0.950] |" in md
    assert "[summary.md](../runs/run-a/summary.md)" in md
    assert "| 1 | B | 0.750 | 0.750 | 0.750 | fail (0/1 gates hold) |" in md


def test_cli_end_to_end_escapes_and_is_self_contained(three: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "ahelm.cli", "leaderboard", *map(str, three), "--out", str(out)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for name in ("leaderboard.md", "leaderboard.json", "leaderboard.html"):
        assert str(out / name) in result.stdout
    page = (out / "leaderboard.html").read_text()
    assert "http://" not in page and "https://" not in page
    assert EVIL not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<svg" in page and "<style>" in page
    md = (out / "leaderboard.md").read_text()
    assert EVIL not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert json.loads((out / "leaderboard.json").read_text())["models"][2]["name"] == EVIL
    only = subprocess.run(
        [sys.executable, "-m", "ahelm.cli", "leaderboard", str(three[0]), "--out",
         str(tmp_path / "md"), "--format", "md"], capture_output=True, text=True, timeout=60)
    assert only.returncode == 0
    assert [p.name for p in (tmp_path / "md").iterdir()] == ["leaderboard.md"]
    bad = subprocess.run([sys.executable, "-m", "ahelm.cli", "leaderboard", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no summary.json" in bad.stderr
    fmt = subprocess.run([sys.executable, "-m", "ahelm.cli", "leaderboard", str(three[0]),
                          "--format", "pdf"], capture_output=True, text=True, timeout=60)
    assert fmt.returncode == 2 and "unknown format pdf" in fmt.stderr


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_two_real_runs(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=3, gates='["wer <= 0.2"]')
    configs = pytester.path / "model_configs"
    text = (configs / "fake.toml").read_text()
    assert "wrong = []" in text
    (configs / "sloppy.toml").write_text(text.replace("wrong = []", 'wrong = ["s01-ann", "s02-bob"]'))
    assert pytester.runpytest("--model=fake", "-p", "no:randomly").ret == 0
    assert pytester.runpytest("--model=sloppy", "-p", "no:randomly").ret == 1
    board = leaderboard.build(runs(pytester))
    assert [e.name for e in board.entries] == ["fake", "sloppy"]
    fake, sloppy = board.entries
    assert fake.shares[("mini_asr", "wer")] == 1.0 and sloppy.shares[("mini_asr", "wer")] == 0.0
    # Both models' answers are equally non-toxic: a tie, half a win each, in the toxicity aspect.
    assert fake.shares[("all outputs", "output_toxic_rate")] == 0.5
    assert fake.aspects == {"perception": 1.0, "toxicity": 0.5}
    assert sloppy.aspects == {"perception": 0.0, "toxicity": 0.5}
    assert fake.overall is not None and sloppy.overall is not None
    assert fake.overall > sloppy.overall
    assert fake.summary["verdict"] == "pass" and sloppy.summary["verdict"] == "fail"
    out = pytester.path / "reports" / "leaderboard"
    leaderboard.write(board, out)
    md = (out / "leaderboard.md").read_text()
    assert f"| 1 | fake | {fake.overall:.3f} | 1.000 | 0.500 | pass (1/1 gates hold) |" in md
    assert f"| 2 | sloppy | {sloppy.overall:.3f} | 0.000 | 0.500 | fail (0/1 gates hold) |" in md
    links = json.loads((out / "leaderboard.json").read_text())["models"][0]["links"]
    assert (out / links["summary.md"]).is_file()


@pytest.mark.skipif(shutil.which("/usr/bin/chromium") is None, reason="chromium is not installed")
def test_leaderboard_renders_in_headless_chromium(three: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "board"
    leaderboard.write(leaderboard.build(three), out)
    url = (out / "leaderboard.html").resolve().as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000"]
    dom = subprocess.run(["/usr/bin/chromium", *flags, "--dump-dom", url], capture_output=True,
                         text=True, timeout=120, check=False).stdout
    assert "<svg" in dom and "Mean win rate" in dom
    rows = re.findall(r"<tr[^>]*>\s*<td[^>]*>(\d)</td>\s*<td[^>]*>([^<]+)", dom)
    assert [(rank, name.strip()) for rank, name in rows[:2]] == [("1", "B"), ("2", "A")]
    assert "<script>alert(1)</script>" not in dom.replace("&lt;script&gt;", "")
    shot = tmp_path / "board.png"
    subprocess.run(["/usr/bin/chromium", *flags, "--window-size=1300,900",
                    f"--screenshot={shot}", url], capture_output=True, timeout=120, check=False)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
