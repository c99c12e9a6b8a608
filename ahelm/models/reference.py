"""The offline reference system: pocketsphinx ASR, then a plain rule answers from the transcript.

A deliberately weak baseline in the spirit of AHELM's ASR -> LLM cascades. It runs anywhere
(pocketsphinx ships its English model inside the wheel), gives the suite something real to
measure end to end, and marks the floor of any leaderboard. The rules never see gold answers:
they read only the prompt and the transcript, as any model would.

- A prompt listing options ("A. ...", "B. ...") gets the letter of the option sharing the most
  words with the transcript (the first such option on a tie).
- Any other prompt gets the transcript itself.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from ahelm.audio import decode, model_wav, to_pcm16
from ahelm.core import Request, Response
from ahelm.scoring.asr import normalise

RULES_VERSION = "3"
"""Part of the cache fingerprint: bump when the answers for the same audio can change."""
_REMEMBERED = 64
_MAX_HMMS_PER_FRAME = 3000
_OPTION = re.compile(r"^\s*\(?([A-Z])[.)]\s+(.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Settings:
    max_concurrency: int = 1
    """Decoders running at once in one process; pocketsphinx is CPU-bound, use xdist for more."""


def answer_from_transcript(prompt: str, transcript: str) -> str:
    options: list[tuple[str, str]] = _OPTION.findall(prompt)
    if len(options) < 2:
        return transcript
    heard = set(normalise(transcript).split())
    best_letter, best_overlap = options[0][0], -1
    for letter, text in options:
        overlap = len(heard & set(normalise(text).split()))
        if overlap > best_overlap:
            best_letter, best_overlap = letter, overlap
    return best_letter


class ReferenceModel:
    def __init__(self, settings: Settings) -> None:
        self.max_concurrency = max(1, settings.max_concurrency)
        self.fingerprint = (
            f"reference/pocketsphinx-{version('pocketsphinx')}/rules-{RULES_VERSION}"
        )
        self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="ahelm-asr")
        self._local = threading.local()
        self._heard: OrderedDict[str, str] = OrderedDict()
        self._heard_lock = threading.Lock()

    def _decoder(self) -> Any:
        decoder = getattr(self._local, "decoder", None)
        if decoder is None:
            from pocketsphinx import Decoder

            # maxhmmpf bounds the search per frame: noisy or clipped audio otherwise makes the
            # search explode (20 s for a 4 s clip) for no better transcript.
            decoder = Decoder(samprate=16000, loglevel="FATAL", maxhmmpf=_MAX_HMMS_PER_FRAME)
            self._local.decoder = decoder
            self._local.cmn = decoder.get_cmn()
        return decoder

    def transcribe(self, request: Request) -> str:
        """The clip's transcript; remembered for the last few clips, because several questions
        (a conversation's) share one long clip and each fresh decode gives the same text."""
        if request.audio is None:
            return ""
        identity = request.audio.identity
        with self._heard_lock:
            if identity in self._heard:
                self._heard.move_to_end(identity)
                return self._heard[identity]
        text = self._decode(request)
        with self._heard_lock:
            self._heard[identity] = text
            while len(self._heard) > _REMEMBERED:
                self._heard.popitem(last=False)
        return text

    def _decode(self, request: Request) -> str:
        assert request.audio is not None
        samples = decode(model_wav(request.audio), str(request.audio.path))
        decoder = self._decoder()
        # pocketsphinx adapts its feature normalisation from one utterance to the next; reset it
        # so that every answer is the one a fresh decoder gives, whatever was decoded before.
        decoder.reinit_feat()
        decoder.set_cmn(self._local.cmn)
        decoder.start_utt()
        decoder.process_raw(to_pcm16(samples).tobytes(), full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        return str(hypothesis.hypstr) if hypothesis is not None else ""

    def _answer(self, request: Request) -> str:
        return answer_from_transcript(request.prompt, self.transcribe(request))

    async def generate(self, request: Request) -> Response:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        text = await loop.run_in_executor(self._pool, self._answer, request)
        return Response(text=text, latency_s=time.perf_counter() - started)

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def create(settings: Settings) -> ReferenceModel:
    return ReferenceModel(settings)
