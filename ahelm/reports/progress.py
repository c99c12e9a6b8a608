"""A live progress line for long runs: tests done out of collected, rate, ETA, answer errors.

Every instance test waits for its model answer, so tests done track answered requests; gates
and properties are counted too (they are quick once their scenario is answered).

Printed by the process that writes the terminal (the xdist controller, or the single process)
at most every ``INTERVAL_S`` seconds, as whole lines between pytest's own progress dots. Quiet
under ``-q`` and when the terminal is not a TTY (CI logs); ``AHELM_PROGRESS=1`` forces it on
(for logs that want it), ``AHELM_PROGRESS=0`` off; ``AHELM_PROGRESS_INTERVAL`` sets the seconds
between lines.
"""

from __future__ import annotations

import os
import time
from typing import Any

INTERVAL_S = 5.0


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    def __init__(self, interval_s: float = INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.total = 0
        self.done = 0
        self.errors = 0
        self.started = time.monotonic()
        self._last = self.started

    def planned(self, count: int) -> None:
        """Tests this run will run (collection tells; under xdist, every worker tells the same
        number, so the largest is kept)."""
        self.total = max(self.total, count)

    def line(self, now: float | None = None) -> str:
        elapsed = max(1e-9, (now if now is not None else time.monotonic()) - self.started)
        rate = self.done / elapsed
        left = max(0, self.total - self.done)
        eta = _clock(left / rate) if rate > 0 and self.total else "?"
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        plural = "s" if self.errors != 1 else ""
        return (f"ahelm: {self.done}/{self.total or '?'} tests done{share} · {rate:.1f}/s · "
                f"ETA {eta} · {self.errors} answer error{plural}")

    def due(self, now: float | None = None) -> bool:
        now = now if now is not None else time.monotonic()
        if now - self._last < self.interval_s:
            return False
        self._last = now
        return True


def enabled(config: Any, terminalreporter: Any) -> bool:
    forced = os.environ.get("AHELM_PROGRESS", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    if config.get_verbosity() < 0:
        return False
    return bool(getattr(terminalreporter, "isatty", False))
