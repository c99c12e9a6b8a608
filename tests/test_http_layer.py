"""The shared HTTP reliability layer, over real loopback sockets."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest
from loopback import (
    LoopbackServer,
    cut_short,
    drop,
    json_reply,
    loopback_server,
    ok,
    raw,
    sleep,
    status,
)

from ahelm.core import ModelCallError
from ahelm.models.http import HttpTransport, JsonResult, RetryPolicy, parse_retry_after
from ahelm.secrets import REDACTED, Secret, redact

__all__ = ["loopback_server"]

FAST = RetryPolicy(max_retries=3, backoff_base_s=0.01, backoff_max_s=0.05, jitter=0.0)


def post(server: LoopbackServer, policy: RetryPolicy = FAST, **kwargs: Any) -> JsonResult:
    async def go() -> JsonResult:
        transport = HttpTransport(server.base_url, retry=policy, **kwargs)
        try:
            return await transport.post_json("chat/completions", {"q": 1})
        finally:
            await transport.aclose()

    return asyncio.run(go())


def fails(server: LoopbackServer, policy: RetryPolicy = FAST, **kwargs: Any) -> ModelCallError:
    with pytest.raises(ModelCallError) as info:
        post(server, policy, **kwargs)
    return info.value


# --- pure pieces -------------------------------------------------------------------------------


def test_redact_replaces_every_secret_and_ignores_empty_ones() -> None:
    text = "key=abc123 again abc123, other=xyz"
    assert (
        redact(text, ["abc123", "", "xyz"]) == f"key={REDACTED} again {REDACTED}, other={REDACTED}"
    )
    assert redact("abcdef", ["abc", "abcdef"]) == REDACTED
    assert redact("nothing", []) == "nothing"


def test_secret_never_shows_in_repr_or_str() -> None:
    secret = Secret("sk-canary-123", source="OPENAI_API_KEY")
    assert "sk-canary-123" not in repr(secret) + str(secret) + f"{secret}"
    assert secret.reveal() == "sk-canary-123"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("1", 1.0), (" 2.5 ", 2.5), ("0", 0.0), ("-3", 0.0), ("", None), (None, None), ("soon", None)],
)
def test_parse_retry_after_delta_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
    header = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(7.0)
    past = format_datetime(now - timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


def test_backoff_grows_exponentially_is_capped_and_jittered_down() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, backoff_max_s=5.0, jitter=0.5, retry_after_cap_s=10)
    assert [policy.delay(n, rand=lambda: 0.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert policy.delay(2, rand=lambda: 1.0) == 1.0
    assert policy.delay(1, retry_after=3.0) == 3.0
    assert policy.delay(1, retry_after=99.0) == 10.0
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.5)


# --- over the wire -----------------------------------------------------------------------------


def test_success_returns_object_body_and_attempt_count(loopback_server: LoopbackServer) -> None:
    loopback_server.script(ok("hi"))
    result = post(loopback_server, headers={"X-Test": "yes"})
    assert result.data["choices"][0]["message"]["content"] == "hi"
    assert result.status == 200 and result.attempts == 1 and result.elapsed_s > 0
    (request,) = loopback_server.requests
    assert request.path == "/v1/chat/completions" and request.json == {"q": 1}
    assert request.headers["x-test"] == "yes"


def test_429_honours_retry_after(loopback_server: LoopbackServer) -> None:
    loopback_server.script(status(429, {"Retry-After": "1"}), ok("later"))
    result = post(loopback_server)
    first, second = loopback_server.requests
    assert second.arrived_at - first.arrived_at >= 0.99
    assert result.attempts == 2 and result.elapsed_s >= 0.99


def test_retry_after_is_capped(loopback_server: LoopbackServer) -> None:
    policy = RetryPolicy(max_retries=2, backoff_base_s=0.01, jitter=0.0, retry_after_cap_s=0.1)
    loopback_server.script(status(503, {"Retry-After": "30"}), ok("ok"))
    started = time.monotonic()
    assert post(loopback_server, policy).attempts == 2
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("code", [429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried(loopback_server: LoopbackServer, code: int) -> None:
    loopback_server.script(status(code), ok("fine"))
    assert post(loopback_server).attempts == 2
    assert len(loopback_server.requests) == 2


def test_503_twice_then_success(loopback_server: LoopbackServer) -> None:
    loopback_server.script(status(503), status(503), ok("third time"))
    result = post(loopback_server)
    assert result.attempts == 3
    assert result.data["choices"][0]["message"]["content"] == "third time"


@pytest.mark.parametrize("code", [400, 401, 403, 404, 422])
def test_other_4xx_fail_at_once(loopback_server: LoopbackServer, code: int) -> None:
    loopback_server.script(status(code, body=f"nope, code {code}"))
    error = fails(loopback_server)
    assert len(loopback_server.requests) == 1
    assert f"HTTP {code}" in error.message and f"nope, code {code}" in error.message
    assert "not retried" in error.message
    assert error.raw == f"nope, code {code}"


def test_error_bodies_are_truncated(loopback_server: LoopbackServer) -> None:
    loopback_server.script(status(400, body="x" * 20_000))
    error = fails(loopback_server)
    assert error.raw is not None and 4000 <= len(error.raw) < 4100
    assert len(error.message) < 600


def test_exhausted_retries_say_what_happened_last(loopback_server: LoopbackServer) -> None:
    loopback_server.script(*[status(500, body="still broken")] * 3, status(503, body="last one"))
    error = fails(loopback_server)
    assert len(loopback_server.requests) == 4
    assert "after 4 attempt(s)" in error.message
    assert "last attempt: HTTP 503" in error.message and "last one" in error.message
    assert error.raw == "last one"


def test_timeout_is_per_attempt_and_bounded(loopback_server: LoopbackServer) -> None:
    loopback_server.responder = lambda request: sleep(5, ok("too late"))
    policy = RetryPolicy(max_retries=2, backoff_base_s=0.01, jitter=0.0)
    started = time.monotonic()
    error = fails(loopback_server, policy, timeout_s=0.3)
    elapsed = time.monotonic() - started
    assert len(loopback_server.requests) == 3
    assert "after 3 attempt(s)" in error.message and "timed out after 0.3 s" in error.message
    assert 0.9 <= elapsed < 3.0


def test_slow_attempt_then_success(loopback_server: LoopbackServer) -> None:
    loopback_server.script(sleep(5), ok("quick"))
    result = post(loopback_server, timeout_s=0.3)
    assert result.attempts == 2


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_dropped_connection_then_success(loopback_server: LoopbackServer, reset: bool) -> None:
    loopback_server.script(drop(reset=reset), ok("back"))
    assert post(loopback_server).attempts == 2


def test_body_cut_short_in_transit_is_retried(loopback_server: LoopbackServer) -> None:
    loopback_server.script(cut_short(ok("a long answer " * 20), keep=40), ok("whole"))
    result = post(loopback_server)
    assert result.attempts == 2 and result.data["choices"][0]["message"]["content"] == "whole"


def test_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def go() -> None:
        transport = HttpTransport(f"http://127.0.0.1:{port}/v1", retry=FAST)
        await transport.post_json("chat/completions", {})

    with pytest.raises(ModelCallError) as info:
        asyncio.run(go())
    assert "after 4 attempt(s)" in info.value.message and "ConnectError" in info.value.message


def test_malformed_json_is_not_retried_and_keeps_raw(loopback_server: LoopbackServer) -> None:
    truncated = '{"choices": [{"message": {"content": "cut'
    loopback_server.script(raw(truncated))
    error = fails(loopback_server)
    assert len(loopback_server.requests) == 1
    assert "not valid JSON" in error.message
    assert error.raw == truncated


def test_json_that_is_not_an_object_fails(loopback_server: LoopbackServer) -> None:
    loopback_server.script(json_reply(["a", "list"]))
    error = fails(loopback_server)
    assert "not an object (got list)" in error.message and error.raw == '["a", "list"]'


def test_secrets_are_redacted_from_messages_and_raw(loopback_server: LoopbackServer) -> None:
    canary = "sk-canary-4242"
    loopback_server.responder = lambda r: status(503, body=f"echo {r.headers['authorization']}")
    error = fails(loopback_server, headers={"Authorization": f"Bearer {canary}"}, secrets=[canary])
    assert canary not in error.message and canary not in (error.raw or "")
    assert REDACTED in error.message and error.raw == f"echo Bearer {REDACTED}"
    assert loopback_server.requests[0].headers["authorization"] == f"Bearer {canary}"
    transport = HttpTransport("http://x", headers={"Authorization": canary}, secrets=[canary])
    assert canary not in repr(transport)


@pytest.mark.parametrize("limit", [8, 21])
def test_pool_does_not_serialise_concurrent_requests(loopback_server: LoopbackServer,
                                                     limit: int) -> None:
    """21 is split over three pools of at most 8 connections: all 21 run at once, never 22."""
    loopback_server.responder = lambda request: sleep(0.3, ok("done"))

    async def go() -> list[JsonResult]:
        transport = HttpTransport(loopback_server.base_url, retry=FAST, max_concurrency=limit)
        try:
            return await asyncio.gather(*(transport.post_json("x", {}) for _ in range(2 * limit)))
        finally:
            await transport.aclose()

    results = asyncio.run(go())
    assert len(results) == 2 * limit and len(loopback_server.requests) == 2 * limit
    assert loopback_server.max_in_flight == limit


def test_transport_is_reusable_in_a_new_loop_after_aclose(loopback_server: LoopbackServer) -> None:
    transport = HttpTransport(loopback_server.base_url, retry=FAST)

    async def use_and_close() -> int:
        try:
            return (await transport.post_json("chat/completions", {})).status
        finally:
            await transport.aclose()

    assert asyncio.run(use_and_close()) == 200
    assert asyncio.run(use_and_close()) == 200


def test_transport_refuses_a_second_loop_without_aclose(loopback_server: LoopbackServer) -> None:
    transport = HttpTransport(loopback_server.base_url, retry=FAST)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(transport.post_json("chat/completions", {}))
        with pytest.raises(RuntimeError, match="another event loop"):
            asyncio.run(transport.post_json("chat/completions", {}))
        loop.run_until_complete(transport.aclose())
    finally:
        loop.close()


def test_json_with_blob_is_the_same_json_as_dumps() -> None:
    import json

    from ahelm.models.http import BLOB, json_with_blob

    blob = "QUJD+/=" * 1000
    prompt = 'a "quoted" prompt, ünïcode, a\nnewline and a \\ backslash'
    payload = {"messages": [{"content": [{"data": BLOB}, {"text": prompt}]}], "n": 1}
    encoded = json_with_blob(payload, blob)
    assert json.loads(encoded) == {"messages": [{"content": [{"data": blob}, {"text": prompt}]}],
                                   "n": 1}
    with pytest.raises(ValueError, match="placeholder"):
        json_with_blob({"no": "blob"}, blob)
