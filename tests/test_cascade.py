"""The cascade provider (ASR, then a chat model) with both halves over real loopback servers."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import soundfile as sf
from loopback import LoopbackServer, RecordedRequest, json_reply, status
from loopback_transcription import (
    DEFAULT_TEXT,
    TranscriptionServer,
    malformed,
    no_text,
    parse_multipart,
    transcript,
    transcription_server,
)
from modelkit import fails, generate

from ahelm.config import ConfigError, load_model_config, parse_settings
from ahelm.core import AudioClip, AudioError, ModelCallError, Request
from ahelm.models import build_model, validate_config
from ahelm.models.cascade import (
    DEFAULT_PROMPT_TEMPLATE,
    CascadeModel,
    NestedCheckError,
    Settings,
    check,
    create,
)
from ahelm.scenarios import load_scenario
from ahelm.scenarios.asr import PROMPT as ASR_PROMPT

__all__ = ["transcription_server"]

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "fixtures" / "corpus" / "english_asr"
ASR_ENV, LLM_ENV = "AHELM_TEST_ASR_KEY", "AHELM_TEST_LLM_KEY"
ASR_KEY, LLM_KEY = "sk-asr-canary-3d9e1b", "sk-llm-canary-8c2f47"
QUESTION = "What did the speaker say?"
GOOD_ASR: dict[str, Any] = {
    "provider": "openai-transcription", "model": "w", "base_url": "http://a/v1"
}
GOOD_LLM: dict[str, Any] = {"provider": "openai-chat", "model": "g", "base_url": "http://l/v1"}


@pytest.fixture
def chat_server() -> Any:
    with LoopbackServer() as server:
        yield server


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ASR_ENV, ASR_KEY)
    monkeypatch.setenv(LLM_ENV, LLM_KEY)


@pytest.fixture
def clip(tmp_path: Path) -> AudioClip:
    """Half a second of stereo 440 Hz at 22.05 kHz: the upload must be 16 kHz mono."""
    t = np.arange(11_025) / 22_050
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = tmp_path / "tone.wav"
    sf.write(path, np.stack([tone, tone], axis=1), 22_050)
    return AudioClip(path, hashlib.sha256(path.read_bytes()).hexdigest())


def settings(asr_server: LoopbackServer, chat_server: LoopbackServer, **changes: Any) -> Settings:
    """Loopback settings; ``asr``/``llm`` entries are merged into the tables (None removes)."""
    asr = {"provider": "openai-transcription", "model": "whisper-test",
           "base_url": asr_server.base_url, "max_retries": 2}
    llm = {"provider": "openai-chat", "model": "gpt-test", "base_url": chat_server.base_url}
    for table, extra in ((asr, changes.pop("asr", {})), (llm, changes.pop("llm", {}))):
        table.update(extra)
        for name in [k for k, v in table.items() if v is None]:
            del table[name]
    return Settings(asr=asr, llm=llm, **changes)


def ask(clip: AudioClip | None, prompt: str = QUESTION) -> Request:
    return Request(instance_id="i7", prompt=prompt, audio=clip, max_tokens=32, temperature=0.0)


def test_both_halves_over_loopback(
    keys: None, transcription_server: TranscriptionServer, chat_server: LoopbackServer,
    clip: AudioClip,
) -> None:
    model = create(settings(transcription_server, chat_server,
                            asr={"api_key_env": ASR_ENV, "language": "en"},
                            llm={"api_key_env": LLM_ENV}))
    (response,) = generate(model, ask(clip))

    (asr,) = transcription_server.requests
    assert asr.method == "POST" and asr.path == "/v1/audio/transcriptions"
    assert asr.headers["authorization"] == f"Bearer {ASR_KEY}"
    assert asr.headers["content-type"].startswith("multipart/form-data; boundary=")
    (upload,) = transcription_server.uploads()
    assert upload.fields == {
        "model": "whisper-test", "response_format": "json", "temperature": "0", "language": "en"
    }
    wav = upload.files["file"]
    assert (wav.filename, wav.content_type) == ("audio.wav", "audio/wav")
    info = sf.info(io.BytesIO(wav.data))
    assert (info.samplerate, info.channels, info.frames, info.format, info.subtype) == (
        16_000, 1, 8_000, "WAV", "PCM_16"
    )
    samples, _ = sf.read(io.BytesIO(wav.data))
    assert 0.25 < np.abs(samples).max() < 0.35

    (chat,) = chat_server.requests
    assert chat.headers["authorization"] == f"Bearer {LLM_KEY}"
    expected_prompt = DEFAULT_PROMPT_TEMPLATE.format(transcript=DEFAULT_TEXT, prompt=QUESTION)
    assert chat.content_parts() == [{"type": "text", "text": expected_prompt}]
    assert f'"""{DEFAULT_TEXT}"""' in chat.prompt and chat.prompt.endswith(QUESTION)
    assert chat.json["model"] == "gpt-test" and chat.json["max_tokens"] == 32

    assert response.text == expected_prompt  # the loopback chat model echoes its prompt
    words = len(expected_prompt.split())
    assert response.usage == {"prompt_tokens": 10, "completion_tokens": words,
                              "total_tokens": 10 + words}
    assert response.raw is not None
    raw = json.loads(response.raw)
    assert set(raw) == {"transcript", "llm_raw"} and raw["transcript"] == DEFAULT_TEXT
    assert json.loads(raw["llm_raw"])["choices"][0]["message"]["content"] == expected_prompt
    assert 0 < response.latency_s < 5
    shown = [response.raw, response.text, model.fingerprint, repr(model), repr(model.settings)]
    assert not [s for s in shown if ASR_KEY in s or LLM_KEY in s]


def echo_auth(request: RecordedRequest) -> str:
    return f"heard {request.headers.get('authorization')}"


def test_keys_never_leak_into_prompts_raw_or_errors(
    keys: None, transcription_server: TranscriptionServer, chat_server: LoopbackServer,
    clip: AudioClip,
) -> None:
    def make() -> CascadeModel:
        return create(settings(transcription_server, chat_server, asr={"api_key_env": ASR_ENV},
                               llm={"api_key_env": LLM_ENV}))

    transcription_server.responder = lambda r: transcript(echo_auth(r))
    (response,) = generate(make(), ask(clip))
    assert response.raw is not None
    assert json.loads(response.raw)["transcript"] == "heard Bearer [REDACTED]"
    leaks = [response.raw, response.text, chat_server.requests[0].prompt]
    for behaviour in (
        lambda r: status(401, body=echo_auth(r)),
        lambda r: status(503, body=echo_auth(r)),
        lambda r: json_reply({"error": echo_auth(r)}),
    ):
        transcription_server.responder = behaviour
        error = fails(make(), ask(clip))
        leaks += [str(error), error.message, error.raw or "", repr(error)]
    assert not [text for text in leaks if ASR_KEY in text or LLM_KEY in text]
    assert sum("[REDACTED]" in text for text in leaks) >= 6
    assert {r.headers["authorization"] for r in transcription_server.requests} == {
        f"Bearer {ASR_KEY}"
    }
    assert {r.headers["authorization"] for r in chat_server.requests} == {f"Bearer {LLM_KEY}"}


def test_429_with_retry_after_then_success(
    transcription_server: TranscriptionServer, chat_server: LoopbackServer, clip: AudioClip
) -> None:
    transcription_server.script(status(429, {"Retry-After": "1"}))
    (response,) = generate(create(settings(transcription_server, chat_server)), ask(clip))
    first, second = transcription_server.requests
    assert second.arrived_at - first.arrived_at >= 0.99
    assert response.latency_s >= 0.99
    assert len(transcription_server.uploads()) == 2 and len(chat_server.requests) == 1
    assert DEFAULT_TEXT in chat_server.requests[0].prompt


def test_500_then_success(
    transcription_server: TranscriptionServer, chat_server: LoopbackServer, clip: AudioClip
) -> None:
    transcription_server.script(status(500))
    (response,) = generate(create(settings(transcription_server, chat_server)), ask(clip))
    assert len(transcription_server.requests) == 2
    first, second = transcription_server.uploads()
    assert first.files["file"].data == second.files["file"].data  # the same body re-sent
    assert response.raw is not None and json.loads(response.raw)["transcript"] == DEFAULT_TEXT


@pytest.mark.parametrize(
    ("behaviours", "expected", "attempts"),
    [
        ([status(400, body={"error": {"message": "bad file"}})], "HTTP 400", 1),
        ([malformed()], "not valid JSON", 1),
        ([no_text()], "no 'text' string", 1),
        ([json_reply(["a list"])], "not an object", 1),
        ([status(503)] * 3, "after 3 attempt(s)", 3),
    ],
    ids=["400", "malformed", "no-text", "non-object", "503-exhausted"],
)
def test_transcription_failures_name_the_asr_step(
    transcription_server: TranscriptionServer, chat_server: LoopbackServer, clip: AudioClip,
    behaviours: list[Any], expected: str, attempts: int,
) -> None:
    transcription_server.script(*behaviours)
    error = fails(create(settings(transcription_server, chat_server)), ask(clip))
    assert error.message.startswith("transcription failed: POST ") and expected in error.message
    assert error.raw == behaviours[-1].body.decode()
    assert len(transcription_server.requests) == attempts
    assert chat_server.requests == []


def test_empty_transcript_is_an_answer_not_an_error(
    transcription_server: TranscriptionServer, chat_server: LoopbackServer, clip: AudioClip
) -> None:
    transcription_server.text = ""
    (response,) = generate(create(settings(transcription_server, chat_server)), ask(clip))
    assert 'Transcript: """"""' in chat_server.requests[0].prompt
    assert response.raw is not None and json.loads(response.raw)["transcript"] == ""


def test_llm_failure_names_the_llm_step(
    transcription_server: TranscriptionServer, chat_server: LoopbackServer, clip: AudioClip
) -> None:
    chat_server.script(status(401, body="Incorrect API key"))
    error = fails(create(settings(transcription_server, chat_server)), ask(clip))
    assert error.message.startswith("llm failed: ") and "HTTP 401" in error.message
    assert "Incorrect API key" in (error.raw or error.message)


def test_request_without_audio_skips_the_asr(
    transcription_server: TranscriptionServer, chat_server: LoopbackServer
) -> None:
    (response,) = generate(create(settings(transcription_server, chat_server)), ask(None, "Say hi"))
    assert transcription_server.requests == [] and response.text == "Say hi"
    assert response.raw is not None and json.loads(response.raw)["transcript"] is None


def test_bad_audio_is_an_audio_error_without_any_request(
    transcription_server: TranscriptionServer, chat_server: LoopbackServer, clip: AudioClip
) -> None:
    model = create(settings(transcription_server, chat_server))
    with pytest.raises(AudioError, match="checksum"):
        generate(model, ask(AudioClip(clip.path, "0" * 64)))
    assert transcription_server.requests == [] and chat_server.requests == []


def test_reference_asr_on_a_corpus_clip(
    transcription_server: TranscriptionServer, chat_server: LoopbackServer
) -> None:
    instance = load_scenario(CORPUS).instances[0]
    model = create(settings(transcription_server, chat_server, asr={
        "provider": "reference", "model": None, "base_url": None, "max_retries": None}))
    assert '"fingerprint":"reference/pocketsphinx-' in model.fingerprint
    (response,) = generate(model, Request.for_instance(instance))
    assert response.raw is not None
    heard = json.loads(response.raw)["transcript"]
    assert isinstance(heard, str) and len(heard.split()) >= 5
    # An ASR prompt still goes to the chat model, as in AHELM's cascaded baselines.
    (chat,) = chat_server.requests
    assert chat.prompt == DEFAULT_PROMPT_TEMPLATE.format(transcript=heard, prompt=ASR_PROMPT)
    assert chat.json["max_tokens"] == instance.max_tokens
    assert transcription_server.requests == []


class EchoLLM:
    """A text model living in this process, for ``llm = {provider = "python"}``."""

    made: ClassVar[list[EchoLLM]] = []
    fingerprint = "echo-llm/1"

    def __init__(self, prefix: str = "") -> None:
        self.prefix, self.closed = prefix, False
        EchoLLM.made.append(self)

    async def generate(self, request: Request) -> str:
        return f"{self.prefix}{request.prompt}"

    def close(self) -> None:
        self.closed = True


def test_python_llm_and_aclose_closes_both_halves(
    transcription_server: TranscriptionServer, chat_server: LoopbackServer, clip: AudioClip
) -> None:
    llm = {"provider": "python", "object": f"{__name__}:EchoLLM", "options": {"prefix": "> "},
           "model": None, "base_url": None}
    model = create(settings(transcription_server, chat_server, llm=llm,
                            prompt_template="{transcript} | {prompt}"))
    check(model.settings)
    tail = '"llm":"echo-llm/1","prompt_template":"{transcript} | {prompt}"}'
    assert model.fingerprint.endswith(tail)
    (response,) = generate(model, ask(clip))
    assert response.text == f"> {DEFAULT_TEXT} | {QUESTION}" and EchoLLM.made[-1].closed
    (again,) = generate(model, ask(clip))  # closed halves open again, even in a new event loop
    assert again.text == response.text and len(transcription_server.requests) == 2


def test_fingerprint_names_what_changes_answers_only(keys: None) -> None:
    base = Settings(asr=GOOD_ASR, llm=GOOD_LLM)
    fp = create(base).fingerprint
    assert fp.startswith("cascade:") and '"model":"w"' in fp and "http://a/v1" in fp
    assert 'openai-chat:{\\"base_url\\":\\"http://l/v1\\"' in fp and "prompt_template" in fp

    def variant(asr: Any = None, llm: Any = None, **top: Any) -> str:
        changed = dataclasses.replace(base, asr={**base.asr, **(asr or {})},
                                      llm={**base.llm, **(llm or {})}, **top)
        return create(changed).fingerprint

    knobs: list[dict[str, Any]] = [
        {"asr": {"timeout_s": 5.0, "max_retries": 0, "api_key_env": ASR_ENV}},
        {"llm": {"timeout_s": 5.0, "max_concurrency": 2, "api_key_env": LLM_ENV}},
        {"max_concurrency": 3},
        {"asr": {"base_url": "http://a/v1/"}},
    ]
    assert all(variant(**knob) == fp for knob in knobs)
    changes: list[dict[str, Any]] = [
        {"asr": {"model": "w2"}},
        {"asr": {"base_url": "http://b/v1"}},
        {"asr": {"language": "de"}},
        {"llm": {"model": "g2"}},
        {"llm": {"temperature": 0.5}},
        {"prompt_template": "{prompt}\n{transcript}"},
    ]
    assert len({variant(**change) for change in changes} | {fp}) == len(changes) + 1
    assert ASR_KEY not in variant(**knobs[0]) and LLM_KEY not in variant(**knobs[1])


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ({"llm": {"provider": "openai-chat", "base_url": "http://l/v1"}}, "llm.model"),
        ({"asr": {**GOOD_ASR, "provider": "google-stt"}}, "asr.provider"),
        ({"asr": {"model": "w", "base_url": "http://a/v1"}}, "asr.provider"),
        ({"llm": {**GOOD_LLM, "api_key_env": "AHELM_UNSET_VAR"}}, "llm.api_key_env"),
        ({"asr": {**GOOD_ASR, "api_key_env": "AHELM_UNSET_VAR"}}, "asr.api_key_env"),
        ({"asr": {**GOOD_ASR, "temperature": 0.2}}, "asr.temperature"),
        ({"asr": {**GOOD_ASR, "base_url": "a/v1"}}, "asr.base_url"),
        ({"asr": {"provider": "reference", "model": "w"}}, "asr.model"),
        ({"llm": {**GOOD_LLM, "provider": "cascade"}}, "llm.provider"),
        ({"llm": {**GOOD_LLM, "max_tokens": "many"}}, "llm.max_tokens"),
        ({"llm": {**GOOD_LLM, "extra_body": {"messages": []}}}, "llm.extra_body"),
        ({"llm": {"provider": "python"}}, "llm.object"),
        ({"llm": "gpt-4o"}, "llm"),
        ({"llm": None}, "llm"),
        ({"prompt_template": "{prompt}"}, "prompt_template"),
        ({"prompt_template": "{transcript} {question} {prompt}"}, "prompt_template"),
        ({"prompt_template": "{transcript} {prompt} {"}, "prompt_template"),
        ({"max_concurrency": 0}, "max_concurrency"),
    ],
)
def test_config_errors_name_the_nested_field(table: dict[str, Any], field: str) -> None:
    merged = {"asr": GOOD_ASR, "llm": GOOD_LLM, **table}
    merged = {k: v for k, v in merged.items() if v is not None}
    with pytest.raises(ConfigError) as info:
        parse_settings(Settings, merged, "x.toml")
    assert info.value.field == field and info.value.path == "x.toml"
    assert str(info.value).startswith(f"x.toml: field '{field}': ")


def test_registry_checks_name_the_file_and_nested_field(tmp_path: Path) -> None:
    def error(body: str) -> ConfigError:
        path = tmp_path / "m.toml"
        path.write_text('provider = "cascade"\n' + body)
        with pytest.raises(ConfigError) as info:
            validate_config(load_model_config(str(path), ROOT))
        assert info.value.path == str(path)
        return info.value

    asr = '[asr]\nprovider = "reference"\n'
    no_model = error(asr + '[llm]\nprovider = "openai-chat"\nbase_url = "http://l"\n')
    assert no_model.field == "llm.model" and "missing" in no_model.message
    bad = error(asr + '[llm]\nprovider = "python"\nobject = "no_such_module_x:make"\n')
    assert bad.field == "llm.object" and "cannot import 'no_such_module_x'" in bad.message
    with pytest.raises(NestedCheckError):
        check(Settings(asr={"provider": "reference"},
                       llm={"provider": "python", "object": "ahelm.core:NoSuchThing"}))


@pytest.mark.parametrize(
    ("name", "asr_identity"),
    [("whisper-gpt4o-cascade", '"model":"whisper-1"'),
     ("reference-asr-gpt4o-cascade", '"fingerprint":"reference/pocketsphinx-')],
)
def test_shipped_configs_validate(
    name: str, asr_identity: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", LLM_KEY)
    config = load_model_config(name, ROOT)
    assert config.provider == "cascade" and config.name == name
    assert isinstance(validate_config(config), Settings)
    model = build_model(config)
    assert isinstance(model, CascadeModel) and model.max_concurrency >= 1
    assert asr_identity in model.fingerprint and '\\"model\\":\\"gpt-4o\\"' in model.fingerprint
    assert LLM_KEY not in model.fingerprint + repr(config.public())
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    assert info.value.field == ("asr.api_key_env" if "whisper" in name else "llm.api_key_env")


def test_multipart_parser_reads_binary_parts_exactly() -> None:
    data = bytes(range(256)) * 4 + b"\r\n--boundary\r\n\r\n"
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            b"Content-Type: audio/wav\r\n\r\n" + data + b"\r\n--XyZ--\r\n")
    upload = parse_multipart("multipart/form-data; boundary=XyZ", body)
    assert upload.fields == {"model": "m"} and upload.files["file"].data == data
    assert upload.order == ("model", "file")
    with pytest.raises(ValueError):
        parse_multipart("application/json", b"{}")


def test_an_unreachable_transcription_endpoint_opens_the_circuit(clip: AudioClip) -> None:
    import socket

    from ahelm.models.http import RetryPolicy
    from ahelm.models.transcription import Settings as AsrSettings
    from ahelm.models.transcription import TranscriptionClient

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = TranscriptionClient(
        AsrSettings(model="whisper-1", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1),
        max_concurrency=2,
        retry=RetryPolicy(max_retries=1, backoff_base_s=0.01, backoff_max_s=0.02),
    )

    async def many() -> list[BaseException | object]:
        results = await asyncio.gather(*(client.transcribe(clip) for _ in range(20)),
                                       return_exceptions=True)
        await client.aclose()
        return results

    results = asyncio.run(many())
    assert all(isinstance(r, ModelCallError) for r in results)
    assert any("circuit open" in str(r) for r in results)
