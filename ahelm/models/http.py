"""The one reliability layer every HTTP model adapter shares.

Adapters build payloads and parse answers; getting a JSON object back from a flaky endpoint
(retries, backoff, Retry-After, timeouts, connection pooling, redaction) lives here so that every
provider fails in the same clear way with a :class:`~ahelm.core.ModelCallError`.

A 2xx body that is not valid JSON is not retried: servers that answer 200 with garbage do so
deterministically (a proxy page, a crashed template), and a body cut short in transit surfaces as
a protocol error, which is retried.

Two guards keep a run from hammering an endpoint: a circuit breaker (see
:mod:`ahelm.models.breaker`) fails every remaining call at once when the endpoint is dead or
refuses the credentials, cutting short attempts in flight and retries waiting in backoff; and an
optional requests-per-minute limit (see :mod:`ahelm.models.ratelimit`) on every attempt, retries
included. Attempts also start at least START_SPACING_S apart, which keeps a wave of requests from
leaving all at once (see there).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import json
import math
import random
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Literal, Mapping

import httpx

from ahelm.core import ModelCallError
from ahelm.models.breaker import CircuitBreaker
from ahelm.models.ratelimit import RateLimiter
from ahelm.secrets import redact, secret_from_env

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RAW_LIMIT = 4000
MESSAGE_BODY_LIMIT = 300
SHARD_SIZE = 8
"""Connections per httpx pool: larger limits are split over several pools (see _bound)."""
START_SPACING_S = 0.001
"""The least time between two attempts' starts (at most 1,000 a second), whatever the rate limit.

Without it, a wave of answers that arrive together (an endpoint with a steady latency returns
them in the rhythm they were sent) starts a wave of requests at once: the event loop then takes
every one of them a step at a time (httpx yields to the loop about six times per request), so
each waits for all the others and the whole wave goes out late. Spaced by about what one
request costs the loop, each goes out in turn, and the answers come back spaced too."""
_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
CREDENTIAL_STATUSES = frozenset({401, 403})

Blame = Literal["request", "endpoint", "credentials"]


class _Failure(Exception):
    """A call that failed, with whose fault it is; the circuit breaker decides what to raise."""

    def __init__(self, error: ModelCallError, blame: Blame) -> None:
        super().__init__(error.message)
        self.error = error
        self.blame = blame


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry; ``max_retries`` counts retries, not attempts."""

    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 20.0
    jitter: float = 0.5
    retry_after_cap_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1 (the fraction of a delay randomised)")
        if min(self.backoff_base_s, self.backoff_max_s, self.retry_after_cap_s) < 0:
            raise ValueError("backoff and cap durations must be >= 0")

    @property
    def attempts(self) -> int:
        return self.max_retries + 1

    def delay(
        self,
        retry: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before retry number ``retry`` (1-based).

        A server's Retry-After wins (capped); otherwise exponential backoff, of which up to a
        ``jitter`` fraction is removed at random so that parallel callers spread out.
        """
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap_s)
        backoff = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (retry - 1))
        return backoff * (1.0 - self.jitter * rand())


BLOB = f"ahelm-blob-{uuid.uuid4().hex}"
"""Put this string in a payload where :func:`json_with_blob` should put the blob."""


def json_with_blob(payload: Mapping[str, Any], blob: str | bytes) -> bytes:
    """``payload`` as JSON bytes, with ``blob`` (base64: nothing JSON would escape) in place of
    the string BLOB: json.dumps would scan the ~200 KB of audio for characters to escape, which
    costs more than encoding all the rest of the request. Pass ``blob`` as bytes to save a copy
    (a 40-second clip is 1.7 MB of base64, and 64 requests may be in flight)."""
    text = json.dumps(payload, ensure_ascii=False)
    head, found, tail = text.partition(f'"{BLOB}"')
    if not found:
        raise ValueError("the blob placeholder is not in the payload")
    data = blob if isinstance(blob, bytes) else blob.encode("ascii")
    return b"".join((head.encode(), b'"', data, b'"', tail.encode()))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if absent or bad."""
    if not value or not value.strip():
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


@dataclass(frozen=True)
class JsonResult:
    """A successful call: the decoded object, its redacted body, and what getting it took."""

    data: dict[str, Any]
    text: str
    status: int
    attempts: int
    elapsed_s: float


def bearer_auth(api_key_env: str | None) -> tuple[dict[str, str], tuple[str, ...]]:
    """``Authorization: Bearer <key>`` from the environment, and the key as a secret to redact;
    no header when no variable is named."""
    if not api_key_env:
        return {}, ()
    key = secret_from_env(api_key_env).reveal()
    return {"Authorization": f"Bearer {key}"}, (key,)


class HttpTransport:
    """POSTs JSON to one endpoint with retries, a per-attempt deadline and a bounded pool.

    At most ``max_concurrency`` requests are in flight; the connection pool is sized to match so
    that it never serialises them. Pooled connections belong to the event loop that opened them,
    so the transport is bound to the loop it is first used in until :meth:`aclose`.

    After ``breaker_threshold`` consecutive failed calls (or one refused credential) the circuit
    opens for good and every call fails at once without touching the network. With
    ``requests_per_minute`` set, attempts start evenly spaced at that rate; in any case no two
    start closer than ``start_spacing_s`` (see START_SPACING_S; 0 turns it off). ``attempts_sent``
    counts the attempts actually started.
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        max_concurrency: int = 8,
        secrets: Iterable[str] = (),
        requests_per_minute: float | None = None,
        breaker_threshold: int = 5,
        connect_timeout_s: float = 10.0,
        start_spacing_s: float = START_SPACING_S,
    ) -> None:
        if timeout_s <= 0 or connect_timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.connect_timeout_s = min(connect_timeout_s, timeout_s)
        self.retry = retry or RetryPolicy()
        self.max_concurrency = max_concurrency
        self._headers = dict(headers or {})
        self._secrets = tuple(s for s in secrets if s)
        self.breaker = CircuitBreaker(breaker_threshold)
        self.rate = RateLimiter(requests_per_minute) if requests_per_minute is not None else None
        self._starts = self.rate
        """What spaces the attempts' starts: the rate limit, or the start spacing if closer."""
        if start_spacing_s > 0 and (self.rate is None or self.rate.interval_s < start_spacing_s):
            self._starts = RateLimiter(60.0 / start_spacing_s)
        self.attempts_sent = 0
        self._clients: list[httpx.AsyncClient] = []
        self._busy: list[int] = []
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opened: asyncio.Event | None = None
        self._deadlines: set[asyncio.Timeout] = set()

    def __repr__(self) -> str:
        return (
            f"HttpTransport({self.base_url!r}, timeout_s={self.timeout_s}, "
            f"max_concurrency={self.max_concurrency}, {self.retry!r})"
        )

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def clip(self, text: str, limit: int = RAW_LIMIT) -> str:
        """Redacted and truncated: what an error may keep or show of a body."""
        text = self.redact(text)
        return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit} more chars]"

    @property
    def breaker_open(self) -> bool:
        return self.breaker.open

    @property
    def breaker_reason(self) -> str | None:
        """What every call says once the circuit is open (None while it is closed)."""
        if self.breaker.reason is None:
            return None
        return self.redact(
            f"{self.breaker.reason}. The endpoint {self.base_url} looks unreachable or "
            "misconfigured; the remaining requests were not sent."
        )

    async def post_json(self, path: str, payload: Mapping[str, Any] | bytes) -> JsonResult:
        """The JSON object the endpoint answers with, or ModelCallError saying why not.
        ``payload`` may be already encoded (JSON bytes): see :func:`json_with_blob`."""
        if isinstance(payload, bytes):
            return await self._post(path, {"content": payload,
                                           "headers": {"Content-Type": "application/json"}})
        return await self._post(path, {"json": payload})

    async def post_multipart(
        self, path: str, fields: Mapping[str, str], files: Mapping[str, tuple[str, bytes, str]]
    ) -> JsonResult:
        """A ``multipart/form-data`` upload (``files``: name -> (filename, bytes, content type))
        with the same retries, breaker and rate limit; the answer must be a JSON object."""
        return await self._post(path, {"data": dict(fields), "files": dict(files)})

    async def _post(self, path: str, body: Mapping[str, Any]) -> JsonResult:
        url = f"{self.base_url}/{path.lstrip('/')}"
        self._check_open()
        try:
            result = await self._attempts(url, body)
        except _Failure as failure:
            raise self._count(failure) from None
        self.breaker.success()
        return result

    async def _attempts(self, url: str, body: Mapping[str, Any]) -> JsonResult:
        slots = self._bound()
        started: float | None = None
        failure = "no attempt made"
        raw: str | None = None
        for attempt in range(1, self.retry.attempts + 1):
            retry_after: float | None = None
            async with slots:
                await self._take_turn()
                started = started if started is not None else time.monotonic()
                self.attempts_sent += 1
                try:
                    async with asyncio.timeout(self.timeout_s) as deadline:
                        self._deadlines.add(deadline)
                        shard = self._busy.index(min(self._busy))
                        self._busy[shard] += 1
                        try:
                            response = await self._clients[shard].post(url, **body)
                        finally:
                            self._busy[shard] -= 1
                            self._deadlines.discard(deadline)
                except httpx.ConnectTimeout:
                    failure, raw = f"no connection within {self.connect_timeout_s:g} s", None
                    self._count_connect_failure(url, failure)
                except (TimeoutError, httpx.TimeoutException):
                    self._check_open()  # the circuit opened and cut this attempt short
                    failure, raw = f"timed out after {self.timeout_s:g} s", None
                except _RETRYABLE_ERRORS as exc:
                    failure, raw = f"{type(exc).__name__}: {str(exc) or 'connection failed'}", None
                    if isinstance(exc, httpx.ConnectError):
                        self._count_connect_failure(url, failure)
                except httpx.HTTPError as exc:
                    message = f"POST {url} failed (not retried): {type(exc).__name__}: {exc}"
                    raise _Failure(self._error(message), "endpoint") from None
                else:
                    if response.is_success:
                        return self._decode(response, url, attempt, time.monotonic() - started)
                    raw = self.clip(response.text)
                    code = response.status_code
                    failure = (
                        f"HTTP {code} {response.reason_phrase}: "
                        f"{self.clip(response.text, MESSAGE_BODY_LIMIT) or '(empty body)'}"
                    )
                    if code not in RETRY_STATUSES:
                        error = self._error(f"POST {url} failed with {failure} (not retried)", raw)
                        blame: Blame = "credentials" if code in CREDENTIAL_STATUSES else "request"
                        raise _Failure(error, blame)
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
            if attempt < self.retry.attempts:
                await self._pause(self.retry.delay(attempt, retry_after))
                self._check_open()
        elapsed = time.monotonic() - (started or time.monotonic())
        error = self._error(
            f"POST {url} failed after {self.retry.attempts} attempt(s) in {elapsed:.1f} s; "
            f"last attempt: {failure}",
            raw,
        )
        raise _Failure(error, "endpoint")

    # -- circuit breaker and rate limit -----------------------------------------------------------

    def _check_open(self) -> None:
        reason = self.breaker_reason
        if reason is not None:
            raise ModelCallError(reason, raw=None)

    def _count(self, failure: _Failure) -> ModelCallError:
        """The error to raise for ``failure``, after the breaker has counted it."""
        error = failure.error
        if failure.blame == "request":
            return error
        fatal = None
        if failure.blame == "credentials":
            fatal = "at once: the endpoint refuses the credentials, so every request would fail"
        if self.breaker.failure(error.message, fatal=fatal):
            self._trip()
        if self.breaker_reason is not None:
            return ModelCallError(self.breaker_reason, raw=error.raw)
        return ModelCallError(f"{error.message} [{self.breaker.progress()}]", raw=error.raw)

    def _count_connect_failure(self, url: str, failure: str) -> None:
        """A failed connection counts at once, attempt by attempt: when nothing answers on the
        port (or the host is black-holed), waiting for every call's retries would only delay a
        verdict that is already certain."""
        if self.breaker.failure(self.redact(f"POST {url}: {failure}")):
            self._trip()
        self._check_open()

    def _trip(self) -> None:
        """Wake every call sleeping in backoff or for the rate, and cut short those in flight."""
        if self._opened is not None:
            self._opened.set()
        now = asyncio.get_running_loop().time()
        for deadline in list(self._deadlines):
            if not deadline.expired():
                deadline.reschedule(now)

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the circuit opens meanwhile."""
        if self._opened is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._opened.wait()

    async def _take_turn(self) -> None:
        """Wait until the rate limit and the start spacing let one more attempt start; fail if
        the circuit is open."""
        self._check_open()
        if self._starts is not None:
            wait = self._starts.reserve(time.monotonic())
            if wait > 0:
                await self._pause(wait)
                self._check_open()

    def _error(self, message: str, raw: str | None = None) -> ModelCallError:
        return ModelCallError(self.redact(message), raw=raw)

    def _decode(
        self, response: httpx.Response, url: str, attempts: int, elapsed: float
    ) -> JsonResult:
        text = self.redact(response.text)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            message = (
                f"POST {url} answered HTTP {response.status_code} with a body that is not valid "
                f"JSON ({exc.msg} at char {exc.pos} of {len(text)}); not retried"
            )
            raise _Failure(self._error(message, self.clip(text)), "endpoint") from None
        if not isinstance(data, dict):
            message = (
                f"POST {url} answered with JSON that is not an object (got {type(data).__name__})"
            )
            raise _Failure(self._error(message, self.clip(text)), "endpoint")
        return JsonResult(data, text, response.status_code, attempts, elapsed)

    def _bound(self) -> asyncio.Semaphore:
        """The concurrency slots, after opening the connection pools in the running loop.

        The connections are split over pools of at most SHARD_SIZE, and each attempt goes to
        the least busy pool: httpcore scans every connection of a pool each time a request
        starts or ends, which at 64 connections cost more CPU than the requests themselves.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            raise RuntimeError(
                f"{self!r} is bound to another event loop; await aclose() in that loop first"
            )
        if not self._clients or self._slots is None:
            shards = -(-self.max_concurrency // SHARD_SIZE)
            per_shard = -(-self.max_concurrency // shards)
            self._clients = [
                httpx.AsyncClient(
                    verify=_tls_context(),
                    headers=self._headers,
                    timeout=httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s),
                    limits=httpx.Limits(max_connections=per_shard,
                                        max_keepalive_connections=per_shard),
                )
                for _ in range(shards)
            ]
            self._busy = [0] * shards
            self._slots = asyncio.Semaphore(self.max_concurrency)
            self._opened = asyncio.Event()
            if self.breaker.open:
                self._opened.set()
            self._loop = loop
        return self._slots

    async def warm(self) -> None:
        """Open the connection pools and load what the first request would load (the TLS
        context, anyio's asyncio backend): a run's first wave of requests then starts at once."""
        import importlib

        self._bound()
        importlib.import_module("anyio._backends._asyncio")

    async def aclose(self) -> None:
        """Close the connections; the transport may then be used again, even from a new loop."""
        clients, self._clients, self._busy = self._clients, [], []
        self._slots = self._loop = self._opened = None
        for client in clients:
            await client.aclose()


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """One TLS context (httpx's default: certifi's CA bundle) for every pool of the process:
    loading the bundle costs ~25 ms, which each new httpx client would otherwise pay again."""
    return httpx.create_ssl_context()
