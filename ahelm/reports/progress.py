"""A live progress line for long runs: requests answered out of planned, rate, ETA, errors.

The requests are counted where they are known: by the single process's dispatcher, or by the
run's dispatch service, which the xdist controller asks (see :class:`RequestCounts`); the line
then ends with the tests done. Where neither is at hand (xdist workers with dispatchers of
their own, for a local model) it counts tests done out of collected instead: every instance test
waits for its model answer, so tests done track answered requests; gates and properties are
counted too (they are quick once their scenario is answered).

Printed by the process that writes the terminal (the xdist controller, or the single process)
at most every ``INTERVAL_S`` seconds, as whole lines between pytest's own progress dots. Quiet
under ``-q`` and when the terminal is not a TTY (CI logs); ``AHELM_PROGRESS=1`` forces it on
(for logs that want it), ``AHELM_PROGRESS=0`` off; ``AHELM_PROGRESS_INTERVAL`` sets the seconds
between lines.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

INTERVAL_S = 5.0


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@dataclass(frozen=True)
class RequestCounts:
    """The run's requests so far: answered (from the model, the cache or as a failure) out of
    planned (distinct requests known so far), and how many of the answers are failures."""

    answered: int
    planned: int
    errors: int


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

    def line(self, now: float | None = None, requests: RequestCounts | None = None) -> str:
        """The line: of ``requests`` when given, else of the tests."""
        elapsed = max(1e-9, (now if now is not None else time.monotonic()) - self.started)
        if requests is not None:
            done, total, errors = requests.answered, requests.planned, requests.errors
            what, tests = "requests answered", f" · {self.done}/{self.total or '?'} tests done"
        else:
            done, total, errors, what, tests = self.done, self.total, self.errors, "tests done", ""
        rate = done / elapsed
        left = max(0, total - done)
        eta = _clock(left / rate) if rate > 0 and total else "?"
        share = f" ({100 * done / total:.0f}%)" if total else ""
        plural = "s" if errors != 1 else ""
        return (f"ahelm: {done}/{total or '?'} {what}{share} · {rate:.1f}/s · "
                f"ETA {eta} · {errors} answer error{plural}{tests}")

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
