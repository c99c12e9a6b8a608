"""Audio perturbations with one severity knob each, applied reproducibly via audiomentations.

A robustness property ("WER under any perturbation up to severity s stays within δ of
clean") needs perturbations that are (a) ordered, so a failing case can shrink to the
mildest one, (b) nameable in plain physical units for a report, and (c) bit-reproducible
from a seed, so a report's failing case can be replayed anywhere.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import math
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ahelm.audio import SAMPLE_RATE


class _LazyAudiomentations:
    """audiomentations, imported when a perturbation is first built: importing it (and the
    scipy it pulls in) costs every pytest process ~0.3 s before its first request otherwise."""

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module("audiomentations"), name)


am: Any = _LazyAudiomentations()


class Transform(Protocol):
    """The part of an audiomentations transform this module uses."""

    parameters: dict[str, Any]

    def __call__(self, samples: np.ndarray, sample_rate: int) -> np.ndarray: ...


@dataclass(frozen=True)
class Perturbation:
    """One perturbation: a registered ``kind`` at ``severity`` in [0, 1] (0 = mildest)."""

    kind: str
    severity: float

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown perturbation kind {self.kind!r}; known: {sorted(KINDS)}")
        if not 0.0 <= self.severity <= 1.0:
            raise ValueError(f"severity must lie in [0, 1], got {self.severity!r}")

    @property
    def value(self) -> float:
        """The physical parameter this severity stands for, in the kind's unit."""
        return KINDS[self.kind].value(self.severity)


@dataclass(frozen=True)
class Kind:
    """A perturbation family: how severity maps to one physical parameter, and its transform.

    ``mild`` is the value at severity 0, ``harsh`` at severity 1; ``log`` interpolates on a
    log scale (frequencies, ratios), ``integer`` rounds (parameters audiomentations draws
    with ``randint``). Every mapping is monotonic in severity.
    """

    name: str
    label: str
    parameter: str
    unit: str
    mild: float
    harsh: float
    build: Callable[[float], Transform]
    template: str
    log: bool = False
    integer: bool = False
    changes_length: bool = False
    words: Callable[[float], str] | None = None
    snap: tuple[float, ...] = ()
    """Allowed values (e.g. MP3 bitrates): the value snaps to the nearest one."""
    identity_at_zero: bool = True
    """Severity 0 leaves the waveform nearly unchanged. False for kinds whose mildest setting
    still changes every sample (a small dry room, a high-bitrate codec); severity still orders
    them from mild to harsh."""

    def value(self, severity: float) -> float:
        """The physical parameter at ``severity`` (clamped to [0, 1])."""
        s = min(max(float(severity), 0.0), 1.0)
        if self.log:
            value = math.exp(math.log(self.mild) + s * (math.log(self.harsh) - math.log(self.mild)))
        else:
            value = self.mild + s * (self.harsh - self.mild)
        if self.snap:
            return float(min(self.snap, key=lambda allowed: (abs(allowed - value), allowed)))
        return float(round(value)) if self.integer else value

    def transform(self, severity: float) -> Transform:
        """An audiomentations transform fixed at this severity's value (min == max, p=1)."""
        return self.build(self.value(severity))

    def describe(self, severity: float) -> str:
        """Plain words and numbers, e.g. "low-pass at 3100 Hz"."""
        value = self.value(severity)
        return self.words(value) if self.words else self.template.format(v=value)


_TEL_LOW = (20.0, 300.0)
"""Lower band edge (Hz) at severity 0 and 1; the upper edge follows from the width in octaves."""
_TEL_HIGH = (7990.0, 3400.0)
"""Upper band edge (Hz) at severity 0 (just under Nyquist) and 1 (telephone)."""


def _band_edges(octaves: float) -> tuple[float, float]:
    """Band edges whose log-position moves linearly from 20-7990 Hz to telephone 300-3400 Hz."""
    wide, narrow = math.log2(_TEL_HIGH[0] / _TEL_LOW[0]), math.log2(_TEL_HIGH[1] / _TEL_LOW[1])
    t = (wide - octaves) / (wide - narrow)
    low = _TEL_LOW[0] * (_TEL_LOW[1] / _TEL_LOW[0]) ** t
    return low, low * 2.0**octaves


def _band_pass(octaves: float) -> Transform:
    low, high = _band_edges(octaves)
    centre, fraction = (low + high) / 2.0, (high - low) / ((low + high) / 2.0)
    transform: Transform = am.BandPassFilter(
        min_center_freq=centre, max_center_freq=centre,
        min_bandwidth_fraction=fraction, max_bandwidth_fraction=fraction,
        min_rolloff=12, max_rolloff=12, zero_phase=True, p=1.0,
    )
    return transform


def _band_words(octaves: float) -> str:
    """Edges in Hz read better than a width in octaves."""
    low, high = _band_edges(octaves)
    return f"band-pass {low:.0f}-{high:.0f} Hz ({octaves:.2f} octaves)"


def _color_noise(color: str) -> Callable[[float], Transform]:
    def build(snr: float) -> Transform:
        from audiomentations.augmentations.add_color_noise import NOISE_COLOR_DECAYS

        decay = NOISE_COLOR_DECAYS[color]
        transform: Transform = am.AddColorNoise(
            min_snr_db=snr, max_snr_db=snr, min_f_decay=decay, max_f_decay=decay,
            p_apply_a_weighting=0.0, p=1.0,
        )
        return transform
    return build


def _reverb(rt60: float) -> Transform:
    """A fixed 5 x 4 x 3 m room with the source 1 m from the microphone; only the reverberation
    time changes. Image-source model only: pyroomacoustics' ray tracing draws from its own
    unseeded generator, so it would break bit-reproducibility."""
    transform: Transform = am.RoomSimulator(
        min_size_x=5.0, max_size_x=5.0, min_size_y=4.0, max_size_y=4.0,
        min_size_z=3.0, max_size_z=3.0,
        min_target_rt60=rt60, max_target_rt60=rt60, calculation_mode="rt60",
        min_source_x=1.5, max_source_x=1.5, min_source_y=2.0, max_source_y=2.0,
        min_source_z=1.5, max_source_z=1.5,
        min_mic_distance=1.0, max_mic_distance=1.0, min_mic_azimuth=0.5, max_mic_azimuth=0.5,
        min_mic_elevation=0.0, max_mic_elevation=0.0,
        use_ray_tracing=False, max_order=8, leave_length_unchanged=True, p=1.0,
    )
    return transform


_MP3_BITRATES = (8.0, 16.0, 24.0, 32.0, 40.0, 48.0, 56.0, 64.0, 80.0, 96.0, 112.0, 128.0,
                 144.0, 160.0, 192.0, 224.0, 256.0, 320.0)


def _register(*kinds: Kind) -> dict[str, Kind]:
    return {kind.name: kind for kind in kinds}


KINDS: dict[str, Kind] = _register(
    Kind("gaussian_noise", "white noise", "snr", "dB", 40.0, 0.0,
         lambda v: am.AddGaussianSNR(min_snr_db=v, max_snr_db=v, p=1.0),
         "white noise at {v:.1f} dB SNR"),
    Kind("pink_noise", "pink noise", "snr", "dB", 40.0, 0.0,
         _color_noise("pink"), "pink noise at {v:.1f} dB SNR"),
    Kind("brown_noise", "brown noise", "snr", "dB", 40.0, 0.0,
         _color_noise("brown"), "brown noise at {v:.1f} dB SNR"),
    Kind("low_pass", "low-pass", "cutoff", "Hz", 8000.0, 500.0,
         lambda v: am.LowPassFilter(min_cutoff_freq=v, max_cutoff_freq=v,
                                    min_rolloff=12, max_rolloff=12, zero_phase=True, p=1.0),
         "low-pass at {v:.0f} Hz", log=True),
    Kind("band_pass_telephone", "telephone band-pass", "bandwidth", "octaves",
         math.log2(_TEL_HIGH[0] / _TEL_LOW[0]), math.log2(_TEL_HIGH[1] / _TEL_LOW[1]), _band_pass,
         "band-pass {v:.2f} octaves", words=_band_words),
    Kind("clipping", "clipping", "percentile_threshold", "%", 0.0, 40.0,
         lambda v: am.ClippingDistortion(min_percentile_threshold=int(v),
                                         max_percentile_threshold=int(v), p=1.0),
         "clipping of the loudest {v:.0f}% of samples", integer=True),
    Kind("gain_down", "gain", "gain", "dB", 0.0, -30.0,
         lambda v: am.Gain(min_gain_db=v, max_gain_db=v, p=1.0), "gain of {v:.1f} dB"),
    Kind("bit_crush", "bit crushing", "bit_depth", "bits", 16.0, 4.0,
         lambda v: am.BitCrush(min_bit_depth=int(v), max_bit_depth=int(v), p=1.0),
         "bit-crushing to {v:.0f} bits", integer=True),
    Kind("time_stretch", "speed-up", "rate", "x", 1.0, 1.5,
         lambda v: am.TimeStretch(min_rate=v, max_rate=v, leave_length_unchanged=False,
                                  method="signalsmith_stretch", p=1.0),
         "speed-up by {v:.2f}x", changes_length=True),
    Kind("pitch_shift", "pitch shift", "semitones", "st", 0.0, 4.0,
         lambda v: am.PitchShift(min_semitones=v, max_semitones=v,
                                 method="signalsmith_stretch", p=1.0),
         "pitch shift up {v:.2f} semitones"),
    Kind("reverb", "room reverberation", "rt60", "s", 0.2, 1.5, _reverb,
         "room reverberation with RT60 {v:.2f} s", identity_at_zero=False),
    Kind("mp3", "MP3 compression", "bitrate", "kbps", 320.0, 8.0,
         lambda v: am.Mp3Compression(min_bitrate=int(v), max_bitrate=int(v),
                                     backend="fast-mp3-augment", p=1.0),
         "MP3 compression at {v:.0f} kbps", log=True, snap=_MP3_BITRATES,
         identity_at_zero=False),
)
"""Kinds that run offline here. Filters use audiomentations' zero-phase mode (roll-off
setting 12 dB/oct, run forward and backward, -6 dB at the edge): they change the spectrum,
not timing, so severity 0 stays near identity even sample by sample. MP3 uses the
fast-mp3-augment backend (LAME, delay-compensated), reverberation pyroomacoustics."""

PERTURBATION_VERSION = f"1/audiomentations-{importlib.metadata.version('audiomentations')}"
"""Part of a perturbed clip's identity (and so of its cache key): bump when the same chain and
seed could give different audio."""


def describe(chain: Sequence[Perturbation]) -> str:
    """The chain in words, e.g. "pink noise at 17.0 dB SNR, then low-pass at 3100 Hz"."""
    if not chain:
        return "no perturbation"
    return ", then ".join(KINDS[p.kind].describe(p.severity) for p in chain)


def total_severity(chain: Sequence[Perturbation]) -> float:
    """Sum of severities: the scalar by which one chain is milder than another."""
    return float(sum(p.severity for p in chain))


def severity_order(chain: Sequence[Perturbation]) -> tuple[float, int, tuple[tuple[str, float], ...]]:
    """Sort key: milder chains first (total severity, then fewer steps, then kind/severity).

    Hypothesis shrinks toward this order too: the strategies draw severities as integers on
    a grid, which shrink toward 0 (plain floats shrink toward "simple" values such as 1.0).
    """
    return total_severity(chain), len(chain), tuple((p.kind, p.severity) for p in chain)


def _step_seed(seed: int, index: int) -> int:
    """A 32-bit seed for step ``index`` that does not depend on PYTHONHASHSEED or process."""
    digest = hashlib.sha256(f"ahelm-perturb:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@contextmanager
def _seeded_global_rng(seed: int) -> Iterator[None]:
    """Seed ``random`` and ``np.random`` (which audiomentations draws from), then restore them."""
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _plain(value: Any) -> Any:
    """JSON-friendly copy of an audiomentations parameter (numpy scalars become Python)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def apply_recorded(
    samples: np.ndarray, chain: Sequence[Perturbation], seed: int
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Apply ``chain`` in order; also return each step's actual parameters, for replay.

    Deterministic: the same samples, chain and seed give bit-identical output in any process.
    The output is float32 mono at 16 kHz clipped to [-1, 1].
    """
    audio = np.ascontiguousarray(samples, dtype=np.float32)
    records: list[dict[str, Any]] = []
    for index, step in enumerate(chain):
        kind = KINDS[step.kind]
        transform = kind.transform(step.severity)
        with _seeded_global_rng(_step_seed(seed, index)):
            audio = np.asarray(transform(samples=audio, sample_rate=SAMPLE_RATE), dtype=np.float32)
        records.append({
            "kind": step.kind, "severity": step.severity,
            kind.parameter: kind.value(step.severity), "unit": kind.unit,
            "transform": type(transform).__name__,
            "parameters": {k: _plain(v) for k, v in transform.parameters.items()},
        })
    return np.clip(audio, -1.0, 1.0).astype(np.float32), records


def apply(samples: np.ndarray, chain: Sequence[Perturbation], seed: int) -> np.ndarray:
    """The perturbed samples only; see :func:`apply_recorded`."""
    return apply_recorded(samples, chain, seed)[0]
