"""An OpenAI-compatible speech-to-text client: ``POST {base_url}/audio/transcriptions``.

The ASR half of the ``cascade`` provider (see :mod:`ahelm.models.cascade`). It uploads the clip
as 16 kHz mono 16-bit WAV (the audio every model under test receives, see :mod:`ahelm.audio`) in
a ``multipart/form-data`` body with ``model``, ``response_format=json``, ``temperature=0`` and
an optional ``language``, and reads ``{"text": ...}`` back. It serves OpenAI's ``whisper-1`` and
self-hosted servers speaking the same API (vLLM, faster-whisper-server, LocalAI).

Retries follow the shared HTTP layer (:mod:`ahelm.models.http`): the same statuses are retried
with the same :class:`RetryPolicy` backoff and the server's Retry-After; a 2xx body that is not
JSON is not retried; every failure is a :class:`ModelCallError` whose message and raw body are
redacted of the API key. ``HttpTransport`` only posts JSON, so the loop is repeated here for
multipart bodies.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Mapping

import httpx

from ahelm import audio as audio_codec
from ahelm.config import ConfigError
from ahelm.core import AudioClip, ModelCallError
from ahelm.models.http import (
    MESSAGE_BODY_LIMIT,
    RAW_LIMIT,
    RETRY_STATUSES,
    RetryPolicy,
    parse_retry_after,
)
from ahelm.secrets import redact, secret_from_env

PROVIDER = "openai-transcription"
PATH = "audio/transcriptions"
_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


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
    samples = audio_codec.decode(clip.read_verified(), str(clip.path))
    return audio_codec.to_wav_bytes(samples)


class TranscriptionClient:
    """Transcribes clips; at most ``max_concurrency`` uploads in flight, bound to one event loop."""

    def __init__(
        self, settings: Settings, *, max_concurrency: int = 8, retry: RetryPolicy | None = None
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.settings = settings
        self.url = f"{settings.base_url.rstrip('/')}/{PATH}"
        self.retry = retry or RetryPolicy(max_retries=settings.max_retries)
        self.max_concurrency = max_concurrency
        self._headers: dict[str, str] = {}
        self._secrets: tuple[str, ...] = ()
        if settings.api_key_env:
            key = secret_from_env(settings.api_key_env).reveal()
            self._headers["Authorization"] = f"Bearer {key}"
            self._secrets = (key,)
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

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
        wav = await asyncio.to_thread(wav_bytes, clip)
        files = {"file": ("audio.wav", wav, "audio/wav")}
        response, attempts, elapsed = await self._post(self.form(), files)
        text = redact(response.text, self._secrets)
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._error(
                f"POST {self.url} answered HTTP {response.status_code} with a body that is not "
                f"valid JSON ({exc.msg} at char {exc.pos} of {len(text)}); not retried",
                text,
            ) from None
        transcript = body.get("text") if isinstance(body, dict) else None
        if not isinstance(transcript, str):
            what = "no 'text' string" if isinstance(body, dict) else "JSON that is not an object"
            raise self._error(f"POST {self.url} answered with {what}", text)
        return Transcript(transcript, elapsed, text, attempts)

    async def _post(
        self, data: Mapping[str, str], files: Mapping[str, tuple[str, bytes, str]]
    ) -> tuple[httpx.Response, int, float]:
        """The first 2xx response, with the attempts and seconds it took; as post_json retries."""
        client, slots = self._bound()
        started: float | None = None
        failure, raw = "no attempt made", None
        for attempt in range(1, self.retry.attempts + 1):
            retry_after: float | None = None
            async with slots:
                started = started if started is not None else time.monotonic()
                try:
                    async with asyncio.timeout(self.settings.timeout_s):
                        response = await client.post(self.url, data=data, files=files)
                except (TimeoutError, httpx.TimeoutException):
                    failure, raw = f"timed out after {self.settings.timeout_s:g} s", None
                except _RETRYABLE_ERRORS as exc:
                    failure, raw = f"{type(exc).__name__}: {str(exc) or 'connection failed'}", None
                except httpx.HTTPError as exc:
                    message = f"POST {self.url} failed (not retried): {type(exc).__name__}: {exc}"
                    raise self._error(message) from None
                else:
                    if response.is_success:
                        return response, attempt, time.monotonic() - started
                    raw = response.text
                    failure = (
                        f"HTTP {response.status_code} {response.reason_phrase}: "
                        f"{self._clip(raw, MESSAGE_BODY_LIMIT) or '(empty body)'}"
                    )
                    if response.status_code not in RETRY_STATUSES:
                        message = f"POST {self.url} failed with {failure} (not retried)"
                        raise self._error(message, raw)
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
            if attempt < self.retry.attempts:
                await asyncio.sleep(self.retry.delay(attempt, retry_after))
        elapsed = time.monotonic() - (started or time.monotonic())
        raise self._error(
            f"POST {self.url} failed after {self.retry.attempts} attempt(s) in {elapsed:.1f} s; "
            f"last attempt: {failure}",
            raw,
        )

    def _clip(self, text: str, limit: int = RAW_LIMIT) -> str:
        text = redact(text, self._secrets)
        return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit} more chars]"

    def _error(self, message: str, raw: str | None = None) -> ModelCallError:
        return ModelCallError(
            redact(message, self._secrets), raw=None if raw is None else self._clip(raw)
        )

    def _bound(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            raise RuntimeError(
                f"{self!r} is bound to another event loop; await aclose() in that loop first"
            )
        if self._client is None or self._slots is None:
            self._client = httpx.AsyncClient(
                headers=self._headers,
                timeout=httpx.Timeout(self.settings.timeout_s),
                limits=httpx.Limits(
                    max_connections=self.max_concurrency,
                    max_keepalive_connections=self.max_concurrency,
                ),
            )
            self._slots = asyncio.Semaphore(self.max_concurrency)
            self._loop = loop
        return self._client, self._slots

    async def aclose(self) -> None:
        """Close the connections; the client may then be used again, even from a new loop."""
        client = self._client
        self._client = self._slots = self._loop = None
        if client is not None:
            await client.aclose()
