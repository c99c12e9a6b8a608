"""The live progress line: its numbers, its pace, and when it stays quiet."""

from __future__ import annotations

import pytest
from suitekit import make_project

from ahelm.reports.progress import Progress, RequestCounts

pytest_plugins = ["pytester"]


def test_the_line_gives_done_total_rate_eta_and_errors() -> None:
    progress = Progress(interval_s=5)
    progress.planned(200)
    progress.planned(150)  # another xdist worker's smaller count does not shrink the total
    progress.done, progress.errors = 50, 1
    line = progress.line(now=progress.started + 10)
    assert line == "ahelm: 50/200 tests done (25%) · 5.0/s · ETA 0:30 · 1 answer error"
    progress.done, progress.errors = 60, 2
    assert progress.line(now=progress.started + 3600).endswith("ETA 2:20:00 · 2 answer errors")


def test_with_request_counts_the_line_is_about_the_requests_then_the_tests() -> None:
    progress = Progress(interval_s=5)
    progress.planned(120)
    progress.done = 30
    line = progress.line(now=progress.started + 20, requests=RequestCounts(40, 100, 2))
    assert line == ("ahelm: 40/100 requests answered (40%) · 2.0/s · ETA 0:30 · 2 answer errors"
                    " · 30/120 tests done")
    assert progress.line(now=progress.started + 1, requests=RequestCounts(0, 0, 0)) == (
        "ahelm: 0/? requests answered · 0.0/s · ETA ? · 0 answer errors · 30/120 tests done")


def test_an_unknown_total_or_rate_says_so() -> None:
    progress = Progress()
    assert progress.line(now=progress.started + 1) == (
        "ahelm: 0/? tests done · 0.0/s · ETA ? · 0 answer errors")


def test_lines_come_at_most_once_per_interval() -> None:
    progress = Progress(interval_s=5)
    start = progress.started
    assert not progress.due(now=start + 1)
    assert progress.due(now=start + 5.5)
    assert not progress.due(now=start + 9)
    assert progress.due(now=start + 11)


def test_forced_on_it_prints_during_the_run(pytester: pytest.Pytester,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(pytester, sentences=3, fail=["s02-bob"])
    monkeypatch.setenv("AHELM_PROGRESS", "1")
    monkeypatch.setenv("AHELM_PROGRESS_INTERVAL", "0")
    result = pytester.runpytest("--model=fake", "-p", "no:randomly")
    lines = [line for line in result.stdout.lines if line.startswith("ahelm: ")]
    total = 6 + 2  # six instances and two gates
    # One process counts the requests its own dispatcher planned and settled, then the tests.
    assert lines[-1].startswith("ahelm: 6/6 requests answered (100%)")
    assert lines[-1].endswith(f"· 1 answer error · {total}/{total} tests done")
    assert len(lines) == total


def test_quiet_when_not_a_terminal_or_when_asked(pytester: pytest.Pytester,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(pytester, sentences=2)
    monkeypatch.delenv("AHELM_PROGRESS", raising=False)
    monkeypatch.setenv("AHELM_PROGRESS_INTERVAL", "0")
    result = pytester.runpytest("--model=fake", "-p", "no:randomly")  # stdout is not a TTY
    assert not [line for line in result.stdout.lines if line.startswith("ahelm: ")]
    monkeypatch.setenv("AHELM_PROGRESS", "0")
    result = pytester.runpytest("--model=fake", "-p", "no:randomly")
    assert not [line for line in result.stdout.lines if line.startswith("ahelm: ")]


def test_under_xdist_with_local_dispatchers_the_controller_counts_every_workers_tests(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(pytester, sentences=4)
    monkeypatch.setenv("AHELM_PROGRESS", "1")
    monkeypatch.setenv("AHELM_PROGRESS_INTERVAL", "0")
    result = pytester.runpytest("--model=fake", "-p", "no:randomly", "-n", "2")
    lines = [line for line in result.stdout.lines if line.startswith("ahelm: ")]
    assert lines and lines[-1].startswith("ahelm: 10/10 tests done (100%)")
