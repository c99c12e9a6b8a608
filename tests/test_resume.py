"""A run killed with SIGKILL resumes from the cache: nothing stored is asked again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from suitekit import calls, make_project


def _summary(report_dir: str, pytester: pytest.Pytester) -> dict[str, object]:
    path = next((pytester.path / report_dir / "runs").glob("*/summary.json"))
    data: dict[str, object] = json.loads(path.read_text())
    return data


def test_sigkill_midway_then_rerun_repeats_no_stored_answer(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=12, wrong=["s03-ann", "s07-bob"], delay=0.05,
                 extra_config="max_concurrency = 2\n")
    command = [sys.executable, "-m", "pytest", "--model=fake", "-p", "no:cacheprovider",
               "--report-dir=killed"]
    process = subprocess.Popen(command, cwd=pytester.path, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(calls(pytester)) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = [line.split()[1] for line in calls(pytester)]
    assert 10 <= len(before) < 24, "the run should have been killed midway"
    assert not (pytester.path / "killed" / "runs").exists()

    resumed = subprocess.run(command, cwd=pytester.path, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    after = [line.split()[1] for line in calls(pytester)][len(before):]
    with_answers = set(before) - set(after)
    # Answers stored before the kill are not asked again; at most the two in flight are.
    assert len(set(before) & set(after)) <= 2
    assert sorted(set(before) | set(after)) == sorted(
        f"s{i:02d}-{v}" for i in range(1, 13) for v in ("ann", "bob"))
    assert len(with_answers) >= len(before) - 2

    fresh = subprocess.run([*command[:-1], "--report-dir=uninterrupted"], cwd=pytester.path,
                           capture_output=True, text=True)
    assert fresh.returncode == 0
    killed, uninterrupted = _summary("killed", pytester), _summary("uninterrupted", pytester)
    assert killed["scenarios"] == uninterrupted["scenarios"]
    assert killed["gates"] == uninterrupted["gates"]
    assert killed["counts"] == uninterrupted["counts"]
