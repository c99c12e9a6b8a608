"""Perturbed audio as the model hears it: decoded, perturbed, written as 16-bit WAV."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from ahelm.audio import decode, to_wav_bytes
from ahelm.robustness.perturbations import Perturbation, apply

if TYPE_CHECKING:
    from ahelm.core import AudioClip

_CACHE_SIZE = 32
"""Recently rendered clips kept in memory: a test reads its clip for the model and again for
the report; holding a few avoids perturbing twice without holding a whole grid."""
_cache: OrderedDict[str, bytes] = OrderedDict()
_lock = threading.Lock()


def render_perturbed(data: bytes, clip: AudioClip) -> bytes:
    """The WAV bytes of ``clip``'s perturbation applied to ``data`` (its verified file)."""
    key = clip.identity
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    chain = [Perturbation(kind, severity) for kind, severity in clip.perturbation]
    wav = to_wav_bytes(apply(decode(data, str(clip.path)), chain, clip.seed))
    with _lock:
        _cache[key] = wav
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return wav
