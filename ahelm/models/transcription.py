"""An OpenAI-compatible speech-to-text client: ``POST {base_url}/audio/transcriptions``.

The ASR half of the ``cascade`` provider (see :mod:`ahelm.models.cascade`). It uploads the clip
as 16 kHz mono 16-bit WAV (the audio every model under test receives, see :mod:`ahelm.audio`) in
a ``multipart/form-data`` body with ``model``, ``response_format=json``, ``temperature=0`` and
an optional ``language``, and reads ``{"text": ...}`` back. It serves OpenAI's ``whisper-1`` and
self-hosted servers speaking the same API (vLLM, faster-whisper-server, LocalAI).

Uploads go through the shared HTTP layer (:mod:`ahelm.models.http`, ``post_multipart``), so
retries, Retry-After, the circuit breaker, the rate limit and redaction of the API key are the
same as for every other adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ahelm import audio as audio_codec
from ahelm.config import ConfigError
from ahelm.core import AudioClip, ModelCallError
from ahelm.models.http import HttpTransport, RetryPolicy, bearer_auth

PROVIDER = "openai-transcription"
PATH = "audio/transcriptions"


@dataclass(frozen=True)
class Settings:
    """The fields of a cascade's ``asr`` table when ``provider = "openai-transcription"``."""

    model: str
    base_url: str
    api_key_env: str | None = None
    language: str | None = None
    """ISO-639-1 code sent as the ``language`` field; left out, the server detects it."""
    timeout_s: float = 60.0
    max_retries: int = 4

    def __post_init__(self) -> None:
        where = f"{PROVIDER} settings"
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(where, "base_url", "must start with http:// or https://")
        if not self.model:
            raise ConfigError(where, "model", "must not be empty")
        if self.language is not None and not self.language:
            raise ConfigError(where, "language", "must not be empty (leave it out to auto-detect)")
        if self.timeout_s <= 0:
            raise ConfigError(where, "timeout_s", "must be positive")
        if self.max_retries < 0:
            raise ConfigError(where, "max_retries", "must be 0 or more")


def identity(settings: Settings) -> dict[str, Any]:
    """What can change a transcript (for fingerprints); no secrets, no transport knobs."""
    return {
        "provider": PROVIDER,
        "model": settings.model,
        "base_url": settings.base_url.rstrip("/"),
        "language": settings.language,
    }


@dataclass(frozen=True)
class Transcript:
    text: str
    elapsed_s: float
    raw: str
    attempts: int


def wav_bytes(clip: AudioClip) -> bytes:
    """The clip as 16 kHz mono WAV; AudioError if the file is missing or corrupt."""
    return audio_codec.model_wav(clip)


class TranscriptionClient:
    """Transcribes clips through the shared HTTP layer (retries, breaker, rate limit)."""

    def __init__(
        self, settings: Settings, *, max_concurrency: int = 8, retry: RetryPolicy | None = None
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.settings = settings
        self.url = f"{settings.base_url.rstrip('/')}/{PATH}"
        self.retry = retry or RetryPolicy(max_retries=settings.max_retries)
        self.max_concurrency = max_concurrency
        headers, secrets = bearer_auth(settings.api_key_env)
        self._transport = HttpTransport(
            settings.base_url,
            headers=headers,
            timeout_s=settings.timeout_s,
            retry=self.retry,
            max_concurrency=max_concurrency,
            secrets=secrets,
        )

    def __repr__(self) -> str:
        return f"TranscriptionClient({self.url!r}, model={self.settings.model!r}, {self.retry!r})"

    def form(self) -> dict[str, str]:
        """The form fields sent next to the file."""
        fields = {"model": self.settings.model, "response_format": "json", "temperature": "0"}
        if self.settings.language:
            fields["language"] = self.settings.language
        return fields

    async def transcribe(self, clip: AudioClip) -> Transcript:
        """The server's transcript of ``clip``, or ModelCallError (AudioError for bad audio)."""
        wav = await audio_codec.with_model_wav(clip, lambda: wav_bytes(clip))
        files = {"file": ("audio.wav", wav, "audio/wav")}
        result = await self._transport.post_multipart(PATH, self.form(), files)
        transcript = result.data.get("text")
        if not isinstance(transcript, str):
            raise ModelCallError(
                f"POST {self.url} answered with no 'text' string", raw=self._transport.clip(result.text)
            )
        return Transcript(transcript, result.elapsed_s, result.text, result.attempts)

    async def aclose(self) -> None:
        """Close the connections; the client may then be used again, even from a new loop."""
        await self._transport.aclose()
