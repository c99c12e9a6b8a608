"""Real-data scenarios inside a run: found through ``--data-dir``, or left out in one line.

A suite test names a real scenario exactly like a corpus one (``@pytest.mark.scenario(
"librispeech_asr")``). When its dataset is not in the data directory the test gets a single
placeholder parameter that collection then deselects, so an absent dataset costs no skipped
tests, only its share of the one summary line this module writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ahelm.datasets import DATA_DIR_ENV, DatasetAbsent, data_dir, load, real_scenarios

if TYPE_CHECKING:
    from ahelm.scenarios import Scenario

ABSENT_ID = "data-absent"
ABSENT_MARK = "ahelm_data_absent"


class RealData:
    def __init__(self, option: str | None, cache_root: Path) -> None:
        self.data_dir = data_dir(option)
        self.cache_root = cache_root
        self.absent: set[str] = set()
        self.loaded: dict[str, int] = {}
        if option and self.data_dir is not None and not self.data_dir.is_dir():
            raise pytest.UsageError(f"ahelm: --data-dir {option}: no such folder")

    @staticmethod
    def knows(name: str) -> bool:
        return name in real_scenarios()

    def scenario(self, name: str) -> Scenario | None:
        """The real scenario, or None (and noted) when its dataset is absent."""
        try:
            scenario = load(name, self.data_dir, self.cache_root)
        except DatasetAbsent:
            self.absent.add(name)
            return None
        self.loaded[name] = len(scenario.instances)
        return scenario

    def placeholder(self) -> Any:
        return pytest.param(None, id=ABSENT_ID, marks=getattr(pytest.mark, ABSENT_MARK))

    def deselect(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Drop the placeholders of absent datasets from ``items`` (reported as deselected).
        Only the absent scenarios still selected here (``-m``, ``-k`` and the like have had
        their say) count in the summary line."""
        gone = [item for item in items if item.get_closest_marker(ABSENT_MARK) is not None]
        if gone:
            config.hook.pytest_deselected(items=gone)
            items[:] = [item for item in items if item.get_closest_marker(ABSENT_MARK) is None]
        asked = set()
        for item in gone:
            marker = item.get_closest_marker("scenario")
            if marker is not None and marker.args:
                asked.add(str(marker.args[0]))
        self.absent &= asked

    def merge(self, absent: list[str] | None) -> None:
        self.absent.update(absent or ())

    def summary_line(self) -> str | None:
        """One line for every real scenario the suites asked for but could not run."""
        if not self.absent:
            return None
        table = real_scenarios()
        names = sorted({table[name][0].name for name in self.absent if name in table})
        count = len(self.absent)
        what = f"{count} real-data scenario{'s' if count != 1 else ''} not run"
        if self.data_dir is None:
            return (f"ahelm: {what}: no data directory (give --data-dir DIR or "
                    f"{DATA_DIR_ENV}; see docs/datasets/README.md)")
        return (f"ahelm: {what}: {', '.join(names)} not found in {self.data_dir} "
                f"(layouts: docs/datasets/)")
