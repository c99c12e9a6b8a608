"""The circuit breaker and the requests-per-minute limit of the HTTP layer, over real sockets.

A dead or misconfigured endpoint must end a run within seconds with one clear message, not after
thousands of retries; a merely flaky one must never trip the breaker.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from loopback import LoopbackServer, RecordedRequest, loopback_server, ok, raw, sleep, status
from suitekit import make_project

from ahelm.config import ConfigError
from ahelm.core import ModelCallError
from ahelm.models.breaker import CircuitBreaker
from ahelm.models.http import START_SPACING_S, HttpTransport, JsonResult, RetryPolicy
from ahelm.models.openai_chat import OpenAIChatModel, Settings, fingerprint
from ahelm.models.ratelimit import RateLimiter

__all__ = ["loopback_server"]
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

FAST = RetryPolicy(max_retries=3, backoff_base_s=0.01, backoff_max_s=0.05, jitter=0.0)
NO_RETRY = RetryPolicy(max_retries=0)
CANARY = "sk-canary-breaker-5e1d9a"
Outcome = JsonResult | ModelCallError


def closed_port() -> int:
    """A port nothing listens on: bound, noted, closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def transport(base_url: str, **kwargs: Any) -> HttpTransport:
    kwargs.setdefault("retry", FAST)
    return HttpTransport(
        base_url, headers={"Authorization": f"Bearer {CANARY}"}, secrets=[CANARY], **kwargs
    )


def drive(http: HttpTransport, n: int, workers: int | None = None, *,
          warm: bool = False) -> list[Outcome]:
    """``n`` calls worked through by ``workers`` coroutines, as the dispatcher does; ``warm``:
    after warming the transport up as the dispatcher does (in a process that has not made an
    HTTP call yet, the first one loads anyio's backend, which would delay its arrival)."""

    async def go() -> list[Outcome]:
        if warm:
            await http.warm()
        outcomes: list[Outcome | None] = [None] * n
        todo = iter(range(n))

        async def worker() -> None:
            for i in todo:
                try:
                    outcomes[i] = await http.post_json("chat/completions", {"i": i})
                except ModelCallError as exc:
                    outcomes[i] = exc

        try:
            await asyncio.gather(*(worker() for _ in range(workers or http.max_concurrency)))
        finally:
            await http.aclose()
        return [o for o in outcomes if o is not None]

    return asyncio.run(go())


def errors(outcomes: list[Outcome]) -> list[ModelCallError]:
    return [o for o in outcomes if isinstance(o, ModelCallError)]


def assert_dead_endpoint_stopped(http: HttpTransport, outcomes: list[Outcome]) -> None:
    """Every call failed; all but the first few say the circuit is open, naming the endpoint."""
    failed = errors(outcomes)
    assert len(failed) == len(outcomes)
    assert http.breaker_open and http.breaker_reason is not None
    opened = [e for e in failed if e.message.startswith("circuit open after 5 consecutive")]
    counted = [e for e in failed if "[circuit breaker: " in e.message]
    assert len(opened) + len(counted) == len(failed)
    assert len(counted) <= http.breaker.threshold - 1
    assert opened[-1].message == http.breaker_reason
    assert f"The endpoint {http.base_url} looks unreachable or misconfigured" in http.breaker_reason
    assert "the remaining requests were not sent" in http.breaker_reason
    for error in failed:
        assert CANARY not in error.message + (error.raw or "")


# --- pure pieces -------------------------------------------------------------------------------


def test_breaker_counts_consecutive_failures_and_a_success_resets() -> None:
    breaker = CircuitBreaker(3)
    assert not breaker.failure("a") and not breaker.failure("b")
    breaker.success()
    assert not breaker.failure("c") and not breaker.failure("d")
    assert breaker.progress() == "circuit breaker: 2 of 3 consecutive failures"
    assert breaker.failure("e") and breaker.open
    assert breaker.reason == "circuit open after 3 consecutive failures; last: e"
    breaker.success()
    assert breaker.open and not breaker.failure("f"), "once open, it stays open"
    fatal = CircuitBreaker(5)
    assert fatal.failure("401", fatal="at once: bad key") and fatal.open
    with pytest.raises(ValueError):
        CircuitBreaker(0)


def test_rate_limiter_spaces_starts_and_earns_no_burst_when_idle() -> None:
    limiter = RateLimiter(600)
    assert [limiter.reserve(100.0) for _ in range(3)] == pytest.approx([0.0, 0.1, 0.2])
    assert limiter.reserve(100.25) == pytest.approx(0.05)
    assert limiter.reserve(500.0) == 0.0 and limiter.reserve(500.0) == pytest.approx(0.1)
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            RateLimiter(bad)


def test_settings_validate_and_pass_the_knobs_without_changing_the_fingerprint() -> None:
    base = Settings(model="m", base_url="http://h/v1")
    knobs = Settings(model="m", base_url="http://h/v1", requests_per_minute=30.0,
                     breaker_threshold=2)
    assert fingerprint(knobs) == fingerprint(base)
    http = OpenAIChatModel(knobs)._transport
    assert http.breaker.threshold == 2 and http.rate is not None and http.rate.interval_s == 2.0
    assert OpenAIChatModel(base)._transport.rate is None
    for field, value in (("requests_per_minute", 0.0), ("requests_per_minute", -5.0),
                         ("breaker_threshold", 0)):
        bad: dict[str, Any] = {field: value}
        with pytest.raises(ConfigError, match=field):
            Settings(model="m", base_url="http://h/v1", **bad)


# --- (a) nothing listens -----------------------------------------------------------------------


def test_closed_port_opens_the_circuit_and_stops_within_seconds() -> None:
    http = transport(f"http://127.0.0.1:{closed_port()}/v1", max_concurrency=8)
    started = time.monotonic()
    outcomes = drive(http, 200)
    elapsed = time.monotonic() - started
    print(f"closed port: 200 calls failed in {elapsed:.2f} s with {http.attempts_sent} attempts")
    assert len(outcomes) == 200
    assert_dead_endpoint_stopped(http, outcomes)
    assert "ConnectError" in str(http.breaker_reason)
    # Only the calls in flight before the circuit opened tried (threshold + concurrency calls
    # at most, each with all its attempts), against 200 x 4 without a breaker.
    assert http.attempts_sent <= (5 + 8) * FAST.attempts
    assert elapsed < 10


# --- (b) 500 forever ---------------------------------------------------------------------------


def test_server_failing_forever_is_left_alone_after_the_threshold(
    loopback_server: LoopbackServer,
) -> None:
    loopback_server.responder = lambda request: status(500, body="down for good")
    http = transport(loopback_server.base_url, max_concurrency=8)
    started = time.monotonic()
    outcomes = drive(http, 200)
    elapsed = time.monotonic() - started
    received = len(loopback_server.requests)
    print(f"500 forever: 200 calls failed in {elapsed:.2f} s; the server received {received}")
    assert_dead_endpoint_stopped(http, outcomes)
    assert "HTTP 500" in str(http.breaker_reason) and "down for good" in str(http.breaker_reason)
    # Attempts cut short when the circuit opened may not have reached the server's handler.
    assert received <= http.attempts_sent <= (5 + 8) * FAST.attempts
    assert elapsed < 10


def test_opening_cuts_short_attempts_in_flight(loopback_server: LoopbackServer) -> None:
    loopback_server.script(*[status(503)] * 5)
    loopback_server.responder = lambda request: sleep(30, ok("far too late"))
    http = transport(loopback_server.base_url, retry=NO_RETRY, max_concurrency=8, timeout_s=60)
    started = time.monotonic()
    outcomes = drive(http, 8)
    elapsed = time.monotonic() - started
    assert len(errors(outcomes)) == 8 and http.breaker_open
    assert sum("circuit open after 5" in e.message for e in errors(outcomes)) >= 4
    assert elapsed < 5, f"in-flight attempts kept waiting ({elapsed:.1f} s)"


def test_opening_cuts_short_retries_waiting_in_backoff(loopback_server: LoopbackServer) -> None:
    def responder(request: RecordedRequest) -> Any:
        return sleep(0.3, status(401)) if request.index == 3 else status(500)

    loopback_server.responder = responder
    patient = RetryPolicy(max_retries=2, backoff_base_s=30, backoff_max_s=30, jitter=0.0)
    http = transport(loopback_server.base_url, retry=patient, max_concurrency=4)
    started = time.monotonic()
    outcomes = drive(http, 4)
    elapsed = time.monotonic() - started
    assert len(errors(outcomes)) == 4 and len(loopback_server.requests) == 4
    assert all("circuit open at once" in e.message for e in errors(outcomes))
    assert elapsed < 5, f"retries kept sleeping in backoff ({elapsed:.1f} s)"


# --- (c) flaky is not dead ---------------------------------------------------------------------


def every_third_fails(request: RecordedRequest) -> Any:
    return status(500) if request.index % 3 == 2 else ok("fine")


def test_flaky_server_with_retries_never_opens_the_breaker(
    loopback_server: LoopbackServer,
) -> None:
    loopback_server.responder = every_third_fails
    http = transport(loopback_server.base_url, max_concurrency=8)
    outcomes = drive(http, 120)
    assert not http.breaker_open and http.breaker_reason is None
    assert len(loopback_server.requests) > 160  # about 180: a third of them were retries
    # With 8 calls interleaved, a call's 4 attempts all land on bad turns about 1% of the time.
    assert len(errors(outcomes)) <= 6


def test_flaky_server_without_retries_fails_only_its_own_calls(
    loopback_server: LoopbackServer,
) -> None:
    loopback_server.responder = every_third_fails
    # Three in flight: every window of three holds one failure, so however the answers are
    # reordered in transit no streak reaches the threshold (5); with eight, a loaded machine
    # could deliver five failures in a row and rightly open the breaker.
    http = transport(loopback_server.base_url, retry=NO_RETRY, max_concurrency=3)
    outcomes = drive(http, 60)
    assert len(errors(outcomes)) == 20 and not http.breaker_open
    assert len(loopback_server.requests) == 60
    assert all("HTTP 500" in e.message and "[circuit breaker: " in e.message
               for e in errors(outcomes))


def test_a_success_resets_the_count(loopback_server: LoopbackServer) -> None:
    loopback_server.script(status(500), status(500), ok("up"), status(500), status(500))
    loopback_server.responder = lambda request: status(500)
    http = transport(loopback_server.base_url, retry=NO_RETRY, max_concurrency=1,
                     breaker_threshold=3)
    outcomes = drive(http, 8)
    assert isinstance(outcomes[2], JsonResult)
    assert "[circuit breaker: 2 of 3 consecutive failures]" in str(outcomes[4])
    assert str(outcomes[5]).startswith("circuit open after 3 consecutive failures")
    assert len(loopback_server.requests) == 6


@pytest.mark.parametrize("code", [400, 404, 422])
def test_errors_of_one_request_neither_count_nor_open(
    loopback_server: LoopbackServer, code: int
) -> None:
    loopback_server.responder = lambda request: status(code)
    http = transport(loopback_server.base_url, max_concurrency=2, breaker_threshold=2)
    outcomes = drive(http, 10)
    assert len(errors(outcomes)) == 10 and not http.breaker_open
    assert len(loopback_server.requests) == 10
    assert all("circuit" not in e.message for e in errors(outcomes))


def test_a_web_page_instead_of_the_api_counts_as_an_endpoint_failure(
    loopback_server: LoopbackServer,
) -> None:
    loopback_server.responder = lambda request: raw("<html>Sign in</html>", 200, "text/html")
    http = transport(loopback_server.base_url, max_concurrency=1, breaker_threshold=3)
    outcomes = drive(http, 20)
    assert len(errors(outcomes)) == 20 and len(loopback_server.requests) == 3
    assert "not valid JSON" in str(http.breaker_reason)


# --- (d) a refused key -------------------------------------------------------------------------


@pytest.mark.parametrize("code", [401, 403])
def test_refused_credentials_open_the_circuit_at_once(
    loopback_server: LoopbackServer, code: int
) -> None:
    loopback_server.responder = lambda r: status(code, body=f"bad key {r.headers['authorization']}")
    http = transport(loopback_server.base_url, max_concurrency=1)
    outcomes = drive(http, 50)
    assert len(loopback_server.requests) == 1 and http.attempts_sent == 1
    assert len(errors(outcomes)) == 50 and http.breaker_open
    reason = str(http.breaker_reason)
    assert reason.startswith("circuit open at once: the endpoint refuses the credentials")
    assert f"HTTP {code}" in reason and CANARY not in reason and "bad key Bearer" in reason
    assert all(e.message == reason for e in errors(outcomes))


# --- (e) requests per minute -------------------------------------------------------------------


def test_requests_per_minute_is_never_exceeded_retries_included(
    loopback_server: LoopbackServer,
) -> None:
    loopback_server.script(status(503), status(500))  # two retries: 13 calls, 15 requests
    http = transport(loopback_server.base_url, max_concurrency=8, requests_per_minute=600)
    started = time.monotonic()
    outcomes = drive(http, 13, warm=True)
    elapsed = time.monotonic() - started
    arrivals = sorted(r.arrived_at for r in loopback_server.requests)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    busiest = max(sum(a <= t < a + 1.0 for t in arrivals) for a in arrivals)
    print(f"600/min: 15 requests in {elapsed:.2f} s; min gap {min(gaps):.3f} s; "
          f"busiest 1 s window {busiest}")
    assert not errors(outcomes) and len(arrivals) == 15
    assert elapsed >= 1.4 - 0.02
    # Evenly spaced starts, no burst: any 11 consecutive arrivals span 10 intervals of 0.1 s
    # (50 ms allowed for thread scheduling), so no 1 s window sees more than 10 (+ its edge).
    assert all(arrivals[i + 10] - arrivals[i] >= 0.95 for i in range(len(arrivals) - 10))
    assert min(gaps) >= 0.07
    assert busiest <= 11


def wave_arrivals(server: LoopbackServer, start_spacing_s: float) -> list[float]:
    """When eight calls made at once reach a server that holds each for 0.2 s, in order; every
    call must have been answered."""
    server.responder = lambda request: sleep(0.2)
    http = transport(server.base_url, max_concurrency=8, start_spacing_s=start_spacing_s)
    outcomes = drive(http, 8, warm=True)
    arrivals = sorted(r.arrived_at for r in server.requests)
    assert not errors(outcomes) and len(arrivals) == 8
    return arrivals


def test_attempts_start_at_least_the_start_spacing_apart(
    loopback_server: LoopbackServer,
) -> None:
    # With a spacing of 40 ms the calls reach the server one by one, not in one burst, and all
    # are in flight together all the same.
    arrivals = wave_arrivals(loopback_server, 0.04)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    print(f"spacing 40 ms: arrivals span {arrivals[-1] - arrivals[0]:.3f} s, "
          f"min gap {min(gaps):.3f} s")
    assert min(gaps) >= 0.03
    assert arrivals[-1] - arrivals[0] < 0.2 + 7 * 0.04, "the spacing must not serialise calls"


def test_without_start_spacing_a_wave_of_calls_starts_at_once(
    loopback_server: LoopbackServer,
) -> None:
    arrivals = wave_arrivals(loopback_server, 0.0)
    assert arrivals[-1] - arrivals[0] < 0.1


def test_the_wider_of_rate_limit_and_start_spacing_paces_the_starts() -> None:
    slow = HttpTransport("http://h/v1", requests_per_minute=30.0)
    assert slow._starts is slow.rate, "one start every 2 s is wider than the default spacing"
    fast = HttpTransport("http://h/v1", requests_per_minute=600_000.0, start_spacing_s=0.01)
    assert fast.rate is not None and fast.rate.interval_s == pytest.approx(0.0001)
    assert fast._starts is not None and fast._starts.interval_s == pytest.approx(0.01)
    default = HttpTransport("http://h/v1")
    assert default.rate is None
    assert default._starts is not None and default._starts.interval_s == START_SPACING_S
    assert HttpTransport("http://h/v1", start_spacing_s=0)._starts is None


# --- the whole plugin against a dead endpoint --------------------------------------------------


def test_run_against_a_closed_port_ends_quickly_and_fails_the_error_budget(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AHELM_CANARY_KEY", CANARY)
    make_project(pytester, sentences=12)
    base_url = f"http://127.0.0.1:{closed_port()}/v1"
    config = pytester.path / "model_configs" / "http.toml"
    config.write_text(
        'provider = "openai-chat"\nmodel = "nobody-home"\n'
        f'base_url = "{base_url}"\napi_key_env = "AHELM_CANARY_KEY"\nmax_retries = 2\n'
    )
    started = time.monotonic()
    result = pytester.runpytest("--model=http")
    elapsed = time.monotonic() - started
    print(f"plugin run against a closed port: 24 instances in {elapsed:.2f} s")
    assert elapsed < 30
    assert result.ret == 1
    assert result.parseoutcomes().get("errors") == 24
    output = result.stdout.str()
    messages = re.findall(r"^s\d\d-(?:ann|bob): transport error: (.*)$", output, re.MULTILINE)
    assert len(messages) == 24 and all("circuit" in m for m in messages)
    result.stdout.fnmatch_lines([
        f"*circuit open after 5 consecutive failures; last: POST {base_url}/chat/completions: "
        "ConnectError*",
        f"*The endpoint {base_url} looks unreachable or misconfigured; "
        "the remaining requests were not sent.",
    ])
    result.stdout.fnmatch_lines(["*mini_asr:error_rate<=0.05*FAIL*", "ahelm verdict: FAIL*"])
    assert CANARY not in output + result.stderr.str()
    (records_file,) = (pytester.path / "reports" / "runs").glob("*/instances.jsonl")
    records = [json.loads(line) for line in Path(records_file).read_text().splitlines()]
    assert len(records) == 24
    assert all(r["status"] == "error" and "circuit" in r["error"] for r in records)


def test_connection_failures_count_attempt_by_attempt() -> None:
    # Nothing listens on the port: five refused connections open the circuit, whatever the
    # retry budget of each call, so a dead endpoint costs seconds, not calls x attempts x backoff.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = HttpTransport(
        f"http://127.0.0.1:{port}/v1", max_concurrency=1,
        retry=RetryPolicy(max_retries=10, backoff_base_s=0.01, backoff_max_s=0.02),
    )

    async def once() -> ModelCallError:
        try:
            await transport.post_json("chat/completions", {})
        except ModelCallError as exc:
            return exc
        finally:
            await transport.aclose()
        raise AssertionError("a closed port answered")

    error = asyncio.run(once())
    assert "circuit open after 5 consecutive failures" in error.message
    assert transport.attempts_sent == 5
