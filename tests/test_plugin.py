"""The plugin driven through real pytest runs (pytester), as a user runs it."""

from __future__ import annotations

import json
import textwrap

import pytest
from suitekit import calls, last_summary, make_project, runs

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def test_all_gates_hold_exit_zero(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = pytester.runpytest("--model=fake", "-p", "no:randomly")
    result.assert_outcomes(passed=12 + 2)
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "*ahelm release gates*",
        "*mini_asr:error_rate<=0.05*0.0000*pass*",
        "*mini_asr:wer<=0.2*0.0000*pass*",
        "ahelm verdict: PASS: all 2 gates hold",
    ])
    summary = last_summary(pytester)
    assert summary["verdict"] == "pass"
    assert summary["counts"] == {"pass": 12, "fail": 0, "error": 0, "total": 12}
    assert summary["scenarios"]["mini_asr"]["metrics"]["wer"]["value"] == 0.0
    assert summary["dispatch"]["model_calls"] == 12


def test_instance_ids_are_test_ids(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=2)
    result = pytester.runpytest("--model=fake", "--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "suites/test_mini.py::test_mini_asr[s01-ann]",
        "suites/test_mini.py::test_mini_asr[s01-bob]",
        "suites/test_mini.py::test_mini_asr[s02-ann]",
        "suites/test_mini.py::test_mini_asr[s02-bob]",
        "suites/test_mini.py::gate[mini_asr:wer<=0.2]",
        "suites/test_mini.py::gate[mini_asr:error_rate<=0.05]",
    ])
    assert calls(pytester) == []


def test_wrong_answers_fail_their_tests_but_not_the_run(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=10, wrong=["s03-bob"], gates='["wer <= 0.2"]')
    result = pytester.runpytest("--model=fake")
    result.assert_outcomes(passed=19 + 1, failed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "*s03-bob: WER 1.000 misses the bar wer <= 0.25*",
        "*reference:  we counted stars from the hill*",
        "*hypothesis: completely different words here*",
        "*single wrong answers never fail the run, only gates do*",
        "ahelm verdict: PASS*",
    ])


def test_wrong_answers_and_errors_report_their_message_not_a_traceback(
    pytester: pytest.Pytester,
) -> None:
    """Wrong answers and unanswered instances are reported by their message alone, in the
    failure sections, the short summary and JUnit XML; --fulltrace still shows the traceback."""
    make_project(pytester, sentences=3, wrong=["s01-ann"], fail=["s02-bob"])
    result = pytester.runpytest("--model=fake", "-rfE", "--junitxml=junit.xml")
    result.assert_outcomes(passed=5, failed=2, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_mini_asr?s02-bob?*",
        "s02-bob: transport error: RuntimeError: simulated outage",
        "*_ test_mini_asr?s01-ann? _*",
        "s01-ann: WER 1.000 misses the bar wer <= 0.25",
        "FAILED suites/test_mini.py::test_mini_asr?s01-ann? - Failed: s01-ann*",
        "ERROR suites/test_mini.py::test_mini_asr?s02-bob? - s02-bob*",
    ])
    assert "outcome.check()" not in result.stdout.str()
    assert "InstanceFailure" not in result.stdout.str()
    junit = (pytester.path / "junit.xml").read_text()
    assert 'message="Failed: s01-ann: WER 1.000 misses the bar' in junit
    assert ">s02-bob: transport error: RuntimeError: simulated outage</error>" in junit

    full = pytester.runpytest("--model=fake", "--fulltrace", "-p", "no:cacheprovider")
    full.assert_outcomes(passed=5, failed=2, errors=1)
    full.stdout.fnmatch_lines(["*outcome.check()*", "*s01-ann: WER 1.000 misses the bar*"])


def test_failed_gate_fails_the_run(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=3, wrong=["s01-ann", "s02-ann"],
                 gates='["wer <= 0.2", "wer[gender=female] <= 0.5"]')
    result = pytester.runpytest("--model=fake")
    assert result.ret == 1
    result.assert_outcomes(passed=4, failed=4)
    result.stdout.re_match_lines([
        r".*gate failed: mini_asr wer\[gender=female\] = 0.6667 \(95% CI.*n=3\) FAILS <= 0.5",
    ])
    result.stdout.fnmatch_lines([
        "*mini_asr:wer<=0.2*0.3333*FAIL*",
        "ahelm verdict: FAIL: 2 of 2 gates failed*",
    ])
    summary = last_summary(pytester)
    assert summary["verdict"] == "fail"
    assert [g["passed"] for g in summary["gates"]] == [False, False]


def test_model_failure_is_an_error_and_counts_against_the_error_budget(
    pytester: pytest.Pytester,
) -> None:
    make_project(pytester, sentences=3, fail=["s02-bob"])
    result = pytester.runpytest("--model=fake")
    result.assert_outcomes(passed=5 + 1, failed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_mini_asr[s02-bob]*",
        "*s02-bob: transport error: RuntimeError: simulated outage*",
        "*mini_asr:error_rate<=0.05*0.1667*FAIL*",
    ])
    assert result.ret == 1
    records = [json.loads(line) for line in (runs(pytester)[-1] / "instances.jsonl").open()]
    errored = [r for r in records if r["status"] == "error"]
    assert [r["id"] for r in errored] == ["s02-bob"]
    assert "simulated outage" in errored[0]["error"]


def test_rerun_uses_the_cache_and_refresh_asks_again(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=3)
    assert pytester.runpytest("--model=fake").ret == 0
    assert len(calls(pytester)) == 6
    second = pytester.runpytest("--model=fake")
    assert second.ret == 0
    assert len(calls(pytester)) == 6
    assert last_summary(pytester)["dispatch"]["model_calls"] == 0
    assert last_summary(pytester)["dispatch"]["cache_hits"] == 6
    third = pytester.runpytest("--model=fake", "--refresh")
    assert third.ret == 0
    assert len(calls(pytester)) == 12
    assert last_summary(pytester)["dispatch"]["model_calls"] == 6


def test_errors_are_not_cached(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=2, fail=["s01-ann"])
    pytester.runpytest("--model=fake")
    pytester.runpytest("--model=fake")
    asked = [line.split()[1] for line in calls(pytester)]
    assert asked.count("s01-ann") == 2
    assert asked.count("s02-bob") == 1


def test_changed_audio_is_a_new_request(pytester: pytest.Pytester) -> None:
    project = make_project(pytester, sentences=2)
    pytester.runpytest("--model=fake")
    manifest = project["scenario"] / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    from suitekit import write_clip

    rows[0]["sha256"] = write_clip(project["scenario"] / rows[0]["audio"], 40)
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pytester.runpytest("--model=fake")
    asked = [line.split()[1] for line in calls(pytester)]
    assert asked.count(rows[0]["id"]) == 2
    assert len(asked) == 5


def test_xdist_gives_the_same_scores_without_double_calls(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=12, wrong=["s02-ann", "s05-bob", "s09-bob"])
    single = pytester.runpytest_subprocess("--model=fake", "--report-dir=single")
    assert single.ret == 0
    parallel = pytester.runpytest_subprocess("--model=fake", "-n", "2", "--report-dir=parallel")
    assert parallel.ret == 0
    assert "database is locked" not in parallel.stdout.str() + parallel.stderr.str()
    one = json.loads(next((pytester.path / "single" / "runs").glob("*/summary.json")).read_text())
    two = json.loads(next((pytester.path / "parallel" / "runs").glob("*/summary.json")).read_text())
    assert one["scenarios"] == two["scenarios"]
    assert one["gates"] == two["gates"]
    # The summary reuses the metrics its gates computed (on the workers under -n 2): they are
    # exactly what recomputing them from the run's records gives.
    from ahelm.core import Record
    from ahelm.scenarios.asr import AsrFamily

    lines = next((pytester.path / "parallel" / "runs").glob("*/instances.jsonl")).read_text()
    records = [Record.from_json(json.loads(line)) for line in lines.splitlines() if line]
    recomputed = {k: m.to_json() for k, m in AsrFamily().metrics(records).items()}
    assert two["scenarios"]["mini_asr"]["metrics"] == recomputed
    asked = [line.split()[1] for line in calls(pytester)]
    assert len(asked) == 48  # 24 instances, asked once per report dir (two separate caches)
    assert len(set(asked)) == 24 and all(asked.count(i) == 2 for i in set(asked))
    assert two["dispatch"]["model_calls"] == 24


HYPOTHESIS_PROBE = """\
    import sys
    from pathlib import Path

    def pytest_unconfigure(config):
        name = config.workerinput["workerid"] if hasattr(config, "workerinput") else "main"
        loaded = "hypothesis" in sys.modules
        Path(config.rootpath, f"hypothesis-{name}.txt").write_text(str(loaded))
    """


def hypothesis_loaded(pytester: pytest.Pytester) -> dict[str, str]:
    return {path.stem: path.read_text() for path in pytester.path.glob("hypothesis-*.txt")}


@pytest.mark.parametrize("workers", [0, 2])
def test_runs_without_properties_never_import_hypothesis(
    pytester: pytest.Pytester, workers: int
) -> None:
    """hypothesis's plugin imports hypothesis for every terminal summary, even with nothing to
    report; a process that ran no hypothesis test and holds no failing example drops the
    plugin first: the single process, each xdist worker and the controller."""
    make_project(pytester, sentences=4)
    conftest = pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + textwrap.dedent(HYPOTHESIS_PROBE))
    result = pytester.runpytest_subprocess("--model=fake", *(["-n", str(workers)] * bool(workers)))
    assert result.ret == 0
    expected = {"hypothesis-gw0", "hypothesis-gw1", "hypothesis-main"} if workers else {
        "hypothesis-main"}
    assert hypothesis_loaded(pytester) == dict.fromkeys(expected, "False")


def _hypothesis_project(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=4)
    conftest = pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + textwrap.dedent(HYPOTHESIS_PROBE))
    (pytester.path / "suites" / "test_found.py").write_text(textwrap.dedent("""\
        from hypothesis import given, strategies as st

        @given(st.integers(min_value=0, max_value=100))
        def test_small(n):
            assert n < 50
        """))


def test_hypothesis_summary_is_kept_for_failing_examples(pytester: pytest.Pytester) -> None:
    """A failing hypothesis test in an xdist worker sends its examples to the controller, whose
    hypothesis summary turns them into a patch (hypothesis needs libcst to write one)."""
    pytest.importorskip("libcst")
    _hypothesis_project(pytester)
    result = pytester.runpytest_subprocess("--model=fake", "-n", "2", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*git apply*to add failing examples to your code*"])
    assert hypothesis_loaded(pytester)["hypothesis-main"] == "True"


def test_hypothesis_summary_is_kept_for_statistics(pytester: pytest.Pytester) -> None:
    """With --hypothesis-show-statistics the summary prints statistics: not dropped, even in
    a process that ran no hypothesis test."""
    _hypothesis_project(pytester)
    stats = pytester.runpytest_subprocess("--model=fake", "--hypothesis-show-statistics",
                                          "-k", "not test_small")
    stats.stdout.fnmatch_lines(["*Hypothesis Statistics*"])


def test_config_errors_stop_the_run_before_any_request(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    configs = pytester.path / "model_configs"
    cases = {
        "unknown_provider": ('provider = "telepathy"\n', "field 'provider': unknown provider"),
        "missing_field": ('provider = "openai-chat"\nbase_url = "http://127.0.0.1:9"\n',
                          "field 'model': missing"),
        "mistyped": ('provider = "openai-chat"\nmodel = "m"\nbase_url = "http://127.0.0.1:9"\n'
                     'max_concurrency = "eight"\n', "field 'max_concurrency': expected an integer"),
        "unknown_field": ('provider = "reference"\nmax_concurency = 2\n',
                          "field 'max_concurency': unknown field"),
        "missing_key": ('provider = "openai-chat"\nmodel = "m"\nbase_url = "http://127.0.0.1:9"\n'
                        'api_key_env = "AHELM_TEST_UNSET_KEY"\n',
                        "field 'api_key_env': environment variable AHELM_TEST_UNSET_KEY is not set"),
        "bad_object": ('provider = "python"\nobject = "fakemodel:nothing_here"\n',
                       "field 'object': module 'fakemodel' has no attribute 'nothing_here'"),
    }
    for name, (text, message) in cases.items():
        (configs / f"{name}.toml").write_text(text)
        result = pytester.runpytest(f"--model={name}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR, name
        result.stderr.fnmatch_lines([f"*{configs / name}.toml: {message}*"])
    missing = pytester.runpytest("--model=nonexistent")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    missing.stderr.fnmatch_lines(["*nonexistent.toml: no such model config*fake*"])
    assert calls(pytester) == []
    assert runs(pytester) == []


def test_bad_gate_policy_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_project(pytester, gates='["wer =< 0.2"]')
    result = pytester.runpytest("--model=fake")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "gates.toml: field 'mini_asr.gates[0]': cannot parse 'wer =< 0.2'" in result.stderr.str()


def test_model_config_overrides_the_policy(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=3, wrong=["s01-ann"],
                 extra_config='[gates.mini_asr]\ngates = ["wer <= 0.5"]\n')
    result = pytester.runpytest("--model=fake")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*mini_asr:wer<=0.5*pass*"])
    gates = last_summary(pytester)["gates"]
    assert [g["name"] for g in gates] == ["mini_asr:wer<=0.5"]
    assert gates[0]["source"].endswith("fake.toml")


def test_smoke_is_a_fixed_balanced_subset(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=12, smoke_size=6)
    first = pytester.runpytest("--model=fake", "--suite-size=smoke", "--collect-only", "-q")
    second = pytester.runpytest("--model=fake", "--suite-size=smoke", "--collect-only", "-q")
    ids = [line for line in first.outlines if "test_mini_asr[" in line]
    assert ids == [line for line in second.outlines if "test_mini_asr[" in line]
    assert len(ids) == 6
    assert sum("-ann]" in line for line in ids) == 3


def test_aspect_markers_select_scenarios_and_gates(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=2)
    chosen = pytester.runpytest("--model=fake", "-m", "perception")
    chosen.assert_outcomes(passed=4 + 2)
    other = pytester.runpytest("--model=fake", "-m", "bias")
    assert other.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert len(runs(pytester)) == 1


def test_plugin_leaves_ordinary_tests_alone(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    pytester.makepyfile(test_plain="def test_ok():\n    assert 1\n\ndef test_bad():\n    assert 0\n")
    result = pytester.runpytest("test_plain.py")
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == 1
    assert "ahelm release gates" not in result.stdout.str()
    assert runs(pytester) == []


def test_run_folder_contents(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=2, wrong=["s01-bob"], gates='["wer <= 0.5"]')
    pytester.runpytest("--model=fake")
    run = runs(pytester)[-1]
    assert sorted(p.name for p in run.iterdir()) == ["instances.jsonl", "report.html", "summary.json", "summary.md"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["model"]["provider"] == "python"
    assert summary["counts"] == {"pass": 3, "fail": 1, "error": 0, "total": 4}
    wer = summary["scenarios"]["mini_asr"]["metrics"]["wer"]
    assert wer["value"] > 0 and wer["ci95"][0] <= wer["value"] <= wer["ci95"][1]
    assert "wer[gender=male]" in summary["scenarios"]["mini_asr"]["metrics"]
    assert {"ahelm", "pytest", "jiwer", "scipy"} <= set(summary["versions"])
    records = [json.loads(line) for line in (run / "instances.jsonl").open()]
    assert len(records) == 4
    wrong = next(r for r in records if r["id"] == "s01-bob")
    assert wrong["status"] == "fail" and wrong["output"] == "completely different words here"
    assert wrong["prompt"].startswith("Transcribe the speech")
    assert wrong["scores"]["wer"] == 1.0
    markdown = (run / "summary.md").read_text()
    assert "## Verdict: PASS" in markdown
    assert "completely different words here" in markdown


def test_model_output_is_escaped_in_markdown(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=1, reply="<script>alert(1)</script> | x")
    pytester.runpytest("--model=fake")
    markdown = (runs(pytester)[-1] / "summary.md").read_text()
    assert "<script>" not in markdown
    assert "&lt;script&gt;alert(1)&lt;/script&gt; \\| x" in markdown


def test_corrupt_audio_fails_that_instance_only(pytester: pytest.Pytester) -> None:
    project = make_project(pytester, sentences=3)
    (project["scenario"] / "audio" / "s02-ann.flac").write_bytes(b"not audio at all")
    (pytester.path / "fakemodel.py").write_text(
        (pytester.path / "fakemodel.py").read_text().replace(
            "    def generate(self, request):\n",
            "    def generate(self, request):\n        request.audio.read_verified()\n",
        )
    )
    result = pytester.runpytest("--model=fake")
    result.assert_outcomes(passed=5 + 1, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*s02-ann: audio error: audio file *s02-ann.flac does not match*"])


def test_fairness_gate_detects_a_group_gap(pytester: pytest.Pytester) -> None:
    wrong = [f"s{i:02d}-ann" for i in range(1, 12, 2)]
    make_project(pytester, sentences=12, wrong=wrong, gates='["wer <= 1.0"]',
                 policy_extra='fairness = [{ metric = "wer", by = "gender", max_gap = 0.05, '
                              'alpha = 0.05 }]')
    result = pytester.runpytest("--model=fake")
    assert result.ret == 1
    result.stdout.re_match_lines([
        r".*gate failed: mini_asr wer by gender: female 0\.\d+, male 0\.0000; worst female vs "
        r"best male: gap 0\.\d+ \(exceeds 0\.05\); wilcoxon signed-rank on 12 pairs.*",
    ])
    gate = next(g for g in last_summary(pytester)["gates"] if g["kind"] == "fairness")
    assert gate["details"]["paired"] is True
    assert gate["details"]["test"]["test"] == "wilcoxon signed-rank"
    assert gate["details"]["worst"] == "female"


def test_regression_gate_against_a_baseline(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=12, gates='["wer <= 1.0"]',
                 policy_extra='regression = [{ metric = "correct", margin = 0.0, alpha = 0.05 }]')
    assert pytester.runpytest("--model=fake").ret == 0
    baseline = runs(pytester)[-1]
    same = pytester.runpytest("--model=fake", f"--baseline={baseline}")
    assert same.ret == 0
    same.stdout.fnmatch_lines(["*mini_asr:regression:correct*pass*"])
    # the candidate gets 10 of 24 answers wrong: a real regression on the same instances
    config = pytester.path / "model_configs" / "fake.toml"
    wrong = [f"s{i:02d}-{v}" for i in range(1, 6) for v in ("ann", "bob")]
    config.write_text(config.read_text().replace('wrong = []', f"wrong = {json.dumps(wrong)}"))
    worse = pytester.runpytest("--model=fake", f"--baseline={baseline / 'summary.json'}")
    assert worse.ret == 1
    worse.stdout.fnmatch_lines(["*gate failed: mini_asr:*mcnemar exact*"])
    gate = next(g for g in last_summary(pytester)["gates"] if g["kind"] == "regression")
    assert gate["passed"] is False and gate["n"] == 24


def test_regression_reports_instances_in_only_one_run(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=6, gates='["wer <= 1.0"]',
                 policy_extra='regression = [{ metric = "wer", margin = 0.01, alpha = 0.05 }]')
    pytester.runpytest("--model=fake")
    baseline = runs(pytester)[-1]
    lines = (baseline / "instances.jsonl").read_text().splitlines()
    (baseline / "instances.jsonl").write_text("\n".join(lines[2:]) + "\n")
    result = pytester.runpytest("--model=fake", f"--baseline={baseline}")
    assert result.ret == 0
    gate = next(g for g in last_summary(pytester)["gates"] if g["kind"] == "regression")
    assert gate["passed"] is True
    assert sorted(gate["details"]["only_in_candidate"]) == ["s01-ann", "s01-bob"]
    assert "2 only in this run (s01-ann, s01-bob)" in gate["message"]


def test_bad_baseline_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=2)
    result = pytester.runpytest("--model=fake", "--baseline=no/such/run")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--baseline no/such/run: cannot read the run" in result.stderr.str()
    assert calls(pytester) == []


def test_gate_verdicts_in_junit_xml(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=3, wrong=["s01-ann", "s02-ann"])
    pytester.runpytest("--model=fake", "--junitxml=junit.xml")
    xml = (pytester.path / "junit.xml").read_text()
    assert 'name="gate[mini_asr:wer&lt;=0.2]"' in xml
    assert "gate failed: mini_asr wer = 0.3333" in xml
    assert 'name="ahelm_gate_kind" value="threshold"' in xml
