"""Conditions such as ``wer <= 0.15`` or ``wer[gender=female] <= 20%``, parsed once, typed."""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Callable, Mapping

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_PATTERN = re.compile(
    r"^\s*(?P<metric>[a-z_][a-z0-9_]*(?:\[[a-z0-9_]+=[^\]\s]+\])?)"
    r"\s*(?P<op><=|>=|<|>)\s*"
    r"(?P<value>-?\d+(?:\.\d+)?)(?P<pct>%?)\s*$"
)


@dataclass(frozen=True)
class Condition:
    """``metric op threshold``; a metric name may select a group: ``wer[voice=slt]``."""

    metric: str
    op: str
    threshold: float
    text: str

    @classmethod
    def parse(cls, text: str) -> Condition:
        match = _PATTERN.match(text)
        if not match:
            raise ValueError(
                f"cannot parse {text!r}; expected 'METRIC OP NUMBER' such as 'wer <= 0.15', "
                "'accuracy >= 80%' or 'wer[gender=female] <= 0.2'"
            )
        value = float(match["value"]) / (100.0 if match["pct"] else 1.0)
        metric, op = match["metric"], match["op"]
        return cls(metric=metric, op=op, threshold=value, text=f"{metric} {op} {value:g}")

    def holds(self, value: float) -> bool:
        """False for an undefined value: a gate never passes on missing evidence."""
        return not math.isnan(value) and _OPS[self.op](value, self.threshold)

    def holds_for(self, values: Mapping[str, float]) -> bool:
        value = values.get(self.metric)
        return value is not None and self.holds(value)

    def __str__(self) -> str:
        return self.text
