"""Perturbed audio for robustness properties: severity-ordered, reproducible, describable."""

from ahelm.robustness.perturbations import (
    KINDS,
    Kind,
    Perturbation,
    apply,
    apply_recorded,
    describe,
    severity_order,
    total_severity,
)

__all__ = [
    "KINDS",
    "Kind",
    "Perturbation",
    "apply",
    "apply_recorded",
    "describe",
    "severity_order",
    "total_severity",
]
