"""AHELM proper from real data: one loader per dataset AHELM uses.

Users who have the data point ``--data-dir`` (or ``AHELM_DATA_DIR``) at a folder holding the
datasets in their published layouts, one folder each (``LibriSpeech/``, ``fleurs/``...; see
``docs/datasets/``). The suites name these scenarios like corpus scenarios; a scenario whose
dataset is absent is left out of the run, and the run says so in one line.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from ahelm.datasets.base import (
    Dataset,
    DatasetAbsent,
    DatasetError,
    LoadContext,
    RealScenario,
    load_instances,
)

if TYPE_CHECKING:
    from ahelm.scenarios import Scenario

__all__ = ["DATA_DIR_ENV", "Dataset", "DatasetAbsent", "DatasetError", "RealScenario",
           "data_dir", "datasets", "load", "real_scenarios"]

DATA_DIR_ENV = "AHELM_DATA_DIR"

_INFRASTRUCTURE = frozenset({"base", "hf", "run", "fetch"})


@cache
def datasets() -> dict[str, Dataset]:
    """Every module of this package that defines ``DATASET`` (one module per dataset),
    in the order of the ten aspects, then by name."""
    from ahelm import ASPECTS

    found: list[Dataset] = []
    for module in pkgutil.iter_modules(__path__):
        if module.name not in _INFRASTRUCTURE:
            dataset = getattr(importlib.import_module(f"{__name__}.{module.name}"), "DATASET", None)
            if isinstance(dataset, Dataset):
                found.append(dataset)
    found.sort(key=lambda d: (min(ASPECTS.index(s.aspect) for s in d.scenarios), d.name))
    return {d.name: d for d in found}


@cache
def real_scenarios() -> dict[str, tuple[Dataset, RealScenario]]:
    """Scenario name -> (its dataset, its mapping); names are unique across datasets."""
    table: dict[str, tuple[Dataset, RealScenario]] = {}
    for dataset in datasets().values():
        for scenario in dataset.scenarios:
            if scenario.name in table:  # pragma: no cover - guarded by a test
                raise RuntimeError(f"two datasets define scenario {scenario.name!r}")
            table[scenario.name] = (dataset, scenario)
    return table


def data_dir(option: str | None) -> Path | None:
    """``--data-dir``, else ``$AHELM_DATA_DIR``, else None (no real data)."""
    value = option or os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser().resolve() if value else None


def load(name: str, data: Path | None, cache_root: Path) -> Scenario:
    """Real scenario ``name`` read from its dataset under ``data``; DatasetAbsent when the
    dataset is not there. ``cache_root`` holds files derived from the data (export audio)."""
    from ahelm.scenarios import FAMILIES, Scenario

    dataset, scenario = real_scenarios()[name]
    root = dataset.locate(data) if data is not None else None
    if root is None:
        raise DatasetAbsent(name)
    context = LoadContext(root=root, cache_dir=cache_root / dataset.name)
    family = FAMILIES[scenario.family]
    spec, instances = load_instances(dataset, scenario, context, family)
    return Scenario(spec=spec, family=family, instances=instances)
