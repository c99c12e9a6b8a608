"""Decoding corpus audio into the one shape every model receives: 16 kHz mono PCM."""

from __future__ import annotations

import io
from math import gcd

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from ahelm.core import AudioError

SAMPLE_RATE = 16_000


def decode(data: bytes, source: str) -> np.ndarray:
    """Float32 mono samples at 16 kHz; resampled and downmixed when the file differs.

    Raises AudioError naming ``source`` for anything that is not usable audio.
    """
    if not data:
        raise AudioError(f"audio file {source} is empty")
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioError(f"audio file {source} cannot be decoded: {exc}") from None
    if samples.shape[0] == 0:
        raise AudioError(f"audio file {source} has no samples")
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"audio file {source} contains NaN or infinite samples")
    mono = samples.mean(axis=1, dtype=np.float32)
    if rate != SAMPLE_RATE:
        common = gcd(int(rate), SAMPLE_RATE)
        mono = resample_poly(mono, SAMPLE_RATE // common, int(rate) // common).astype(np.float32)
    return np.asarray(mono, dtype=np.float32)


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """The inverse of libsndfile's int16 -> float scaling (1/32768), so a round trip is exact."""
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)


def to_wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """A 16-bit PCM WAV file, the format every audio API accepts."""
    buffer = io.BytesIO()
    sf.write(buffer, to_pcm16(samples), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
