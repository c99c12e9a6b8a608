"""Provider ``gemini``: Google's Gemini models through the ``generateContent`` REST API.

Audio goes inline as 16 kHz mono WAV (the shape every model under test receives, see
:mod:`ahelm.audio`), before the text prompt. Field names follow the REST reference's camelCase
spelling throughout (``inlineData``, ``mimeType``, ``generationConfig``); the API also accepts
snake_case, but one spelling keeps request bodies and tests unambiguous. The API key travels in
the ``x-goog-api-key`` header, never in the URL, so logged URLs and error messages cannot carry it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ahelm import audio as audio_codec
from ahelm.config import ConfigError
from ahelm.core import ModelCallError, Request, Response
from ahelm.models.http import HttpTransport, RetryPolicy
from ahelm.models.openai_chat import encode_audio
from ahelm.secrets import secret_from_env

PROVIDER = "gemini"

HARM_CATEGORIES = frozenset(
    {
        "HARM_CATEGORY_HARASSMENT",
        "HARM_CATEGORY_HATE_SPEECH",
        "HARM_CATEGORY_SEXUALLY_EXPLICIT",
        "HARM_CATEGORY_DANGEROUS_CONTENT",
        "HARM_CATEGORY_CIVIC_INTEGRITY",
    }
)
"""The HarmCategory values Gemini models accept (the enum's PaLM-era values are rejected)."""

BLOCK_THRESHOLDS = frozenset(
    {"BLOCK_LOW_AND_ABOVE", "BLOCK_MEDIUM_AND_ABOVE", "BLOCK_ONLY_HIGH", "BLOCK_NONE", "OFF"}
)
"""HarmBlockThreshold values, without the meaningless HARM_BLOCK_THRESHOLD_UNSPECIFIED."""

ANSWER_FINISH_REASONS = frozenset({"STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED", ""})
"""Finish reasons whose text is an answer; a truncated answer (MAX_TOKENS) is still one. Any
other reason (SAFETY, RECITATION, PROHIBITED_CONTENT, ...) means the text, if any, was cut off
by a filter: a half answer, which an adapter never returns."""

_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Settings:
    """The ``gemini`` fields of a model config."""

    model: str
    api_key_env: str = "GEMINI_API_KEY"
    base_url: str = "https://generativelanguage.googleapis.com/v1beta"
    temperature: float = 0.0
    max_output_tokens: int | None = None
    timeout_s: float = 120.0
    max_concurrency: int = 8
    max_retries: int = 4
    safety_settings: dict[str, str] = field(default_factory=dict)
    thinking_budget: int | None = None

    def __post_init__(self) -> None:
        where = f"{PROVIDER} settings"
        if not _MODEL_ID.fullmatch(self.model):
            hint = "; drop the 'models/' prefix" if self.model.startswith("models/") else ""
            raise ConfigError(where, "model", f"{self.model!r} is not a model id{hint}")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(where, "base_url", "must start with http:// or https://")
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(where, "temperature", "must be between 0 and 2")
        if self.max_output_tokens is not None and self.max_output_tokens < 1:
            raise ConfigError(where, "max_output_tokens", "must be at least 1 (or left out)")
        if self.timeout_s <= 0:
            raise ConfigError(where, "timeout_s", "must be positive")
        if self.max_concurrency < 1:
            raise ConfigError(where, "max_concurrency", "must be at least 1")
        if self.max_retries < 0:
            raise ConfigError(where, "max_retries", "must be 0 or more")
        if self.thinking_budget is not None and self.thinking_budget < -1:
            raise ConfigError(where, "thinking_budget", "must be -1 (dynamic), 0 (off) or a count")
        for category, threshold in self.safety_settings.items():
            if category not in HARM_CATEGORIES:
                known = ", ".join(sorted(HARM_CATEGORIES))
                message = f"unknown harm category {category!r}; known: {known}"
                raise ConfigError(where, "safety_settings", message)
            if threshold not in BLOCK_THRESHOLDS:
                known = ", ".join(sorted(BLOCK_THRESHOLDS))
                message = f"unknown threshold {threshold!r} for {category}; known: {known}"
                raise ConfigError(where, "safety_settings", message)


def fingerprint(settings: Settings) -> str:
    """Everything in the settings that can change an answer; no secrets, no transport knobs."""
    identity = {
        "base_url": settings.base_url.rstrip("/"),
        "model": settings.model,
        "temperature": settings.temperature,
        "max_output_tokens": settings.max_output_tokens,
        "safety_settings": settings.safety_settings,
        "thinking_budget": settings.thinking_budget,
    }
    return f"{PROVIDER}:" + json.dumps(identity, sort_keys=True, separators=(",", ":"))


class GeminiModel:
    """A model behind ``POST {base_url}/models/{model}:generateContent``."""

    def __init__(self, settings: Settings, *, retry: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.fingerprint = fingerprint(settings)
        self.max_concurrency = settings.max_concurrency
        self.lookahead = settings.max_concurrency // 4
        self.path = f"models/{settings.model}:generateContent"
        key = secret_from_env(settings.api_key_env).reveal()
        self._transport = HttpTransport(
            settings.base_url,
            headers={"x-goog-api-key": key},
            timeout_s=settings.timeout_s,
            retry=retry or RetryPolicy(max_retries=settings.max_retries),
            max_concurrency=settings.max_concurrency,
            secrets=[key],
        )

    def __repr__(self) -> str:
        return f"GeminiModel({self.fingerprint})"

    def max_output_tokens(self, request: Request) -> int:
        """The answer budget, plus the thinking budget when one is set.

        Gemini counts thought tokens against ``maxOutputTokens``; without the allowance a thinking
        model can spend a whole per-scenario answer budget thinking and return no text at all.
        """
        answer = self.settings.max_output_tokens or request.max_tokens
        return answer + max(self.settings.thinking_budget or 0, 0)

    async def payload(self, request: Request) -> dict[str, Any]:
        """The request body for ``request``; decoding and encoding audio run off the event loop."""
        parts: list[dict[str, Any]] = []
        audio = request.audio
        if audio is not None:
            b64 = await audio_codec.with_model_wav(audio, lambda: encode_audio(audio))
            parts.append({"inlineData": {"mimeType": "audio/wav", "data": b64}})
        parts.append({"text": request.prompt})
        config: dict[str, Any] = {
            "temperature": self.settings.temperature,
            "maxOutputTokens": self.max_output_tokens(request),
            "candidateCount": 1,
        }
        if self.settings.thinking_budget is not None:
            config["thinkingConfig"] = {"thinkingBudget": self.settings.thinking_budget}
        body: dict[str, Any] = {
            "contents": [{"role": "user", "parts": parts}],
            "generationConfig": config,
        }
        if self.settings.safety_settings:
            body["safetySettings"] = [
                {"category": category, "threshold": threshold}
                for category, threshold in self.settings.safety_settings.items()
            ]
        return body

    async def generate(self, request: Request) -> Response:
        payload = await self.payload(request)
        result = await self._transport.post_json(self.path, payload)
        return Response(
            text=parse_text(result.data, self._transport.clip(result.text)),
            latency_s=result.elapsed_s,
            usage=parse_usage(result.data),
            raw=result.text,
        )

    async def warm(self) -> None:
        await self._transport.warm()

    async def aclose(self) -> None:
        await self._transport.aclose()


def parse_text(body: Mapping[str, Any], raw: str) -> str:
    """The text parts of ``candidates[0]`` (thoughts skipped), unstripped; else ModelCallError."""

    def fail(problem: str) -> ModelCallError:
        return ModelCallError(f"Gemini {problem}", raw=raw)

    error = body.get("error")
    if isinstance(error, dict):
        code, status, message = (error.get(k) for k in ("code", "status", "message"))
        raise fail(f"error {code} {status}: {str(message)[:300]}")
    candidates = body.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        feedback = body.get("promptFeedback")
        reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
        if reason:
            raise fail(f"blocked by Gemini safety filters: {reason}")
        raise fail("answer has no candidates")
    candidate = candidates[0] if isinstance(candidates[0], dict) else {}
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    texts = [
        p["text"]
        for p in (parts if isinstance(parts, list) else [])
        if isinstance(p, dict) and isinstance(p.get("text"), str) and p.get("thought") is not True
    ]
    text = "".join(texts)
    finish = str(candidate.get("finishReason") or "")
    if finish not in ANSWER_FINISH_REASONS:
        blocked = [
            str(r.get("category"))
            for r in candidate.get("safetyRatings") or []
            if isinstance(r, dict) and r.get("blocked")
        ]
        detail = f" (blocked: {', '.join(blocked)})" if blocked else ""
        cut = "; the text so far was discarded" if text else ""
        raise fail(f"gave no answer: finishReason {finish}{detail}{cut}")
    if not text:
        if finish == "MAX_TOKENS":
            thoughts = parse_usage(body).get("thoughts_tokens")
            spent = f"thinking used {thoughts} tokens; " if thoughts else ""
            raise fail(
                f"gave no answer: finishReason MAX_TOKENS before any text ({spent}"
                "set thinking_budget so the answer keeps its own budget)"
            )
        raise fail(f"answer has no text (finishReason {finish or 'missing'})")
    return text


_USAGE_KEYS = {
    "promptTokenCount": "prompt_tokens",
    "candidatesTokenCount": "completion_tokens",
    "thoughtsTokenCount": "thoughts_tokens",
    "totalTokenCount": "total_tokens",
}


def parse_usage(body: Mapping[str, Any]) -> dict[str, int]:
    """usageMetadata under the provider-neutral names openai-chat uses (plus thoughts_tokens)."""
    usage = body.get("usageMetadata")
    if not isinstance(usage, dict):
        return {}
    return {ours: v for theirs, ours in _USAGE_KEYS.items() if type(v := usage.get(theirs)) is int}


def create(settings: Settings) -> GeminiModel:
    return GeminiModel(settings)


def remote(settings: Settings) -> bool:
    """Always: the model answers over HTTP (ahelm.models.ProviderSpec.remote)."""
    return True
