"""ahelm: AHELM, the holistic evaluation of audio-language models, as a pytest suite with gates."""

from __future__ import annotations

__version__ = "0.1.0"

ASPECTS: tuple[str, ...] = (
    "perception",
    "knowledge",
    "reasoning",
    "emotion",
    "bias",
    "fairness",
    "multilinguality",
    "robustness",
    "toxicity",
    "safety",
)
"""The ten AHELM aspects; each is also a pytest marker (``-m perception``)."""
