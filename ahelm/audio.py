"""Decoding corpus audio into the one shape every model receives: 16 kHz mono PCM."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
from math import gcd
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
import soundfile as sf

from ahelm.core import AUDIO_PIPELINE_VERSION, AudioClip, AudioError
from ahelm.store.files import write_atomic

T = TypeVar("T")

SAMPLE_RATE = 16_000
_BUFFER_NAME = re.compile(r"<_io\.BytesIO object at 0x[0-9a-f]+>")
MAX_SECONDS = 1800.0
"""Longer clips are refused: no AHELM scenario comes near, and one stray hour-long file
should not exhaust memory or an API's request size."""


def decode(data: bytes, source: str) -> np.ndarray:
    """Float32 mono samples at 16 kHz; resampled and downmixed when the file differs.

    Raises AudioError naming ``source`` for anything that is not usable audio.
    """
    if not data:
        raise AudioError(f"audio file {source} is empty")
    try:
        with sf.SoundFile(io.BytesIO(data)) as handle:
            rate = handle.samplerate
            if handle.frames > MAX_SECONDS * rate:
                raise AudioError(
                    f"audio file {source} lasts {handle.frames / rate / 60:.0f} min; "
                    f"clips longer than {MAX_SECONDS / 60:.0f} min are refused"
                )
            samples = handle.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        reason = _BUFFER_NAME.sub("the data", str(exc))
        raise AudioError(f"audio file {source} cannot be decoded: {reason}") from None
    if samples.shape[0] == 0:
        raise AudioError(f"audio file {source} has no samples")
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"audio file {source} contains NaN or infinite samples")
    mono = samples.mean(axis=1, dtype=np.float32)
    if rate != SAMPLE_RATE:
        from scipy.signal import resample_poly  # ~0.4 s to import: only when resampling

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


JOIN_GAP_SECONDS = 0.5
"""Silence between the files of a joined clip (AudioClip.then)."""


def join(parts: list[tuple[bytes, str]]) -> bytes:
    """Several files heard as one clip, in order, with half a second of silence between them;
    16 kHz mono 16-bit WAV. Each part is (bytes, source name for errors)."""
    gap = np.zeros(int(JOIN_GAP_SECONDS * SAMPLE_RATE), dtype=np.float32)
    pieces: list[np.ndarray] = []
    for index, (data, source) in enumerate(parts):
        if index:
            pieces.append(gap)
        pieces.append(decode(data, source))
    return to_wav_bytes(np.concatenate(pieces))


class WavCache:
    """The model-ready WAV of every clip heard, on disk, named by the clip's identity and the
    audio pipeline's version: decoding Ogg Opus (and rendering perturbations) costs ~4 ms a
    clip, reading it back ~0.05 ms, so a run re-decodes nothing a previous run decoded.

    Files hold the WAV base64-encoded (``<identity>-p<version>.wav.b64``), the form the JSON
    APIs carry: a request body is then the file's bytes between two pieces of JSON, with no
    encoding on the dispatcher's event loop (base64 of a 150 KB clip costs more than reading
    it). The few users of the raw WAV (the reference model, multipart uploads) decode it back,
    ~0.05 ms a clip.

    The source file is still read and checked against its checksum every time (AudioClip.verify),
    so a clip corrupted after it was cached fails its instance as before. Files are written
    atomically; when the folder outgrows ``max_bytes`` the least recently written are removed
    (``trim``, at the end of a run).
    """

    SUFFIX = ".wav.b64"

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.written = 0
        """Files this process added: ``trim`` has nothing to do when it added none."""

    def _path(self, clip: AudioClip) -> Path:
        key = f"{clip.identity}-p{AUDIO_PIPELINE_VERSION}"
        return self.folder / key[:2] / f"{key}{self.SUFFIX}"

    def holds(self, clip: AudioClip) -> bool:
        """Whether the clip's WAV is on disk already (reading it back is then cheap)."""
        return self._path(clip).is_file()

    def base64(self, clip: AudioClip) -> bytes:
        """The clip's model WAV, base64-encoded (ASCII bytes)."""
        verified = clip.verify() if clip.sha256 else None
        path = self._path(clip)
        try:
            return path.read_bytes()
        except OSError:
            pass
        encoded = base64.b64encode(_render_wav(clip, verified))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, encoded)
            self.written += 1
        except OSError:
            pass  # a read-only or full disk costs speed, never an answer
        return encoded

    def wav(self, clip: AudioClip) -> bytes:
        """The clip's model WAV."""
        try:
            return binascii.a2b_base64(self.base64(clip), strict_mode=True)
        except binascii.Error:
            # A damaged cache file: render the clip again and replace it.
            self._path(clip).unlink(missing_ok=True)
            return binascii.a2b_base64(self.base64(clip))

    def trim(self, *, force: bool = False) -> int:
        """Remove the oldest files until the folder is within ``max_bytes``; returns how many.
        Only after this process wrote files (a run that wrote none cannot have grown it).
        Files of earlier layouts (plain ``.wav``) count and age out like the others."""
        if not (self.written or force):
            return 0
        files = []
        for path in self.folder.glob("*/*.wav*"):
            try:
                stat = path.stat()
            except OSError:
                continue
            files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        removed = 0
        for _, size, path in sorted(files, key=lambda f: f[0]):
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
            removed += 1
        return removed


_cache: WavCache | None = None


def use_wav_cache(cache: WavCache | None) -> None:
    """Set (or with None, turn off) the process's WAV cache; the run's session sets it."""
    global _cache
    _cache = cache


def model_wav(clip: AudioClip) -> bytes:
    """What every model adapter sends: the clip as 16 kHz mono 16-bit WAV (AudioError if the
    file is missing, corrupt or not its manifest's), from the WAV cache when one is set."""
    return _cache.wav(clip) if _cache is not None else _render_wav(clip)


def model_wav_base64(clip: AudioClip) -> bytes:
    """:func:`model_wav`, base64-encoded (ASCII bytes): what JSON APIs carry. Read as is from
    the WAV cache when one is set."""
    if _cache is not None:
        return _cache.base64(clip)
    return base64.b64encode(_render_wav(clip))


def wav_is_cheap(clip: AudioClip) -> bool:
    """Whether :func:`model_wav` of this clip only reads a cached WAV back (~0.1 ms for a
    typical clip) rather than decoding or rendering it."""
    return _cache is not None and _cache.holds(clip)


async def with_model_wav(clip: AudioClip | None, work: Callable[[], T]) -> T:
    """``work()``, which reads ``clip``'s model WAV (or no audio at all), for a model adapter on
    an event loop: in a thread when the clip must be decoded or rendered, else right here, since
    reading a cached WAV back costs less than the thread hop."""
    if clip is None or wav_is_cheap(clip):
        return work()
    return await asyncio.to_thread(work)


def _render_wav(clip: AudioClip, verified: bytes | None = None) -> bytes:
    """The clip decoded to model-ready WAV; ``verified``: its file's bytes, if already read."""
    heard = clip.heard(verified) if verified is not None else clip.read_verified()
    return to_wav_bytes(decode(heard, str(clip.path)))
