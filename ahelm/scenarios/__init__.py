"""Scenarios: a folder with ``scenario.toml`` + ``manifest.jsonl`` + audio, read into Instances.

A scenario names its family (how rows become instances and how answers are scored); adding a
scenario to an existing family takes one folder and one test function.
"""

from __future__ import annotations

import random
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ahelm import ASPECTS
from ahelm.core import Instance
from ahelm.scenarios.asr import AsrFamily
from ahelm.scenarios.base import Family, ScenarioError, ScenarioSpec, json_lines
from ahelm.scenarios.multiple_choice import BiasFamily, MultipleChoiceFamily
from ahelm.scenarios.open_answer import OpenAnswerFamily
from ahelm.scenarios.refusal import RefusalFamily
from ahelm.scenarios.short_answer import ShortAnswerFamily
from ahelm.scenarios.translation import TranslationFamily

__all__ = ["FAMILIES", "Scenario", "ScenarioError", "ScenarioSpec", "load_scenario", "SUITE_SIZES"]

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (AsrFamily(), MultipleChoiceFamily(), BiasFamily(), ShortAnswerFamily(),
                   TranslationFamily(), RefusalFamily(), OpenAnswerFamily())
}
SUITE_SIZES = ("smoke", "full")


@dataclass(frozen=True)
class Scenario:
    spec: ScenarioSpec
    family: Family
    instances: tuple[Instance, ...]

    @property
    def name(self) -> str:
        return self.spec.name

    def select(self, size: str) -> tuple[Instance, ...]:
        """All instances (``full``) or a fixed, seeded subset balanced over the first group."""
        if size == "full" or len(self.instances) <= self.spec.smoke_size:
            return self.instances
        rng = random.Random(f"ahelm-smoke:{self.spec.name}")
        if self.spec.pair_by:
            return self._select_pairs(rng)
        strata: dict[str, list[Instance]] = defaultdict(list)
        key = self.spec.group_by[0] if self.spec.group_by else None
        for instance in self.instances:
            strata[(instance.group(key) or "") if key else ""].append(instance)
        pools = [rng.sample(strata[k], len(strata[k])) for k in sorted(strata)]
        chosen: list[Instance] = []
        while len(chosen) < self.spec.smoke_size:
            for pool in pools:
                if pool and len(chosen) < self.spec.smoke_size:
                    chosen.append(pool.pop())
        picked = {i.id for i in chosen}
        return tuple(i for i in self.instances if i.id in picked)

    def _select_pairs(self, rng: random.Random) -> tuple[Instance, ...]:
        """Whole pairs (every group's reading of a sentence), so paired tests keep working."""
        keys = sorted({i.pair for i in self.instances if i.pair is not None})
        rng.shuffle(keys)
        chosen: set[str] = set()
        count = 0
        for key in keys:
            if count >= self.spec.smoke_size:
                break
            chosen.add(key)
            count += sum(1 for i in self.instances if i.pair == key)
        return tuple(i for i in self.instances if i.pair in chosen)


def load_scenario(directory: Path) -> Scenario:
    """Read and check a scenario folder; every error names the file, line and field."""
    spec = _read_spec(directory / "scenario.toml")
    family = FAMILIES[spec.family]
    manifest = directory / "manifest.jsonl"
    if not manifest.is_file():
        raise ScenarioError(f"{manifest}: manifest not found")
    instances: list[Instance] = []
    seen: set[str] = set()
    for where, row in json_lines(manifest):
        instance = family.instance(spec, row, where)
        if instance.id in seen:
            raise ScenarioError(f"{where}: duplicate instance id {instance.id!r}")
        seen.add(instance.id)
        instances.append(instance)
    if not instances:
        raise ScenarioError(f"{manifest}: no instances")
    return Scenario(spec=spec, family=family, instances=tuple(instances))


_SPEC_FIELDS = frozenset({"name", "aspect", "family", "title", "language", "smoke_size",
                          "group_by", "pair_by", "options"})


def _read_spec(path: Path) -> ScenarioSpec:
    if not path.is_file():
        raise ScenarioError(f"{path}: scenario.toml not found")
    try:
        table: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc})") from None
    for name in ("name", "aspect", "family"):
        if not isinstance(table.get(name), str):
            raise ScenarioError(f"{path}: field '{name}' is missing or not a string")
    if table["aspect"] not in ASPECTS:
        raise ScenarioError(f"{path}: field 'aspect': {table['aspect']!r} is not one of {ASPECTS}")
    if table["family"] not in FAMILIES:
        raise ScenarioError(
            f"{path}: field 'family': unknown family {table['family']!r}; "
            f"known: {', '.join(sorted(FAMILIES))}"
        )
    smoke = table.get("smoke_size", 40)
    if not isinstance(smoke, int) or smoke < 1:
        raise ScenarioError(f"{path}: field 'smoke_size' should be a positive integer")
    group_by = table.get("group_by", [])
    if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
        raise ScenarioError(f"{path}: field 'group_by' should be a list of strings")
    pair_by = table.get("pair_by")
    if pair_by is not None and not isinstance(pair_by, str):
        raise ScenarioError(f"{path}: field 'pair_by' should be a string")
    options = table.get("options", {})
    if not isinstance(options, dict):
        raise ScenarioError(f"{path}: field 'options' should be a table")
    unknown = sorted(set(table) - _SPEC_FIELDS)
    if unknown:
        raise ScenarioError(f"{path}: unknown field(s) {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(_SPEC_FIELDS))}")
    return ScenarioSpec(
        pair_by=pair_by,
        name=table["name"],
        aspect=table["aspect"],
        family=table["family"],
        directory=path.parent,
        title=str(table.get("title", "")),
        language=str(table.get("language", "en")),
        smoke_size=smoke,
        group_by=tuple(group_by),
        options=options,
    )
