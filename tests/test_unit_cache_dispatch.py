"""Unit tests of the answer cache (SQLite, shared across processes) and the dispatcher."""

from __future__ import annotations

import asyncio
import multiprocessing
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ahelm.core import Answer, AudioError, InstanceError, ModelCallError, Request, Response
from ahelm.dispatch import Dispatcher
from ahelm.models.base import Model
from ahelm.models.python_object import PythonObjectModel, Settings
from ahelm.store.cache import Cache, Claim


def req(n: int, *, instance_id: str | None = None) -> Request:
    return Request(
        instance_id=instance_id or f"i{n:03d}", prompt=f"prompt {n}", audio=None, max_tokens=16
    )


# -- fakes ----------------------------------------------------------------------------------------


class FakeModel:
    """An async model implementing the Model protocol directly; records calls and concurrency."""

    def __init__(
        self,
        *,
        fingerprint: str = "fake/1",
        max_concurrency: int = 4,
        delay: float = 0.0,
        fail: dict[str, BaseException] | None = None,
    ) -> None:
        self.fingerprint = fingerprint
        self.max_concurrency = max_concurrency
        self.delay = delay
        self.fail = fail or {}
        self.calls: list[str] = []
        self.in_flight = 0
        self.peak = 0
        self.closed = False

    async def generate(self, request: Request) -> Response:
        self.calls.append(request.instance_id)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            error = self.fail.get(request.instance_id)
            if error is not None:
                raise error
            return Response(
                text=f"answer to {request.prompt}", latency_s=self.delay, usage={"total_tokens": 7}
            )
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        self.closed = True


SCRIPTED: dict[str, Scripted] = {}


class Scripted:
    """A synchronous object for provider "python" (its generate runs in worker threads)."""

    fingerprint = "scripted/1"

    def __init__(self, token: str, delay: float = 0.0, fail: list[str] | None = None) -> None:
        self.delay = delay
        self.fail = set(fail or ())
        self.calls: list[str] = []
        self.closed = False
        self._lock = threading.Lock()
        SCRIPTED[token] = self

    def generate(self, request: Request) -> str:
        with self._lock:
            self.calls.append(request.instance_id)
        time.sleep(self.delay)
        if request.instance_id in self.fail:
            raise RuntimeError(f"simulated outage for {request.instance_id}")
        return f"heard {request.prompt}"

    def close(self) -> None:
        self.closed = True


def python_model(token: str, **options: Any) -> tuple[PythonObjectModel, Scripted]:
    model = PythonObjectModel(
        Settings(object=f"{__name__}:Scripted", options={"token": token, **options})
    )
    return model, SCRIPTED[token]


@pytest.fixture
def dispatchers(tmp_path: Path) -> Iterator[Any]:
    """Make dispatchers on one cache file; every one is closed at the end."""
    made: list[Dispatcher] = []

    def make(model: Model, run_id: str = "run-1", **kwargs: Any) -> Dispatcher:
        dispatcher = Dispatcher(model, tmp_path / "cache.sqlite", run_id, **kwargs)
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.close()


def answer_all(dispatcher: Dispatcher, requests: list[Request]) -> list[Answer]:
    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(dispatcher.answer, requests))


# -- Cache ----------------------------------------------------------------------------------------


RESPONSE = Response(text="hello world", latency_s=1.25, usage={"prompt_tokens": 3}, raw='{"x": 1}')


def test_cache_put_get(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cache.sqlite"
    cache = Cache(path, "r1")
    try:
        assert cache.get("k1") is None
        assert cache.count() == 0
        cache.put("k1", "model/1", "i001", RESPONSE)
        assert cache.get("k1") == RESPONSE
        assert cache.get("k2") is None
        cache.put("k1", "model/1", "i001", Response(text="newer", latency_s=0.1))
        assert cache.get("k1") == Response(text="newer", latency_s=0.1)
        assert cache.count() == 1
    finally:
        cache.close()
    other = Cache(path, "r2")
    try:
        assert other.get("k1") == Response(text="newer", latency_s=0.1)
    finally:
        other.close()


def test_cache_refresh_hides_older_runs_only(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    old = Cache(path, "r1")
    old.put("k1", "m", "i1", RESPONSE)
    old.put("k2", "m", "i2", RESPONSE)
    fresh = Cache(path, "r2", refresh=True)
    plain = Cache(path, "r3")
    try:
        assert fresh.get("k1") is None and fresh.get("k2") is None
        fresh.put("k1", "m", "i1", Response(text="asked again", latency_s=0.2))
        fresh.put("k3", "m", "i3", RESPONSE)
        assert fresh.get("k1") == Response(text="asked again", latency_s=0.2)
        assert fresh.get("k3") == RESPONSE
        assert fresh.get("k2") is None
        # without refresh every stored answer counts, whichever run gave it
        assert plain.get("k1") == Response(text="asked again", latency_s=0.2)
        assert plain.get("k2") == RESPONSE
    finally:
        for cache in (old, fresh, plain):
            cache.close()


def test_cache_errors_are_per_run(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    first = Cache(path, "r1")
    second = Cache(path, "r2")
    same_run = Cache(path, "r1")
    try:
        first.put_error("k1", ModelCallError("HTTP 503: overloaded", raw="<html>busy</html>"))
        first.put_error("k2", AudioError("audio file a.flac is empty"))
        error = same_run.get_error("k1")
        assert isinstance(error, InstanceError)
        assert (error.message, error.raw, error.kind) == (
            "HTTP 503: overloaded",
            "<html>busy</html>",
            "transport",
        )
        audio_error = same_run.get_error("k2")
        assert audio_error is not None
        assert (audio_error.message, audio_error.kind) == ("audio file a.flac is empty", "audio")
        assert second.get_error("k1") is None and second.get_error("k2") is None
        # an error is not an answer
        assert first.get("k1") is None
        assert first.count() == 0
    finally:
        for cache in (first, second, same_run):
            cache.close()


def test_cache_claims_within_one_process(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    a, b = Cache(path, "r1"), Cache(path, "r1")
    try:
        assert a.claim("k") is None
        assert a.claimed_by_other("k") is False
        # claims belong to a process: another Cache object of this process is not "other"
        assert b.claimed_by_other("k") is False
        assert b.claim("k") is None
        a.release("k")
        assert a.claimed_by_other("missing") is False
    finally:
        a.close()
        b.close()


PEER = r"""
import sys
from pathlib import Path
from ahelm.core import Response
from ahelm.store.cache import Cache

path, run_id, key, mode = sys.argv[1:5]
cache = Cache(Path(path), run_id)
assert cache.claim(key) is None
print("claimed", flush=True)
sys.stdin.readline()
if mode == "answer":
    cache.put(key, "peer-model", "i001", Response(text="from the peer", latency_s=0.5))
    cache.release(key)
elif mode == "release":
    cache.release(key)
cache.close()
"""


class Peer:
    """Another process that claims ``key`` in the cache, then answers, releases or just exits."""

    def __init__(self, path: Path, run_id: str, key: str, mode: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", PEER, str(path), run_id, key, mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line == "claimed\n", f"peer failed to claim: {line!r}"
        self.pid = self.process.pid

    def finish(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.close()
        assert self.process.wait(timeout=30) == 0

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)


def test_cache_claim_of_a_live_peer_then_of_a_dead_one(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = Cache(path, "r1")
    peer = Peer(path, "peer-run", "k", mode="exit")
    try:
        assert cache.claim("k") == Claim(run_id="peer-run", pid=peer.pid)
        assert cache.claimed_by_other("k") is True
        cache.release("k")  # only releases this process's own claims
        assert cache.claimed_by_other("k") is True
        peer.finish()  # exits without releasing; its pid is now dead (and reaped)
        assert cache.claimed_by_other("k") is False
        assert cache.claim("k") is None  # taken over
        assert cache.claimed_by_other("k") is False
    finally:
        peer.kill()
        cache.close()


def test_cache_released_claim_is_free(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = Cache(path, "r1")
    peer = Peer(path, "peer-run", "k", mode="release")
    try:
        assert cache.claimed_by_other("k") is True
        peer.finish()
        assert cache.claimed_by_other("k") is False
    finally:
        peer.kill()
        cache.close()


def test_cache_stale_claim_of_a_live_peer_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = Cache(path, "r1")
    peer = Peer(path, "peer-run", "k", mode="exit")
    try:
        assert cache.claimed_by_other("k") is True
        cache.STALE_CLAIM_S = 0.0  # type: ignore[misc]
        assert cache.claimed_by_other("k") is False
        assert cache.claim("k") is None
    finally:
        peer.kill()
        cache.close()


def _open_at_once(path: str, barrier: Any, results: Any, index: int) -> None:
    try:
        barrier.wait(timeout=30)
        cache = Cache(Path(path), f"run-{index}")
        cache.put(f"k{index}", "m", f"i{index}", Response(text=str(index), latency_s=0.0))
        cache.close()
        results.put((index, "ok"))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put((index, f"{type(exc).__name__}: {exc}"))


def test_cache_opened_by_four_processes_at_once(tmp_path: Path) -> None:
    # SQLite does not wait for the lock that switching to WAL needs; without the retry in
    # Cache._initialise about one attempt in ten fails with "database is locked".
    context = multiprocessing.get_context("fork")
    for attempt in range(25):
        path = tmp_path / f"new-{attempt}.sqlite"
        barrier = context.Barrier(4)
        results = context.Queue()
        processes = [
            context.Process(target=_open_at_once, args=(str(path), barrier, results, i))
            for i in range(4)
        ]
        for process in processes:
            process.start()
        try:
            outcomes = dict(results.get(timeout=60) for _ in processes)
        finally:
            for process in processes:
                process.join(timeout=60)
        assert outcomes == {i: "ok" for i in range(4)}, f"attempt {attempt}"
        assert [p.exitcode for p in processes] == [0, 0, 0, 0]
        cache = Cache(path, "check")
        try:
            assert cache.count() == 4
        finally:
            cache.close()


def test_cache_opened_by_four_threads_at_once(tmp_path: Path) -> None:
    for attempt in range(60):
        path = tmp_path / f"threads-{attempt}.sqlite"
        barrier = threading.Barrier(4)

        def open_one(index: int, path: Path = path, barrier: threading.Barrier = barrier) -> str:
            barrier.wait(timeout=30)
            try:
                cache = Cache(path, f"run-{index}")
            except Exception as exc:  # noqa: BLE001 - reported in the assertion
                return f"{type(exc).__name__}: {exc}"
            try:
                cache.put(f"k{index}", "m", "i", Response(text="x", latency_s=0.0))
                return "ok"
            finally:
                cache.close()

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(open_one, range(4))) == ["ok"] * 4, f"attempt {attempt}"


# -- Dispatcher -----------------------------------------------------------------------------------


def test_answers_are_cached_across_dispatchers(dispatchers: Any) -> None:
    requests = [req(i) for i in range(3)]
    first_model = FakeModel()
    first = dispatchers(first_model, "run-1")
    answers = [first.answer(r) for r in requests]
    assert [a.response.text for a in answers if a.response] == [
        f"answer to prompt {i}" for i in range(3)
    ]
    assert all(a.ok and not a.cached and a.error is None for a in answers)
    assert [a.key for a in answers] == [r.key("fake/1") for r in requests]
    assert first_model.calls == ["i000", "i001", "i002"]
    assert first.stats.model_calls == 3 and first.stats.cache_hits == 0
    first.close()
    assert first_model.closed is True

    second_model = FakeModel()
    second = dispatchers(second_model, "run-2")
    again = [second.answer(r) for r in requests]
    assert second_model.calls == []
    assert all(a.cached for a in again)
    assert [a.response for a in again] == [a.response for a in answers]
    assert second.stats.cache_hits == 3 and second.stats.model_calls == 0
    assert second.snapshot() == {
        "concurrency": 4,
        "model_calls": 0,
        "cache_hits": 3,
        "errors": 0,
        "peer_answers": 0,
    }


def test_refresh_and_a_new_fingerprint_ask_again(dispatchers: Any) -> None:
    dispatchers(FakeModel(), "run-1").answer(req(1))
    refreshed_model = FakeModel()
    refreshed = dispatchers(refreshed_model, "run-2", refresh=True)
    assert refreshed.answer(req(1)).cached is False
    assert refreshed_model.calls == ["i001"]
    other_model = FakeModel(fingerprint="fake/2")
    assert dispatchers(other_model, "run-3").answer(req(1)).cached is False
    assert other_model.calls == ["i001"]


def test_python_object_model_through_the_dispatcher(dispatchers: Any) -> None:
    model, target = python_model("cached")
    assert model.fingerprint == "scripted/1"
    first = dispatchers(model, "run-1")
    answer = first.answer(req(5))
    assert answer.ok and answer.response is not None
    assert answer.response.text == "heard prompt 5"
    assert target.calls == ["i005"]
    first.close()
    assert target.closed is True
    model2, target2 = python_model("cached-2")
    second = dispatchers(model2, "run-2")
    assert second.answer(req(5)).cached is True
    assert target2.calls == []
    assert second.stats.cache_hits == 1


def test_identical_requests_are_asked_once_from_many_threads(dispatchers: Any) -> None:
    model, target = python_model("dedupe", delay=0.2)
    dispatcher = dispatchers(model, "run-1")
    # the same question under other instance ids has the same key
    requests = [req(1, instance_id=f"copy-{i}") for i in range(8)]
    answers = answer_all(dispatcher, requests)
    assert len(target.calls) == 1
    assert len({a.key for a in answers}) == 1
    assert {a.response.text for a in answers if a.response} == {"heard prompt 1"}
    assert dispatcher.stats.model_calls == 1


def test_prefetched_and_asked_request_is_asked_once(dispatchers: Any) -> None:
    model = FakeModel(delay=0.05)
    dispatcher = dispatchers(model, "run-1")
    requests = [req(i) for i in range(4)]
    dispatcher.prefetch(requests)
    dispatcher.prefetch(requests)
    answers = answer_all(dispatcher, requests + requests)
    assert all(a.ok for a in answers)
    assert sorted(model.calls) == ["i000", "i001", "i002", "i003"]


@pytest.mark.parametrize(
    ("model_max", "concurrency", "expected"), [(3, None, 3), (8, 2, 2), (1, None, 1)]
)
def test_max_concurrency_bounds_calls_in_flight(
    dispatchers: Any, model_max: int, concurrency: int | None, expected: int
) -> None:
    model = FakeModel(max_concurrency=model_max, delay=0.05)
    dispatcher = dispatchers(model, "run-1", concurrency=concurrency)
    requests = [req(i) for i in range(12)]
    dispatcher.prefetch(requests)
    answers = answer_all(dispatcher, requests)
    assert all(a.ok for a in answers)
    assert len(model.calls) == 12
    assert model.peak == expected
    assert dispatcher.snapshot()["concurrency"] == expected


def test_prefetch_order_is_kept(dispatchers: Any) -> None:
    model = FakeModel(max_concurrency=1)
    dispatcher = dispatchers(model, "run-1")
    order = [req(i) for i in (5, 2, 7, 0, 3, 6, 1, 4)]
    dispatcher.prefetch(order)
    for request in order:
        assert dispatcher.answer(request).ok
    assert model.calls == [r.instance_id for r in order]


def test_answer_jumps_ahead_of_the_prefetch_queue(dispatchers: Any) -> None:
    model = FakeModel(max_concurrency=1, delay=0.1)
    dispatcher = dispatchers(model, "run-1")
    queued = [req(i) for i in range(40)]
    dispatcher.prefetch(queued)
    # a request nobody prefetched
    assert dispatcher.answer(req(99)).ok
    assert model.calls.index("i099") <= 1
    # a prefetched request far down the queue that has not started yet
    assert dispatcher.answer(queued[30]).ok
    assert model.calls.index("i030") <= 3
    assert len(model.calls) < 10  # most of the queue is still waiting


def test_exception_becomes_an_error_answer_not_cached(dispatchers: Any) -> None:
    model = FakeModel(fail={"i001": RuntimeError("kaput")})
    dispatcher = dispatchers(model, "run-1")
    answer = dispatcher.answer(req(1))
    assert answer.ok is False and answer.response is None
    assert isinstance(answer.error, ModelCallError)
    assert answer.error.message == "model adapter failed: RuntimeError: kaput"
    assert answer.error.kind == "transport"
    assert dispatcher.answer(req(2)).ok  # the run goes on
    assert dispatcher.stats.errors == 1 and dispatcher.stats.model_calls == 1
    dispatcher.close()

    # the same run (another worker) sees the error without asking again
    same_run_model = FakeModel()
    same_run = dispatchers(same_run_model, "run-1")
    again = same_run.answer(req(1))
    assert again.ok is False and again.error is not None
    assert again.error.message == "model adapter failed: RuntimeError: kaput"
    assert same_run_model.calls == []
    same_run.close()

    # a new run asks again, and this time gets an answer that is cached
    next_model = FakeModel()
    next_run = dispatchers(next_model, "run-2")
    retried = next_run.answer(req(1))
    assert retried.ok and retried.cached is False
    assert next_model.calls == ["i001"]


def test_python_object_exception_becomes_an_error_answer(dispatchers: Any) -> None:
    model, target = python_model("failing", fail=["i003"])
    answer = dispatchers(model, "run-1").answer(req(3))
    assert answer.ok is False and answer.error is not None
    assert answer.error.message == "RuntimeError: simulated outage for i003"
    assert answer.error.kind == "transport"
    assert target.calls == ["i003"]


@pytest.mark.parametrize(
    "error",
    [
        ModelCallError("HTTP 503 from https://api.example/v1: overloaded", raw='{"error": "busy"}'),
        AudioError("audio file corpus/x.flac does not match its manifest checksum"),
    ],
)
def test_instance_errors_keep_their_message(dispatchers: Any, error: InstanceError) -> None:
    dispatcher = dispatchers(FakeModel(fail={"i001": error}), "run-1")
    answer = dispatcher.answer(req(1))
    assert answer.error is error
    dispatcher.close()
    # through the cache, as another worker of the same run sees it
    replayed = dispatchers(FakeModel(), "run-1").answer(req(1)).error
    assert replayed is not None
    assert (replayed.message, replayed.kind, replayed.raw) == (error.message, error.kind, error.raw)


def test_answer_from_a_peer_process(dispatchers: Any, tmp_path: Path) -> None:
    model = FakeModel()
    dispatcher = dispatchers(model, "run-1")
    key = dispatcher.key(req(1))
    peer = Peer(tmp_path / "cache.sqlite", "run-1", key, mode="answer")
    try:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(dispatcher.answer, req(1))
            time.sleep(0.3)
            assert not pending.done()  # waiting for the peer, not asking the model
            peer.finish()
            answer = pending.result(timeout=30)
    finally:
        peer.kill()
    assert answer.response == Response(text="from the peer", latency_s=0.5)
    assert answer.cached is False
    assert model.calls == []
    assert dispatcher.stats.peer_answers == 1 and dispatcher.stats.model_calls == 0


def test_a_dead_peers_claim_is_taken_over(dispatchers: Any, tmp_path: Path) -> None:
    model = FakeModel()
    dispatcher = dispatchers(model, "run-1")
    key = dispatcher.key(req(1))
    peer = Peer(tmp_path / "cache.sqlite", "run-1", key, mode="exit")
    try:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(dispatcher.answer, req(1))
            time.sleep(0.2)
            assert model.calls == []
            peer.finish()  # exits holding the claim
            answer = pending.result(timeout=30)
    finally:
        peer.kill()
    assert answer.ok and answer.response is not None
    assert answer.response.text == "answer to prompt 1"
    assert model.calls == ["i001"]


# -- PythonObjectModel ----------------------------------------------------------------------------


PREBUILT = Response(text="prebuilt", latency_s=9.0, usage={"total_tokens": 2})


class AsyncObject:
    max_concurrency = 2

    def __init__(self, reply: Any = "fine", prebuilt: bool = False) -> None:
        self.reply = PREBUILT if prebuilt else reply

    async def generate(self, request: Request) -> Any:
        await asyncio.sleep(0)
        return self.reply


class NoGenerate:
    pass


def test_python_object_async_generate_and_defaults() -> None:
    model = PythonObjectModel(Settings(object=f"{__name__}:AsyncObject", options={"reply": "ok"}))
    assert model.max_concurrency == 2
    assert model.fingerprint == f'python/{__name__}:AsyncObject/{{"reply": "ok"}}'
    response = asyncio.run(model.generate(req(1)))
    assert response.text == "ok" and response.latency_s >= 0
    model = PythonObjectModel(
        Settings(object=f"{__name__}:AsyncObject", options={"prebuilt": True})
    )
    assert asyncio.run(model.generate(req(1))) is PREBUILT


def test_python_object_wrong_return_type() -> None:
    model = PythonObjectModel(Settings(object=f"{__name__}:AsyncObject", options={"reply": 42}))
    with pytest.raises(ModelCallError, match="generate\\(\\) returned int, not str or Response"):
        asyncio.run(model.generate(req(1)))


def test_python_object_without_generate() -> None:
    with pytest.raises(TypeError, match="without a generate\\(\\) method"):
        PythonObjectModel(Settings(object=f"{__name__}:NoGenerate"))


def test_an_atomic_write_leaves_the_old_file_or_the_new_one_and_no_part(tmp_path: Path) -> None:
    from ahelm.store.files import write_atomic

    target = tmp_path / "f.bin"
    write_atomic(target, b"old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    (tmp_path / "folder.bin").mkdir()  # a rename onto a folder fails after the part is written
    with pytest.raises(OSError):
        write_atomic(tmp_path / "folder.bin", b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin", "folder.bin"]
