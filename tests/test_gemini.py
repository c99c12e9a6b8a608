"""The gemini adapter against a real loopback server speaking generateContent."""

from __future__ import annotations

import dataclasses
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from loopback import LoopbackServer, RecordedRequest, Reply, drop, raw, sleep
from loopback_gemini import (
    blocked,
    error,
    finish,
    gemini_base_url,
    gemini_server,
    inline_audio,
    ok,
    parts,
    usage,
)
from modelkit import fails, generate, tone_clip

from ahelm.config import ConfigError, load_model_config, parse_settings
from ahelm.core import AudioClip, ModelCallError, Request
from ahelm.models import PROVIDERS, Model, build_model, validate_config
from ahelm.models.gemini import GeminiModel, Settings, create
from ahelm.models.http import RetryPolicy

__all__ = ["gemini_server"]

ROOT = Path(__file__).resolve().parents[1]
FAST = RetryPolicy(max_retries=3, backoff_base_s=0.01, backoff_max_s=0.05, jitter=0.0)
KEY_ENV = "AHELM_TEST_GEMINI_KEY"
CANARY = "AIza-canary-do-not-leak-51c0e2"
SAFETY = {"HARM_CATEGORY_HARASSMENT": "BLOCK_NONE", "HARM_CATEGORY_HATE_SPEECH": "OFF"}


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, CANARY)


@pytest.fixture
def clip(tmp_path: Path) -> AudioClip:
    return tone_clip(tmp_path)


def make_model(server: LoopbackServer, **overrides: Any) -> GeminiModel:
    retry = overrides.pop("retry", FAST)
    settings = Settings(
        model="gemini-test", api_key_env=KEY_ENV, base_url=gemini_base_url(server), **overrides
    )
    return GeminiModel(settings, retry=retry)


def ask(clip: AudioClip | None, prompt: str = "What is the tone?", max_tokens: int = 32) -> Request:
    return Request(instance_id="i1", prompt=prompt, audio=clip, max_tokens=max_tokens)


def test_success_sends_the_exact_request(gemini_server: LoopbackServer, clip: AudioClip) -> None:
    gemini_server.script(ok(" A pure tone. \n", meta=usage(20, 4)))
    model = make_model(gemini_server, safety_settings=SAFETY, thinking_budget=128)
    (response,) = generate(model, ask(clip))

    (request,) = gemini_server.requests
    assert request.method == "POST"
    assert request.path == "/v1beta/models/gemini-test:generateContent"
    assert request.headers["x-goog-api-key"] == CANARY
    assert "authorization" not in request.headers
    assert request.headers["content-type"] == "application/json"
    body = request.json
    assert set(body) == {"contents", "generationConfig", "safetySettings"}
    (content,) = body["contents"]
    assert content["role"] == "user"
    audio_part, text_part = content["parts"]
    assert set(audio_part) == {"inlineData"} and text_part == {"text": "What is the tone?"}
    mime, wav = inline_audio(request)
    assert mime == "audio/wav"
    info = sf.info(io.BytesIO(wav))
    assert (info.samplerate, info.channels, info.format, info.subtype) == (
        16_000, 1, "WAV", "PCM_16"
    )
    samples, _ = sf.read(io.BytesIO(wav))
    assert samples.shape == (8000,) and 0.25 < np.abs(samples).max() < 0.35
    assert body["generationConfig"] == {
        "temperature": 0.0,
        "maxOutputTokens": 32 + 128,
        "candidateCount": 1,
        "thinkingConfig": {"thinkingBudget": 128},
    }
    assert body["safetySettings"] == [
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"},
        {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"},
    ]

    assert response.text == " A pure tone. \n"
    assert response.usage == {"prompt_tokens": 20, "completion_tokens": 4, "total_tokens": 24}
    assert response.raw is not None and json.loads(response.raw)["responseId"] == "loopback"
    assert 0 < response.latency_s < 5


def test_defaults_send_only_what_is_configured(gemini_server: LoopbackServer) -> None:
    (response,) = generate(make_model(gemini_server), ask(None, prompt="Say hi", max_tokens=7))
    body = gemini_server.requests[0].json
    assert set(body) == {"contents", "generationConfig"}
    assert parts(gemini_server.requests[0]) == [{"text": "Say hi"}]
    config = body["generationConfig"]
    assert config == {"temperature": 0.0, "maxOutputTokens": 7, "candidateCount": 1}
    assert response.text == "Say hi"

    gemini_server.reset()
    generate(make_model(gemini_server, max_output_tokens=300, temperature=0.5), ask(None))
    config = gemini_server.requests[0].json["generationConfig"]
    assert config["maxOutputTokens"] == 300 and config["temperature"] == 0.5


def test_thought_parts_are_skipped_and_counted(gemini_server: LoopbackServer) -> None:
    gemini_server.script(ok("C major.", thought="Let me listen...", meta=usage(10, 2, thoughts=50)))
    (response,) = generate(make_model(gemini_server), ask(None))
    assert response.text == "C major."
    assert response.usage == {
        "prompt_tokens": 10,
        "completion_tokens": 2,
        "thoughts_tokens": 50,
        "total_tokens": 62,
    }


def test_truncated_answer_is_still_an_answer(gemini_server: LoopbackServer) -> None:
    gemini_server.script(finish("MAX_TOKENS", "The tone is a"))
    (response,) = generate(make_model(gemini_server), ask(None))
    assert response.text == "The tone is a"


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (blocked("PROHIBITED_CONTENT"), "blocked by Gemini safety filters: PROHIBITED_CONTENT"),
        (finish("SAFETY"), "no answer: finishReason SAFETY (blocked: HARM_CATEGORY_HARASSMENT)"),
        (finish("RECITATION", "Half a lyric"), "finishReason RECITATION; the text so far was"),
        (finish("PROHIBITED_CONTENT"), "no answer: finishReason PROHIBITED_CONTENT"),
        (finish("MAX_TOKENS", meta=usage(10, 0, thoughts=32)), "thinking used 32 tokens"),
        (finish("STOP", ""), "has no text (finishReason STOP)"),
        (error(200, "INTERNAL", "backend hiccup"), "error 200 INTERNAL: backend hiccup"),
        (raw('{"candidates": [{"content": {"parts": [{"text": "trunc'), "not valid JSON"),
        (raw("<html>Bad gateway</html>", content_type="text/html"), "not valid JSON"),
        (raw('{"usageMetadata": {}}'), "has no candidates"),
    ],
    ids=[
        "prompt-blocked", "safety", "recitation", "prohibited", "thinking-ate-budget",
        "empty-text", "error-object", "truncated-json", "html", "no-candidates",
    ],
)  # fmt: skip
def test_unusable_answers_are_model_call_errors_with_raw_kept(
    gemini_server: LoopbackServer, behaviour: Reply, expected: str
) -> None:
    gemini_server.script(behaviour)
    failure = fails(make_model(gemini_server), ask(None))
    assert expected in failure.message
    assert failure.raw == behaviour.body.decode()
    assert len(gemini_server.requests) == 1


@pytest.mark.parametrize(
    ("first", "wait"),
    [
        (error(429, "RESOURCE_EXHAUSTED", headers={"Retry-After": "1"}), 0.99),
        (error(503, "UNAVAILABLE", "The model is overloaded.", {"Retry-After": "1"}), 0.99),
        (error(500, "INTERNAL"), 0.0),
        (drop(), 0.0),
    ],
    ids=["429-retry-after", "503-retry-after", "500", "drop"],
)
def test_transient_failures_then_success(
    gemini_server: LoopbackServer, first: Any, wait: float
) -> None:
    gemini_server.script(first, ok("recovered"))
    (response,) = generate(make_model(gemini_server), ask(None))
    earlier, later = gemini_server.requests
    assert later.arrived_at - earlier.arrived_at >= wait
    assert later.json == earlier.json
    assert response.text == "recovered" and response.latency_s >= wait


def test_timeout_gives_up_after_bounded_attempts(gemini_server: LoopbackServer) -> None:
    gemini_server.responder = lambda request: sleep(5, ok("too slow"))
    model = make_model(
        gemini_server, timeout_s=0.25, retry=dataclasses.replace(FAST, max_retries=2)
    )
    started = time.monotonic()
    failure = fails(model, ask(None))
    assert time.monotonic() - started < 3
    assert len(gemini_server.requests) == 3
    assert "after 3 attempt(s)" in failure.message and "timed out" in failure.message


def test_bad_request_is_not_retried_and_says_why(gemini_server: LoopbackServer) -> None:
    gemini_server.script(error(400, "INVALID_ARGUMENT", "API key not valid."))
    failure = fails(make_model(gemini_server), ask(None))
    assert len(gemini_server.requests) == 1
    assert "HTTP 400" in failure.message and "API key not valid." in failure.message


def echo_key(request: RecordedRequest) -> str:
    return f"you sent {request.headers.get('x-goog-api-key')}"


def test_api_key_travels_only_in_its_header(gemini_server: LoopbackServer) -> None:
    model = make_model(gemini_server)
    assert CANARY not in repr(model) + model.fingerprint + repr(model.settings)

    (response,) = generate(model, ask(None))
    leaks: list[str] = [response.raw or "", response.text]
    gemini_server.reset()
    for behaviour in (
        lambda r: ok(echo_key(r)),
        lambda r: error(400, "INVALID_ARGUMENT", echo_key(r)),
        lambda r: error(503, "UNAVAILABLE", echo_key(r)),
        lambda r: error(200, "INTERNAL", echo_key(r)),
        lambda r: blocked(echo_key(r)),
        lambda r: raw("{" + echo_key(r)),
    ):
        gemini_server.responder = behaviour
        model = make_model(gemini_server, retry=dataclasses.replace(FAST, max_retries=1))
        try:
            (response,) = generate(model, ask(None))
            leaks += [response.text, response.raw or ""]
        except ModelCallError as failure:
            leaks += [str(failure), failure.message, failure.raw or "", repr(failure)]
    for request in gemini_server.requests:
        assert request.headers["x-goog-api-key"] == CANARY
        assert CANARY not in request.path and "?" not in request.path
        assert CANARY not in request.body.decode()
    assert not [text for text in leaks if CANARY in text]
    assert sum("[REDACTED]" in text for text in leaks) >= 6


def test_fingerprint_names_what_changes_answers_only() -> None:
    base = Settings(model="gemini-2.5-pro", api_key_env=KEY_ENV)
    fp = create(base).fingerprint
    assert fp.startswith("gemini:") and '"model":"gemini-2.5-pro"' in fp
    assert "generativelanguage.googleapis.com/v1beta" in fp and CANARY not in fp
    for knob in ({"timeout_s": 5.0}, {"max_concurrency": 2}, {"max_retries": 0}):
        assert create(dataclasses.replace(base, **knob)).fingerprint == fp
    assert create(dataclasses.replace(base, base_url=base.base_url + "/")).fingerprint == fp
    for change in (
        {"model": "gemini-2.5-flash"},
        {"base_url": "https://proxy.example/v1beta"},
        {"temperature": 0.5},
        {"max_output_tokens": 10},
        {"safety_settings": {"HARM_CATEGORY_HARASSMENT": "BLOCK_NONE"}},
        {"thinking_budget": 128},
    ):
        assert create(dataclasses.replace(base, **change)).fingerprint != fp
    model = create(base)
    assert isinstance(model, Model) and model.max_concurrency == 8


@pytest.mark.parametrize(
    ("table", "field", "says"),
    [
        ({"safety_settings": {"HARM_CATEGORY_GORE": "BLOCK_NONE"}}, "safety_settings", "GORE"),
        ({"safety_settings": {"HARM_CATEGORY_HARASSMENT": "NEVER"}}, "safety_settings", "NEVER"),
        ({"model": "models/gemini-2.5-pro"}, "model", "drop the 'models/' prefix"),
        ({"base_url": "generativelanguage.googleapis.com"}, "base_url", "http"),
        ({"temperature": 2.5}, "temperature", "between 0 and 2"),
        ({"max_output_tokens": 0}, "max_output_tokens", "at least 1"),
        ({"thinking_budget": -2}, "thinking_budget", "-1"),
        ({"max_concurrency": 0}, "max_concurrency", "at least 1"),
        ({"api_key_env": "AHELM_UNSET_VAR"}, "api_key_env", "AHELM_UNSET_VAR is not set"),
    ],
)
def test_bad_settings_name_the_field(table: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(Settings, {"model": "gemini-2.5-pro", "api_key_env": KEY_ENV, **table}, "x")
    assert info.value.field == field and says in info.value.message


def test_shipped_config_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", CANARY)
    config = load_model_config("gemini-2.5-pro", ROOT)
    assert config.provider == "gemini" and config.name == "gemini-2.5-pro"
    settings = parse_settings(Settings, config.settings, config.path)
    assert settings.model == "gemini-2.5-pro" and settings.api_key_env == "GEMINI_API_KEY"
    assert settings.thinking_budget is not None and settings.thinking_budget >= 128
    model = create(settings)
    assert CANARY not in model.fingerprint + repr(model) + repr(config.public())

    monkeypatch.delenv("GEMINI_API_KEY")
    with pytest.raises(ConfigError, match="GEMINI_API_KEY is not set"):
        parse_settings(Settings, config.settings, config.path)


@pytest.mark.skipif("gemini" not in PROVIDERS, reason="provider not registered in ahelm.models")
def test_registered_provider_builds_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", CANARY)
    config = load_model_config("gemini-2.5-pro", ROOT)
    assert isinstance(validate_config(config), Settings)
    assert isinstance(build_model(config), GeminiModel)
