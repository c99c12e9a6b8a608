"""A working example of the in-process ``python`` provider (see model_configs/python-example.toml).

A local checkpoint plugs in the same way: a factory that loads the weights once and returns an
object with ``generate(request) -> str``. This one wraps pocketsphinx and answers every prompt
with the bare transcript, which makes it an ASR-only floor (it ignores the question).
"""

from __future__ import annotations

from ahelm.core import Request
from ahelm.models.reference import ReferenceModel, Settings


class TranscriptOnly:
    """Answers with what it heard, whatever was asked."""

    max_concurrency = 1

    def __init__(self) -> None:
        self._asr = ReferenceModel(Settings())
        self.fingerprint = f"python-example/transcript-only/{self._asr.fingerprint}"

    def generate(self, request: Request) -> str:
        return self._asr.transcribe(request)


def transcript_only() -> TranscriptOnly:
    return TranscriptOnly()
