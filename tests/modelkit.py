"""Driving one model adapter from a synchronous test: a tone clip, generate, expected failures."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ahelm.core import AudioClip, ModelCallError, Request, Response
from ahelm.models.base import Model


def tone_clip(folder: Path) -> AudioClip:
    """Half a second of 440 Hz at 16 kHz, stored as FLAC like the corpus."""
    t = np.arange(8000) / 16_000
    path = folder / "tone.flac"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16_000, format="FLAC")
    return AudioClip(path, hashlib.sha256(path.read_bytes()).hexdigest())


def generate(model: Model, *requests: Request) -> list[Response]:
    """All requests at once on one event loop; the model is closed afterwards."""

    async def go() -> list[Response]:
        try:
            return list(await asyncio.gather(*(model.generate(r) for r in requests)))
        finally:
            await model.aclose()

    return asyncio.run(go())


def fails(model: Model, request: Request) -> ModelCallError:
    with pytest.raises(ModelCallError) as info:
        generate(model, request)
    return info.value
