"""The ``robustness`` fixture: robustness properties and breaking points inside a pytest run.

The properties and the bisection themselves are in :mod:`ahelm.robustness.properties`; this is
the glue to the run: the gate policy's ``[properties]``, the clips they use, the hypothesis
profile, the run's answers (cache and dispatcher), and what the reports receive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ahelm.core import Instance
from ahelm.robustness.policy import PropertySpec
from ahelm.robustness.properties import (
    BreakingPoint,
    PropertyOutcome,
    PropertyRunner,
    find_breaking_point,
)
from ahelm.session import BREAKING_KEY, PROPERTY_KEY

if TYPE_CHECKING:
    from ahelm.scenarios import Scenario
    from ahelm.session import AhelmSession


class Robustness:
    """The ``robustness`` fixture: ``check(name)`` runs a property, ``breaking_point(name, kind)``
    bisects one perturbation kind's severity."""

    def __init__(self, session: AhelmSession, item: pytest.Item) -> None:
        self._session = session
        self._item = item

    def check(self, name: str) -> None:
        outcome, runner = self.run_property(name)
        self._item.stash[PROPERTY_KEY] = outcome.to_json()
        from ahelm.reports.allure import attach_property

        attach_property(self._session.config, outcome, runner.scenario.spec.aspect,
                        runner.clips)
        if not outcome.passed:
            pytest.fail(outcome.message, pytrace=False)

    def breaking_point(self, name: str, kind: str) -> None:
        spec = self.spec(name)
        found = self.find_breaking_point(name, kind)
        data = found.to_json()
        data["property"] = name
        data["max_severity"] = spec.max_severity
        data["passed"] = not (found.breaking_severity is not None
                              and found.breaking_severity <= spec.max_severity)
        self._item.stash[BREAKING_KEY] = data
        from ahelm.reports.allure import attach_breaking_point

        attach_breaking_point(self._session.config, data, spec.scenario)
        if not data["passed"]:
            pytest.fail(
                f"{kind} breaks {name} at severity {found.breaking_severity:g} "
                f"({data['breaking_description']}): WER rises more than {spec.delta:g} above clean "
                f"within the promised range (max_severity {spec.max_severity:g})",
                pytrace=False,
            )

    # -- the run's side -----------------------------------------------------------------------

    def spec(self, name: str) -> PropertySpec:
        properties = self._session.policy.properties.properties
        spec = properties.get(name)
        if spec is None:
            known = ", ".join(sorted(properties)) or "none"
            pytest.fail(f"ahelm: no property {name!r} in the gate policy's [properties] "
                        f"(known: {known})", pytrace=False)
        return spec

    def _clips(self, name: str, count: int) -> tuple[Scenario, list[Instance]]:
        wanted = self.spec(name).scenario
        scenario = self._session.scenario(wanted)
        if scenario is None:
            pytest.skip(f"ahelm: property {name!r} runs on {wanted!r}, whose dataset is absent")
        return scenario, spread(scenario, count)

    def _hypothesis_settings(self) -> tuple[int, Any]:
        from hypothesis import settings

        config = self._session.config
        chosen = config.getoption("hypothesis_profile", None) or self._session.suite_size
        self._session.register_hypothesis_profiles()
        try:
            profile = settings.get_profile(chosen)
        except Exception:
            raise pytest.UsageError(f"ahelm: unknown hypothesis profile {chosen!r}") from None
        return int(profile.max_examples), profile

    def run_property(self, name: str) -> tuple[PropertyOutcome, PropertyRunner]:
        spec = self.spec(name)
        scenario, clips = self._clips(name, spec.clips)
        runner = PropertyRunner(spec, scenario, self._session.record_for, clips)
        examples, profile = self._hypothesis_settings()
        return runner.run(examples, profile), runner

    def find_breaking_point(self, name: str, kind: str) -> BreakingPoint:
        spec = self.spec(name)
        if spec.breaking_points is None:
            pytest.fail(f"ahelm: property {name!r} has no breaking_points table", pytrace=False)
        count, steps = spec.breaking_points.budget(self._session.suite_size)
        _, clips = self._clips(name, count)
        return find_breaking_point(kind, clips, self._session.record_for, spec.delta, steps)


def spread(scenario: Scenario, count: int) -> list[Instance]:
    """``count`` clips of the smoke subset, spread over its pairs and its first group label:
    round-robin over the group's values, one clip per pair (sentence) at most per round."""
    pool = list(scenario.select("smoke"))
    key = scenario.spec.group_by[0] if scenario.spec.group_by else None
    by_group: dict[str, list[Instance]] = {}
    for instance in pool:
        by_group.setdefault((instance.group(key) or "") if key else "", []).append(instance)
    chosen: list[Instance] = []
    used_pairs: set[str] = set()
    while len(chosen) < min(count, len(pool)):
        progressed = False
        for label in sorted(by_group):
            candidates = [i for i in by_group[label] if i not in chosen
                          and (i.pair is None or i.pair not in used_pairs)]
            if candidates and len(chosen) < count:
                chosen.append(candidates[0])
                if candidates[0].pair is not None:
                    used_pairs.add(candidates[0].pair)
                progressed = True
        if not progressed:
            used_pairs.clear()
    return chosen


