"""The plugin with a real HTTP model: concurrency without xdist, transport errors, Allure output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from loopback import LoopbackServer, RecordedRequest, ok, sleep, status
from suitekit import SENTENCES, last_summary, make_project

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _openai_config(pytester: pytest.Pytester, server: LoopbackServer, **settings: object) -> None:
    lines = [
        'provider = "openai-chat"',
        'model = "loopback-audio"',
        f'base_url = "{server.base_url}"',
        *(f"{k} = {json.dumps(v)}" for k, v in settings.items()),
    ]
    (pytester.path / "model_configs" / "http.toml").write_text("\n".join(lines) + "\n")


def test_requests_are_concurrent_without_xdist(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=8)
    with LoopbackServer(lambda request: sleep(0.3, ok(SENTENCES[0]))) as server:
        _openai_config(pytester, server, max_concurrency=4)
        result = pytester.runpytest("--model=http")
        assert len(server.requests) == 16
        assert server.max_in_flight == 4
    result.assert_outcomes(passed=2 + 1, failed=14 + 1)  # s01 right for both voices
    summary = last_summary(pytester)
    assert summary["dispatch"]["model_calls"] == 16
    payload = server.requests[0].json
    assert payload["model"] == "loopback-audio"
    assert payload["temperature"] == 0.0
    assert payload["max_tokens"] == 100
    kinds = [part["type"] for part in payload["messages"][0]["content"]]
    assert kinds == ["input_audio", "text"]


def test_retry_after_then_success_and_hard_failures(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=2)
    truths = iter([])

    def responder(request: RecordedRequest) -> object:
        return ok(next(truths, "unexpected"))

    with LoopbackServer(responder) as server:
        _openai_config(pytester, server, max_concurrency=1, max_retries=1, timeout_s=5.0)
        server.script(status(429, {"Retry-After": "1"}), ok(SENTENCES[0]), status(400))
        result = pytester.runpytest("--model=http", "-p", "no:randomly")
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors") == 1
    result.stdout.fnmatch_lines(["*transport error*400*"])
    records = [json.loads(line) for line in next((pytester.path / "reports" / "runs").glob(
        "*/instances.jsonl")).open()]
    assert sum(r["status"] == "error" for r in records) == 1
    assert len(server.requests) == 5  # 429 + retry, 400 (no retry), two more answers


def test_api_key_never_reaches_the_artifacts(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "sk-canary-7f3a9c2e55d14b0b"
    monkeypatch.setenv("AHELM_CANARY_KEY", canary)
    make_project(pytester, sentences=2)
    with LoopbackServer(lambda request: ok(f"echo {request.headers.get('authorization')}")) as server:
        _openai_config(pytester, server, api_key_env="AHELM_CANARY_KEY")
        server.script(status(500, body={"error": f"bad key {canary}"}))
        result = pytester.runpytest("--model=http", f"--alluredir={pytester.path / 'allure'}")
        assert server.requests[0].headers["authorization"] == f"Bearer {canary}"
    assert canary not in result.stdout.str() + result.stderr.str()
    for path in Path(pytester.path / "reports").rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path
    for path in Path(pytester.path / "allure").rglob("*"):
        assert canary.encode() not in path.read_bytes(), path


def test_allure_results_carry_hierarchy_audio_and_gates(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=2, wrong=["s01-bob"])
    alluredir = pytester.path / "allure"
    result = pytester.runpytest("--model=fake", f"--alluredir={alluredir}")
    assert result.ret in (0, 1)
    results = [json.loads(p.read_text()) for p in alluredir.glob("*-result.json")]
    by_name = {r["name"]: r for r in results}
    assert "mini_asr · s01-bob" in by_name
    instance = by_name["mini_asr · s01-bob"]
    labels = {(label["name"], label["value"]) for label in instance["labels"]}
    assert {("parentSuite", "perception"), ("suite", "mini_asr"), ("epic", "perception"),
            ("feature", "mini_asr"), ("tag", "gender=male")} <= labels
    assert instance["status"] == "failed"
    attachments = {a["name"]: a for a in instance["attachments"]}
    assert {"audio", "prompt", "output", "expected", "scores"} <= set(attachments)
    player = (alluredir / attachments["audio"]["source"]).read_text()
    assert "<audio controls" in player and "data:audio/flac;base64," in player
    output = (alluredir / attachments["output"]["source"]).read_text()
    assert output == "completely different words here"
    gates = [r for r in results if r["name"].startswith("threshold gate on mini_asr: ")]
    assert len(gates) == 2
    assert all(("tag", "gate") in {(lab["name"], lab["value"]) for lab in g["labels"]}
               for g in gates)
    assert any("wer" in g.get("description", "") and "95% CI" in g["description"] for g in gates)
    assert os.path.getsize(alluredir / attachments["audio"]["source"]) > 1000


def test_malformed_and_empty_answers_keep_their_raw_body(pytester: pytest.Pytester) -> None:
    from loopback import empty_choices, raw

    make_project(pytester, sentences=1)
    with LoopbackServer(lambda request: ok(SENTENCES[0])) as server:
        _openai_config(pytester, server, max_concurrency=1, max_retries=0)
        server.script(raw('{"choices": [{"message": {"content": "trunc'), empty_choices())
        result = pytester.runpytest("--model=http", "-p", "no:randomly")
    result.assert_outcomes(errors=2, failed=2)  # both gates: no evidence, error budget spent
    records = [json.loads(line) for line in next((pytester.path / "reports" / "runs").glob(
        "*/instances.jsonl")).open()]
    by_id = {r["id"]: r for r in records}
    assert by_id["s01-ann"]["status"] == "error"
    assert '{"choices": [{"message": {"content": "trunc' in by_id["s01-ann"]["raw"]
    assert "not valid JSON" in by_id["s01-ann"]["error"]
    assert by_id["s01-bob"]["status"] == "error"
    assert json.loads(by_id["s01-bob"]["raw"])["choices"] == []


def test_allure_environment_and_categories(pytester: pytest.Pytester) -> None:
    import re

    make_project(pytester, sentences=2, wrong=["s01-bob"], fail=["s02-ann"])
    alluredir = pytester.path / "allure"
    pytester.runpytest("--model=fake", f"--alluredir={alluredir}")
    properties = (alluredir / "environment.properties").read_text()
    assert "model=fake\n" in properties and "provider=python\n" in properties
    assert re.search(r"^model_config_digest=[0-9a-f]{16}$", properties, re.MULTILINE)
    assert re.search(r"^version\.ahelm=", properties, re.MULTILINE)
    categories = json.loads((alluredir / "categories.json").read_text())
    results = [json.loads(p.read_text()) for p in alluredir.glob("*-result.json")]

    def category(result: dict[str, object]) -> str | None:
        message = str((result.get("statusDetails") or {}).get("message", ""))  # type: ignore[union-attr]
        for entry in categories:
            if result["status"] in entry["matchedStatuses"] and re.fullmatch(
                    entry["messageRegex"], message):
                return str(entry["name"])
        return None

    by_name = {str(r["name"]): category(r) for r in results if r["status"] != "passed"}
    assert by_name["mini_asr · s01-bob"] == "Wrong answers"
    assert by_name["mini_asr · s02-ann"] == "Transport errors"
    assert any(name.startswith("threshold gate") and value == "Gate failures"
               for name, value in by_name.items())
