"""Gates as their own test items: each scores a whole scenario, whatever order tests run in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ahelm.gates.kinds import Gate, RegressionGate
from ahelm.gates.verdict import GateResult

if TYPE_CHECKING:
    from ahelm.session import AhelmSession


class GateFailed(AssertionError):
    """A gate does not hold; its message gives the numbers. An assertion, so that reports count
    it as a failed check (Allure: failed), not as a broken test."""


class GateItem(pytest.Item):
    """``gate[english_asr:wer<=0.15]``: passes when the condition holds on the scenario."""

    def __init__(self, *, gate: Gate, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate
        self.result: GateResult | None = None

    @classmethod
    def for_gate(cls, parent: pytest.Module, gate: Gate, aspect: str) -> GateItem:
        item: GateItem = cls.from_parent(parent, name=f"gate[{gate.name}]", gate=gate)
        item.add_marker(getattr(pytest.mark, aspect))
        item.add_marker(pytest.mark.gate)
        return item

    def runtest(self) -> None:
        from ahelm.plugin import SESSION_KEY

        session: AhelmSession = self.config.stash[SESSION_KEY]
        if isinstance(self.gate, RegressionGate) and not self.gate.baseline_records:
            pytest.skip(f"{self.gate.baseline_label} has no results for {self.gate.scenario}")
        self.result = self.gate.evaluate(session.scenario_results(self.gate.scenario))
        for key in ("kind", "condition", "value", "n", "message"):
            self.user_properties.append((f"ahelm_gate_{key}", str(getattr(self.result, key))))
        from ahelm.reports.allure import attach_gate

        attach_gate(self.config, self.result, session.scenario_aspect(self.gate.scenario))
        if not self.result.passed:
            raise GateFailed(self.result.message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, GateFailed):
            return f"gate failed: {excinfo.value}"
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"gate {self.gate.name} ({self.gate.condition_text})"
