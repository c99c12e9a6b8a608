"""Provider ``cascade``: AHELM's baseline systems, an ASR step and then a text-only chat model.

The clip is transcribed first; the chat model then gets the transcript and the original question
through ``prompt_template`` (and no audio), with the same instance id, ``max_tokens`` and
temperature. Two nested tables configure the halves (see model_configs/*-cascade.toml):

- ``asr``: ``provider = "openai-transcription"`` (:mod:`ahelm.models.transcription`: model,
  base_url, api_key_env, language, timeout_s, max_retries) or ``provider = "reference"`` (the
  offline pocketsphinx recogniser of :mod:`ahelm.models.reference`; optional max_concurrency).
- ``llm``: ``provider = "openai-chat"`` with its settings, or ``provider = "python"`` with an
  ``object`` (see :mod:`ahelm.models.python_object`).

Prompts that only ask for a transcript (AHELM's ASR scenarios) still go through the chat model,
as in AHELM's baselines: what is scored is the cascade's answer, not the raw ASR output, which
``Response.raw`` keeps (``{"transcript": ..., "llm_raw": ...}``) for transparency. A request
without audio skips the ASR step and reaches the chat model unchanged (``transcript`` null).
An empty transcript is an answer (silence, or speech the ASR missed), not an error.
"""

from __future__ import annotations

import asyncio
import json
import string
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Mapping

from ahelm.config import ConfigError, parse_settings
from ahelm.core import AudioClip, InstanceError, ModelCallError, Request, Response
from ahelm.models import PROVIDERS, Model, ProviderSpec, reference, transcription

PROVIDER = "cascade"
WHERE = f"{PROVIDER} settings"
ASR_PROVIDERS: Mapping[str, type] = {
    transcription.PROVIDER: transcription.Settings,
    "reference": reference.Settings,
}
LLM_PROVIDERS = ("openai-chat", "python")
TEMPLATE_FIELDS = ("transcript", "prompt")
DEFAULT_PROMPT_TEMPLATE = (
    "Below is an automatic transcript of an audio recording.\n"
    'Transcript: """{transcript}"""\n\n'
    "Using the transcript as what was said in the recording, respond to the following.\n\n"
    "{prompt}"
)
"""Our wording: the transcript in triple quotes, then the instance's prompt unchanged."""


@dataclass(frozen=True)
class Settings:
    """The ``cascade`` fields of a model config; the nested tables are checked on construction."""

    asr: dict[str, Any]
    llm: dict[str, Any]
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    max_concurrency: int = 8

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ConfigError(WHERE, "max_concurrency", "must be at least 1")
        _check_template(self.prompt_template)
        resolve(self)


@dataclass(frozen=True)
class Halves:
    """The parsed nested tables: each half's provider and settings dataclass."""

    asr_provider: str
    asr: Any
    llm_provider: str
    llm: Any
    llm_spec: ProviderSpec


class NestedCheckError(ValueError):
    """A provider check of a nested table failed; ``field`` is prefixed (``llm.object``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _check_template(template: str) -> None:
    def fail(problem: str) -> ConfigError:
        hint = "use {transcript} and {prompt}, and {{ }} for literal braces"
        return ConfigError(WHERE, "prompt_template", f"{problem}; {hint}")

    try:  # the placeholders first, so that an unknown one is named rather than a KeyError
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise fail(f"not a valid format string ({exc})") from None
    wrong = sorted(fields - set(TEMPLATE_FIELDS))
    if wrong:
        raise fail(f"unknown placeholder(s) {', '.join(repr(f) for f in wrong)}")
    for name in TEMPLATE_FIELDS:
        if name not in fields:
            raise fail(f"missing {{{name}}}")
    try:
        template.format(transcript="", prompt="")
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        raise fail(f"cannot be filled in ({type(exc).__name__}: {exc})") from None


def _provider(name: str, table: Mapping[str, Any], known: tuple[str, ...]) -> str:
    provider = table.get("provider")
    if provider is None:
        raise ConfigError(WHERE, f"{name}.provider", f"missing; one of {', '.join(known)}")
    if not isinstance(provider, str) or provider not in known:
        raise ConfigError(
            WHERE, f"{name}.provider", f"unknown provider {provider!r}; known: {', '.join(known)}"
        )
    return provider


def _parse(cls: type, name: str, table: Mapping[str, Any]) -> Any:
    """parse_settings on a nested table, with the field named as ``name.field``."""
    fields = {k: v for k, v in table.items() if k != "provider"}
    try:
        return parse_settings(cls, fields, WHERE)
    except ConfigError as exc:
        field = f"{name}.{exc.field}" if exc.field else name
        raise ConfigError(WHERE, field, exc.message) from None


def resolve(settings: Settings) -> Halves:
    """Both halves parsed strictly (unknown provider or field, missing field, type, unset env)."""
    asr_provider = _provider("asr", settings.asr, tuple(ASR_PROVIDERS))
    asr = _parse(ASR_PROVIDERS[asr_provider], "asr", settings.asr)
    llm_provider = _provider("llm", settings.llm, LLM_PROVIDERS)
    spec = PROVIDERS[llm_provider]()
    return Halves(asr_provider, asr, llm_provider, _parse(spec.settings, "llm", settings.llm), spec)


def check(settings: Settings) -> None:
    """Validate completely before any request: the nested tables, then the LLM's own check."""
    halves = resolve(settings)
    if halves.llm_spec.check is not None:
        try:
            halves.llm_spec.check(halves.llm)
        except (ValueError, ImportError, AttributeError) as exc:
            field = getattr(exc, "field", None)
            raise NestedCheckError(f"llm.{field}" if field else "llm", str(exc)) from None


class HttpTranscriber:
    """The OpenAI-compatible transcription API."""

    def __init__(self, settings: transcription.Settings, max_concurrency: int) -> None:
        self.identity = transcription.identity(settings)
        self.client = transcription.TranscriptionClient(settings, max_concurrency=max_concurrency)

    async def transcribe(self, clip: AudioClip) -> tuple[str, float]:
        result = await self.client.transcribe(clip)
        return result.text, result.elapsed_s

    async def aclose(self) -> None:
        await self.client.aclose()


class ReferenceTranscriber:
    """The offline pocketsphinx recogniser, run in its own worker threads."""

    def __init__(self, settings: reference.Settings) -> None:
        self.model = reference.ReferenceModel(settings)
        self.identity = {"provider": "reference", "fingerprint": self.model.fingerprint}
        self._pool: ThreadPoolExecutor | None = None

    async def transcribe(self, clip: AudioClip) -> tuple[str, float]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.model.max_concurrency, "ahelm-cascade-asr")
        started = time.perf_counter()
        request = Request(instance_id="", prompt="", audio=clip, max_tokens=1)
        loop = asyncio.get_running_loop()
        text = await loop.run_in_executor(self._pool, self.model.transcribe, request)
        return text, time.perf_counter() - started

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        await self.model.aclose()


class CascadeModel:
    """ASR, then the chat model answering from the transcript."""

    def __init__(self, settings: Settings) -> None:
        halves = resolve(settings)
        self.settings = settings
        self.max_concurrency = settings.max_concurrency
        self.asr: HttpTranscriber | ReferenceTranscriber = (
            ReferenceTranscriber(halves.asr)
            if halves.asr_provider == "reference"
            else HttpTranscriber(halves.asr, settings.max_concurrency)
        )
        self.llm: Model = halves.llm_spec.create(halves.llm)
        identity = {
            "asr": self.asr.identity,
            "llm": self.llm.fingerprint,
            "prompt_template": settings.prompt_template,
        }
        self.fingerprint = f"{PROVIDER}:" + json.dumps(
            identity, sort_keys=True, separators=(",", ":")
        )

    def __repr__(self) -> str:
        return f"CascadeModel({self.fingerprint})"

    def prompt(self, transcript: str, prompt: str) -> str:
        return self.settings.prompt_template.format(transcript=transcript, prompt=prompt)

    async def _transcribe(self, clip: AudioClip) -> tuple[str, float]:
        try:
            return await self.asr.transcribe(clip)
        except ModelCallError as exc:
            raise ModelCallError(f"transcription failed: {exc.message}", raw=exc.raw) from None
        except InstanceError:
            raise  # AudioError: the clip itself is bad, whichever model hears it
        except Exception as exc:
            raise ModelCallError(f"transcription failed: {type(exc).__name__}: {exc}") from None

    async def generate(self, request: Request) -> Response:
        transcript: str | None = None
        asr_latency, prompt = 0.0, request.prompt
        if request.audio is not None:
            transcript, asr_latency = await self._transcribe(request.audio)
            prompt = self.prompt(transcript, request.prompt)
        try:  # same instance id, max_tokens and temperature; the transcript instead of audio
            answer = await self.llm.generate(replace(request, prompt=prompt, audio=None))
        except ModelCallError as exc:
            raise ModelCallError(f"llm failed: {exc.message}", raw=exc.raw) from None
        raw = json.dumps({"transcript": transcript, "llm_raw": answer.raw}, ensure_ascii=False)
        return Response(answer.text, asr_latency + answer.latency_s, dict(answer.usage), raw)

    async def aclose(self) -> None:
        try:
            await self.asr.aclose()
        finally:
            await self.llm.aclose()


def create(settings: Settings) -> CascadeModel:
    return CascadeModel(settings)


def remote(settings: Settings) -> bool:
    """When both halves answer over HTTP; a local half (the reference ASR, an in-process LLM)
    is CPU work that each pytest process should do itself."""
    halves = resolve(settings)
    return halves.asr_provider != "reference" and halves.llm_provider != "python"
