"""Provider ``openai-chat``: any OpenAI-compatible chat-completions endpoint that accepts audio.

Serves OpenAI's audio models (``input_audio`` content parts) and self-hosted servers speaking the
same wire format, such as vLLM. Audio is always sent as 16 kHz mono 16-bit WAV, the shape every
model under test receives (see :mod:`ahelm.audio`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from ahelm import audio as audio_codec
from ahelm.config import ConfigError
from ahelm.core import AudioClip, ModelCallError, Request, Response
from ahelm.models.http import (
    BLOB,
    RAW_LIMIT,
    HttpTransport,
    RetryPolicy,
    bearer_auth,
    json_with_blob,
)

PROVIDER = "openai-chat"
_MANAGED_KEYS = ("model", "messages", "temperature", "stream", "n")


@dataclass(frozen=True)
class Settings:
    """The ``openai-chat`` fields of a model config."""

    model: str
    base_url: str
    api_key_env: str | None = None
    temperature: float = 0.0
    max_tokens: int | None = None
    max_tokens_field: str = "max_tokens"
    timeout_s: float = 60.0
    max_concurrency: int = 8
    max_retries: int = 4
    requests_per_minute: float | None = None
    breaker_threshold: int = 5
    extra_body: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"{PROVIDER} settings"
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(where, "base_url", "must start with http:// or https://")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError(where, "max_tokens", "must be at least 1 (or left out)")
        if self.timeout_s <= 0:
            raise ConfigError(where, "timeout_s", "must be positive")
        if self.max_concurrency < 1:
            raise ConfigError(where, "max_concurrency", "must be at least 1")
        if self.max_retries < 0:
            raise ConfigError(where, "max_retries", "must be 0 or more")
        if self.requests_per_minute is not None and not 0 < self.requests_per_minute < math.inf:
            raise ConfigError(where, "requests_per_minute", "must be positive (or left out)")
        if self.breaker_threshold < 1:
            raise ConfigError(where, "breaker_threshold", "must be at least 1")
        clashes = sorted(k for k in self.extra_body if k in (*_MANAGED_KEYS, self.max_tokens_field))
        if clashes:
            raise ConfigError(
                where, "extra_body", f"must not set {', '.join(clashes)}; use the dedicated fields"
            )


def fingerprint(settings: Settings) -> str:
    """Everything in the settings that can change an answer; no secrets, no transport knobs."""
    identity = {
        "base_url": settings.base_url.rstrip("/"),
        "model": settings.model,
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
        "max_tokens_field": settings.max_tokens_field,
        "extra_body": settings.extra_body,
    }
    return f"{PROVIDER}:" + json.dumps(identity, sort_keys=True, separators=(",", ":"))


def audio_base64(clip: AudioClip) -> bytes:
    """Base64 of the clip as 16 kHz mono WAV; AudioError if the file is missing or corrupt."""
    return audio_codec.model_wav_base64(clip)


def encode_audio(clip: AudioClip) -> str:
    """:func:`audio_base64` as text, for JSON built with json.dumps."""
    return audio_base64(clip).decode("ascii")


class OpenAIChatModel:
    """A model behind ``POST {base_url}/chat/completions``."""

    def __init__(self, settings: Settings, *, retry: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.fingerprint = fingerprint(settings)
        self.max_concurrency = settings.max_concurrency
        self.lookahead = settings.max_concurrency // 4
        headers, secrets = bearer_auth(settings.api_key_env)
        self._transport = HttpTransport(
            settings.base_url,
            headers=headers,
            timeout_s=settings.timeout_s,
            retry=retry or RetryPolicy(max_retries=settings.max_retries),
            max_concurrency=settings.max_concurrency,
            secrets=secrets,
            requests_per_minute=settings.requests_per_minute,
            breaker_threshold=settings.breaker_threshold,
        )

    def __repr__(self) -> str:
        return f"OpenAIChatModel({self.fingerprint})"

    async def payload(self, request: Request) -> dict[str, Any]:
        """The request body for ``request``; decoding audio runs off the event loop
        (audio.with_model_wav)."""
        audio = request.audio
        b64 = None if audio is None else await audio_codec.with_model_wav(
            audio, lambda: encode_audio(audio))
        return self._payload(request, b64)

    async def body(self, request: Request) -> bytes:
        """The same body as :meth:`payload`, encoded."""
        return await audio_codec.with_model_wav(request.audio, lambda: self._body(request))

    def _body(self, request: Request) -> bytes:
        if request.audio is None:
            return json.dumps(self._payload(request, None)).encode()
        return json_with_blob(self._payload(request, BLOB), audio_base64(request.audio))

    def _payload(self, request: Request, b64: str | None) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if b64 is not None:
            content.append({"type": "input_audio", "input_audio": {"data": b64, "format": "wav"}})
        content.append({"type": "text", "text": request.prompt})
        override = self.settings.max_tokens
        max_tokens = request.max_tokens if override is None else override
        return {
            **self.settings.extra_body,
            "model": self.settings.model,
            "messages": [{"role": "user", "content": content}],
            "temperature": self.settings.temperature,
            self.settings.max_tokens_field: max_tokens,
        }

    async def generate(self, request: Request) -> Response:
        result = await self._transport.post_json("chat/completions", await self.body(request))
        return Response(
            text=parse_content(result.data, result.text),
            latency_s=result.elapsed_s,
            usage=parse_usage(result.data),
            raw=result.text,
        )

    async def warm(self) -> None:
        await self._transport.warm()

    async def aclose(self) -> None:
        await self._transport.aclose()


def parse_content(body: Mapping[str, Any], raw: str) -> str:
    """The text of ``choices[0].message.content``, unstripped; ModelCallError saying what is off."""

    def fail(problem: str) -> ModelCallError:
        return ModelCallError(f"chat completion {problem}", raw=raw[:RAW_LIMIT])

    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        error = body.get("error")
        detail = f": error {json.dumps(error)[:300]}" if error else ""
        what = "has no choices" if isinstance(choices, list) else "has no 'choices' list"
        raise fail(f"{what}{detail}")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise fail("has no message in choices[0]")
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if texts and all(isinstance(t, str) for t in texts):
            return "".join(t for t in texts if isinstance(t, str))
        raise fail("content is a list without text parts")
    if content is None:
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal:
            raise fail(f"has null content; the model refused: {refusal[:300]}")
        raise fail("has null content")
    raise fail(f"content is neither text nor a list of parts (got {type(content).__name__})")


def parse_usage(body: Mapping[str, Any]) -> dict[str, int]:
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return {}
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    return {k: v for k in keys if type(v := usage.get(k)) is int}


def create(settings: Settings) -> OpenAIChatModel:
    return OpenAIChatModel(settings)


def remote(settings: Settings) -> bool:
    """Always: the model answers over HTTP (ahelm.models.ProviderSpec.remote)."""
    return True
