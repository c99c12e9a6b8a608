"""The openai-chat adapter against a real loopback server speaking the OpenAI wire format."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from loopback import (
    Behaviour,
    LoopbackServer,
    RecordedRequest,
    completion,
    drop,
    empty_choices,
    json_reply,
    loopback_server,
    ok,
    raw,
    sleep,
    status,
)
from modelkit import fails, generate, tone_clip

from ahelm.config import ConfigError, load_model_config, parse_settings
from ahelm.core import AudioClip, AudioError, ModelCallError, Request
from ahelm.models import Model, build_model, validate_config
from ahelm.models.http import RetryPolicy
from ahelm.models.openai_chat import OpenAIChatModel, Settings, create

__all__ = ["loopback_server"]

ROOT = Path(__file__).resolve().parents[1]
FAST = RetryPolicy(max_retries=3, backoff_base_s=0.01, backoff_max_s=0.05, jitter=0.0)
KEY_ENV = "AHELM_TEST_OPENAI_KEY"
CANARY = "sk-canary-do-not-leak-7f3a9c"


@pytest.fixture
def clip(tmp_path: Path) -> AudioClip:
    return tone_clip(tmp_path)


def make_model(server: LoopbackServer, **overrides: Any) -> OpenAIChatModel:
    retry = overrides.pop("retry", FAST)
    settings = Settings(model="gpt-test", base_url=server.base_url, **overrides)
    return OpenAIChatModel(settings, retry=retry)


def ask(clip: AudioClip | None, prompt: str = "What is the tone?", max_tokens: int = 32) -> Request:
    return Request(instance_id="i1", prompt=prompt, audio=clip, max_tokens=max_tokens)


def test_success_sends_the_exact_payload(loopback_server: LoopbackServer, clip: AudioClip) -> None:
    loopback_server.script(ok(" A pure tone. \n"))
    (response,) = generate(make_model(loopback_server), ask(clip))

    (request,) = loopback_server.requests
    assert request.method == "POST" and request.path == "/v1/chat/completions"
    assert "authorization" not in request.headers
    body = request.json
    assert set(body) == {"model", "messages", "temperature", "max_tokens"}
    assert body["model"] == "gpt-test" and body["temperature"] == 0
    assert body["max_tokens"] == 32
    (message,) = body["messages"]
    assert message["role"] == "user"
    audio_part, text_part = message["content"]
    assert text_part == {"type": "text", "text": "What is the tone?"}
    assert audio_part["type"] == "input_audio"
    assert audio_part["input_audio"]["format"] == "wav"
    samples, rate = sf.read(io.BytesIO(base64.b64decode(audio_part["input_audio"]["data"])))
    info = sf.info(io.BytesIO(base64.b64decode(audio_part["input_audio"]["data"])))
    assert (rate, info.channels, info.format, info.subtype) == (16_000, 1, "WAV", "PCM_16")
    assert samples.shape == (8000,) and 0.25 < np.abs(samples).max() < 0.35

    assert response.text == " A pure tone. \n"
    assert response.usage == {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
    assert response.raw is not None
    assert json.loads(response.raw)["choices"][0]["message"]["content"] == " A pure tone. \n"
    assert 0 < response.latency_s < 5


def test_audio_is_resampled_and_downmixed(loopback_server: LoopbackServer, tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    sf.write(path, np.zeros((44_100, 2), dtype=np.float32), 44_100)
    stereo = AudioClip(path, hashlib.sha256(path.read_bytes()).hexdigest())
    generate(make_model(loopback_server), ask(stereo))
    part = loopback_server.requests[0].content_parts()[0]
    info = sf.info(io.BytesIO(base64.b64decode(part["input_audio"]["data"])))
    assert (info.samplerate, info.channels, info.frames) == (16_000, 1, 16_000)


def test_text_only_request_has_just_the_text_part(loopback_server: LoopbackServer) -> None:
    (response,) = generate(make_model(loopback_server), ask(None, prompt="Say hi"))
    assert loopback_server.requests[0].json["messages"][0]["content"] == [
        {"type": "text", "text": "Say hi"}
    ]
    assert response.text == "Say hi"


def test_settings_override_tokens_field_and_merge_extra_body(
    loopback_server: LoopbackServer,
) -> None:
    model = make_model(
        loopback_server,
        temperature=0.7,
        max_tokens=200,
        max_tokens_field="max_completion_tokens",
        extra_body={"top_k": 1, "chat_template_kwargs": {"x": True}},
    )
    generate(model, ask(None))
    body = loopback_server.requests[0].json
    assert body["max_completion_tokens"] == 200 and "max_tokens" not in body
    assert body["temperature"] == 0.7
    assert body["top_k"] == 1 and body["chat_template_kwargs"] == {"x": True}


def test_content_as_list_of_text_parts(loopback_server: LoopbackServer) -> None:
    loopback_server.script(ok("from parts", parts=True))
    (response,) = generate(make_model(loopback_server), ask(None))
    assert response.text == "from parts"


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (empty_choices(), "has no choices"),
        (json_reply({"error": {"message": "overloaded"}}), "has no 'choices' list: error"),
        (json_reply(completion(None)), "null content"),
        (json_reply(["not", "an", "object"]), "not an object"),
        (raw('{"choices": [{"message": {"content": "trunc'), "not valid JSON"),
        (raw("<html>Bad gateway</html>", content_type="text/html"), "not valid JSON"),
    ],
    ids=["empty-choices", "no-choices", "null-content", "non-object", "truncated", "html"],
)
def test_unusable_bodies_are_model_call_errors_with_raw_kept(
    loopback_server: LoopbackServer, behaviour: Any, expected: str
) -> None:
    loopback_server.script(behaviour)
    error = fails(make_model(loopback_server), ask(None))
    assert expected in error.message
    assert error.raw == behaviour.body.decode()
    assert len(loopback_server.requests) == 1


def test_refusal_is_reported(loopback_server: LoopbackServer) -> None:
    body = completion(None)
    body["choices"][0]["message"]["refusal"] = "I can't help with that."
    loopback_server.script(json_reply(body))
    error = fails(make_model(loopback_server), ask(None))
    assert "refused: I can't help with that." in error.message


def test_429_with_retry_after_then_success(loopback_server: LoopbackServer) -> None:
    loopback_server.script(status(429, {"Retry-After": "1"}), ok("patience"))
    (response,) = generate(make_model(loopback_server), ask(None))
    first, second = loopback_server.requests
    assert second.arrived_at - first.arrived_at >= 0.99
    assert response.text == "patience" and response.latency_s >= 0.99


@pytest.mark.parametrize(
    "failures",
    [[status(500)], [status(503), status(503)], [drop()], [drop(reset=True)]],
    ids=["500", "503x2", "drop", "reset"],
)
def test_transient_failures_then_success(
    loopback_server: LoopbackServer, failures: list[Behaviour]
) -> None:
    loopback_server.script(*failures, ok("recovered"))
    (response,) = generate(make_model(loopback_server), ask(None))
    assert response.text == "recovered"
    assert len(loopback_server.requests) == len(failures) + 1


def test_timeout_gives_up_after_bounded_attempts(loopback_server: LoopbackServer) -> None:
    loopback_server.responder = lambda request: sleep(5, ok("too slow"))
    model = make_model(
        loopback_server, timeout_s=0.25, retry=dataclasses.replace(FAST, max_retries=2)
    )
    started = time.monotonic()
    error = fails(model, ask(None))
    assert time.monotonic() - started < 3
    assert len(loopback_server.requests) == 3
    assert "after 3 attempt(s)" in error.message and "timed out" in error.message


def test_401_is_not_retried(loopback_server: LoopbackServer) -> None:
    loopback_server.script(status(401, body='{"error": {"message": "Incorrect API key"}}'))
    error = fails(make_model(loopback_server), ask(None))
    assert len(loopback_server.requests) == 1
    assert "HTTP 401" in error.message and "Incorrect API key" in error.message


def echo_key(request: RecordedRequest) -> str:
    return f"you sent {request.headers.get('authorization')}"


def test_api_key_comes_from_env_and_never_leaks(
    loopback_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, CANARY)
    model = make_model(loopback_server, api_key_env=KEY_ENV)
    assert CANARY not in repr(model) + model.fingerprint + repr(model.settings)

    (response,) = generate(model, ask(None))
    assert loopback_server.requests[0].headers["authorization"] == f"Bearer {CANARY}"

    leaks: list[str] = [response.raw or "", response.text]
    loopback_server.reset()
    for behaviour in (
        lambda r: ok(echo_key(r)),
        lambda r: status(401, body=echo_key(r)),
        lambda r: status(503, body=echo_key(r)),
        lambda r: raw("{" + echo_key(r)),
    ):
        loopback_server.responder = behaviour
        model = make_model(loopback_server, api_key_env=KEY_ENV)
        try:
            (response,) = generate(model, ask(None))
            leaks += [response.text, response.raw or ""]
        except ModelCallError as error:
            leaks += [str(error), error.message, error.raw or "", repr(error)]
    assert all(r.headers["authorization"] == f"Bearer {CANARY}" for r in loopback_server.requests)
    assert not [text for text in leaks if CANARY in text]
    assert sum("[REDACTED]" in text for text in leaks) >= 4


def test_audio_errors_propagate_without_a_request(
    loopback_server: LoopbackServer, clip: AudioClip
) -> None:
    tampered = AudioClip(clip.path, "0" * 64)
    with pytest.raises(AudioError, match="checksum"):
        generate(make_model(loopback_server), ask(tampered))
    assert loopback_server.requests == []


def test_concurrency_fills_but_never_exceeds_max_concurrency(
    loopback_server: LoopbackServer, clip: AudioClip
) -> None:
    loopback_server.responder = lambda request: sleep(0.3, ok("done"))
    model = make_model(loopback_server, max_concurrency=8)
    started = time.monotonic()
    responses = generate(model, *(ask(clip, prompt=f"q{i}") for i in range(16)))
    elapsed = time.monotonic() - started
    assert [r.text for r in responses] == ["done"] * 16
    assert loopback_server.max_in_flight == 8
    assert elapsed < 3
    assert sorted(r.prompt for r in loopback_server.requests) == sorted(f"q{i}" for i in range(16))


def test_fingerprint_names_what_changes_answers_only(loopback_server: LoopbackServer) -> None:
    base = Settings(model="m", base_url="http://h/v1")
    fp = create(base).fingerprint
    assert fp.startswith("openai-chat:") and '"model":"m"' in fp and "http://h/v1" in fp
    assert create(dataclasses.replace(base, base_url="http://h/v1/")).fingerprint == fp
    for knob in ({"timeout_s": 5.0}, {"max_concurrency": 2}, {"max_retries": 0}):
        assert create(dataclasses.replace(base, **knob)).fingerprint == fp
    for change in (
        {"model": "n"},
        {"base_url": "http://other/v1"},
        {"temperature": 0.5},
        {"max_tokens": 10},
        {"max_tokens_field": "max_completion_tokens"},
        {"extra_body": {"top_k": 1}},
    ):
        assert create(dataclasses.replace(base, **change)).fingerprint != fp
    model = create(base)
    assert isinstance(model, Model) and model.max_concurrency == 8


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ({"model": "m", "base_url": "h/v1"}, "base_url"),
        ({"model": "m", "base_url": "http://h", "max_concurrency": 0}, "max_concurrency"),
        ({"model": "m", "base_url": "http://h", "extra_body": {"messages": []}}, "extra_body"),
        ({"model": "m", "base_url": "http://h", "max_tokens": 5.5}, "max_tokens"),
        ({"model": "m", "base_url": "http://h", "api_key_env": "AHELM_UNSET_VAR"}, "api_key_env"),
    ],
)
def test_bad_settings_name_the_field(table: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(Settings, table, "x.toml")
    assert info.value.field == field


@pytest.mark.parametrize("name", ["gpt-4o-audio", "qwen2-audio-vllm"])
def test_shipped_configs_validate(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    config = load_model_config(name, ROOT)
    assert config.provider == "openai-chat"
    settings = validate_config(config)
    assert isinstance(settings, Settings)
    model = build_model(config)
    assert isinstance(model, OpenAIChatModel) and CANARY not in model.fingerprint
    assert CANARY not in repr(config.public())
