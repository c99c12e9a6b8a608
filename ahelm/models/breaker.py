"""A circuit breaker for one endpoint: stop sending once it is clearly dead or refusing us.

It counts *requests*, not attempts: a failure is a request the retry layer gave up on (retries
exhausted on connection errors, timeouts, 5xx or 429, or a 2xx body that is not a JSON object).
Counting attempts would trip on a momentary blip that hits every in-flight connection at once (a
server restart, a load balancer dropping idle keep-alive connections), which retries exist to ride
out. Errors that are one request's own (400, 404, 422) neither count nor reset the count; a
success resets it. A refused credential (401, 403) opens the circuit at once, since every request
will fail the same way.

Once open, the circuit stays open for the rest of the run; there is no half-open probe. An ahelm
run is a batch release gate: once a stretch of instances errored, the error budget is spoiled and
the verdict can only be FAIL, so limping on against a dead endpoint only spends time and quota,
and an endpoint that drops out for minutes must be fixed before a release verdict means anything.
Errors are not cached across runs, so rerunning after the fix asks only for what is missing.
"""

from __future__ import annotations


class CircuitBreaker:
    """Consecutive endpoint failures; ``reason`` says why the circuit opened (None: closed)."""

    def __init__(self, threshold: int = 5) -> None:
        if threshold < 1:
            raise ValueError("breaker_threshold must be >= 1")
        self.threshold = threshold
        self.failures = 0
        self.reason: str | None = None

    @property
    def open(self) -> bool:
        return self.reason is not None

    def success(self) -> None:
        if not self.open:
            self.failures = 0

    def failure(self, last: str, *, fatal: str | None = None) -> bool:
        """Count one endpoint failure (``fatal`` opens at once, saying why); True if it opened."""
        if self.open:
            return False
        self.failures += 1
        if fatal is None and self.failures < self.threshold:
            return False
        plural = "" if self.failures == 1 else "s"
        cause = fatal or f"after {self.failures} consecutive failure{plural}"
        self.reason = f"circuit open {cause}; last: {last}"
        return True

    def progress(self) -> str:
        """Where the count stands, for the message of a failure that did not open the circuit."""
        return f"circuit breaker: {self.failures} of {self.threshold} consecutive failures"
