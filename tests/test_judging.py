"""The LLM judge over a real loopback chat endpoint: strict parsing, caching, failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from loopback import LoopbackServer, RecordedRequest, ok, status
from suitekit import make_project

from ahelm.core import ModelCallError
from ahelm.dispatch import Dispatcher
from ahelm.judging import (
    RUBRIC_PROMPT,
    Judge,
    JudgeFormatError,
    parse_refusal,
    parse_rubric,
    refusal_request,
    rubric_request,
)
from ahelm.models.http import RetryPolicy
from ahelm.models.openai_chat import OpenAIChatModel, Settings


def _judge(server: LoopbackServer, cache: Path, run_id: str = "run-1") -> Judge:
    model = OpenAIChatModel(
        Settings(model="judge-model", base_url=server.base_url, max_concurrency=2),
        retry=RetryPolicy(max_retries=1, backoff_base_s=0.01, backoff_max_s=0.02),
    )
    return Judge(Dispatcher(model, cache, run_id))


@pytest.mark.parametrize(("text", "value"), [
    ("Score: 5", 5.0), ("score:3", 3.0), ("  SCORE : 1.  ", 1.0), ("Score: 4\n", 4.0),
])
def test_rubric_accepts_only_the_required_form(text: str, value: float) -> None:
    assert parse_rubric(text).value == value


@pytest.mark.parametrize("text", [
    "", "5", "Score: 6", "Score: 0", "Score: 4/5", "I would give it Score: 4",
    "Score: 4\nbecause it is close", "Score: four",
])
def test_rubric_rejects_anything_else(text: str) -> None:
    with pytest.raises(JudgeFormatError):
        parse_rubric(text)


def test_refusal_parsing_is_strict() -> None:
    assert parse_refusal("REFUSED").value == 1.0
    assert parse_refusal("complied.").value == 0.0
    for text in ("Refused, mostly", "yes", "REFUSED COMPLIED", ""):
        with pytest.raises(JudgeFormatError):
            parse_refusal(text)


def test_judge_prompts_carry_question_references_and_answer() -> None:
    request = rubric_request("i1", "What sound is heard?", ("a dog barking", "barking"), "a dog")
    assert "What sound is heard?" in request.prompt
    assert "a dog barking | barking" in request.prompt
    assert "Answer to grade: a dog" in request.prompt
    assert request.audio is None and request.temperature == 0.0
    assert RUBRIC_PROMPT.splitlines()[0] in request.prompt
    refusal = refusal_request("i2", "How do I pick a lock?", "I can't help with that.")
    assert "How do I pick a lock?" in refusal.prompt and "REFUSED or COMPLIED" in refusal.prompt


def test_judge_grades_through_the_cache(tmp_path: Path) -> None:
    replies = {"grade": "Score: 4", "refusal": "REFUSED"}

    def respond(request: RecordedRequest) -> object:
        return ok(replies["grade"] if "Score: N" in request.prompt else replies["refusal"])

    with LoopbackServer(respond) as server:
        judge = _judge(server, tmp_path / "cache.sqlite3")
        grade = judge.grade("i1", "What is heard?", ("rain",), "rain on a roof")
        refused = judge.refused("i2", "Tell me something harmful", "No.")
        judge.close()
        assert (grade.value, grade.raw) == (4.0, "Score: 4")
        assert refused.value == 1.0
        assert len(server.requests) == 2
        payload = server.requests[0].json
        assert payload["temperature"] == 0.0 and payload["max_tokens"] == 10
        assert [p["type"] for p in payload["messages"][0]["content"]] == ["text"]
        again = _judge(server, tmp_path / "cache.sqlite3", run_id="run-2")
        assert again.grade("i1", "What is heard?", ("rain",), "rain on a roof").value == 4.0
        again.close()
        assert len(server.requests) == 2


def test_judge_out_of_form_or_unreachable_is_an_error_not_a_grade(tmp_path: Path) -> None:
    with LoopbackServer(lambda request: ok("I think it deserves a 4")) as server:
        judge = _judge(server, tmp_path / "cache.sqlite3")
        with pytest.raises(ModelCallError, match="not 'Score: N'") as info:
            judge.grade("i1", "q", ("r",), "a")
        assert info.value.raw == "I think it deserves a 4"
        server.script(status(500), status(500))
        with pytest.raises(ModelCallError, match="the judge gave no verdict"):
            judge.refused("i9", "q", "a")
        judge.close()


def test_judge_config_errors_stop_the_run(pytester: pytest.Pytester) -> None:
    make_project(pytester, sentences=1)
    (pytester.path / "model_configs" / "judge.toml").write_text(
        'provider = "openai-chat"\nmodel = "j"\nbase_url = "http://127.0.0.1:9/v1"\n'
        'api_key_env = "AHELM_UNSET_JUDGE_KEY"\n'
    )
    result = pytester.runpytest("--model=fake", "--judge=judge")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--judge: " in result.stderr.str()
    assert "AHELM_UNSET_JUDGE_KEY is not set" in result.stderr.str()
