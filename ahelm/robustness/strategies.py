"""Hypothesis strategies over perturbation chains that shrink toward the mildest chain.

Shrinking is the point: when "WER stays within δ of clean" fails, hypothesis should report
the mildest breaking perturbation. Hypothesis shrinks plain floats toward "simple" values
(integers such as 1.0), not toward the smallest, so severities are drawn as integers on a
grid of ``GRID`` steps; integers shrink monotonically toward 0, i.e. toward milder.
Kinds come from ``sampled_from``, which shrinks toward the first kind, and lists shrink
toward fewer steps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from hypothesis import strategies as st

from ahelm.robustness.perturbations import KINDS, Perturbation

GRID = 1000
"""Severity resolution: 0.001 of the suite's harshest setting, finer than any WER effect."""

Chain = tuple[Perturbation, ...]


def perturbation_chains(
    kinds: Sequence[str] | None = None, max_severity: float = 1.0, max_length: int = 3
) -> st.SearchStrategy[Chain]:
    """Chains of 1..``max_length`` perturbations of distinct kinds, severities in [0, max]."""
    names = list(KINDS) if kinds is None else list(kinds)
    unknown = [name for name in names if name not in KINDS]
    if unknown or not names:
        raise ValueError(f"unknown or no perturbation kinds {unknown}; known: {sorted(KINDS)}")
    if not 0.0 <= max_severity <= 1.0:
        raise ValueError(f"max_severity must lie in [0, 1], got {max_severity!r}")
    top = round(max_severity * GRID)
    steps = st.tuples(st.sampled_from(names), st.integers(min_value=0, max_value=top))
    pairs = st.lists(
        steps, min_size=1, max_size=min(max_length, len(names)), unique_by=lambda step: step[0]
    )
    return pairs.map(
        lambda chosen: tuple(Perturbation(kind, level / GRID) for kind, level in chosen)
    )


def chain_seed(chain: Sequence[Perturbation], salt: int = 0) -> int:
    """Noise seed derived from the chain itself, so a chain always yields the same bytes.

    Uses sha256 of the repr (not ``hash``), so it is the same in every process, including
    pytest-xdist workers and a later replay from a report; ``salt`` varies it per clip.
    """
    text = f"{salt}:" + repr(tuple(chain))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def seeds() -> st.SearchStrategy[int]:
    """Explicit noise seeds, for properties that also want to vary the noise realisation."""
    return st.integers(min_value=0, max_value=2**32 - 1)
