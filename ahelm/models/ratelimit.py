"""A requests-per-minute limit shared by every concurrent call of one transport."""

from __future__ import annotations

import math


class RateLimiter:
    """Evenly spaced request starts: never two closer than ``60 / per_minute`` seconds.

    Equivalent to a token bucket of capacity one: an idle period earns no burst, so no window of
    any length ever sees more than its share of the rate (plus the one request at its edge).
    Each caller reserves the next free start time without a lock; a reservation that is then
    abandoned (cancelled, or the circuit opened) only leaves a gap, never a burst.
    """

    def __init__(self, per_minute: float) -> None:
        if not (math.isfinite(per_minute) and per_minute > 0):
            raise ValueError("requests_per_minute must be a positive number")
        self.per_minute = per_minute
        self.interval_s = 60.0 / per_minute
        self._next = -math.inf

    def reserve(self, now: float) -> float:
        """Seconds from ``now`` until the caller may start; that start is then taken."""
        start = max(now, self._next)
        self._next = start + self.interval_s
        return start - now
