"""Issuing a run's requests concurrently, independent of how pytest schedules tests.

The dispatcher owns an asyncio loop in a background thread. After collection the plugin hands it
every request of the run (``prefetch``); a bounded pool of coroutines works through them while
tests ask for the answer they need (``answer``), which jumps the queue. Each answer comes from the
cache, from a peer process that is already asking for it (xdist), or from one model call.

Several plans may be queued (the dispatch service takes one from each xdist worker, each
starting with that worker's own block of tests): they are served by position, the first request
of every plan, then the second of every plan, and so on, so that no worker waits behind another.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import traceback
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from ahelm.core import Answer, InstanceError, ModelCallError, Request, Response
from ahelm.models.base import Model
from ahelm.reports.progress import RequestCounts
from ahelm.store.cache import Cache

_ASK, _PREFETCH = 0, 1
PEER_POLL_S = 0.05
_Entry = tuple[int, int, int, str]
"""A queue entry: (ask or prefetch, position in its plan, arrival, key); smallest first."""


@dataclass
class DispatchStats:
    model_calls: int = 0
    cache_hits: int = 0
    errors: int = 0
    peer_answers: int = 0

    def to_json(self) -> dict[str, int]:
        return asdict(self)


class Dispatcher:
    def __init__(
        self,
        model: Model,
        cache_path: Path,
        run_id: str,
        *,
        refresh: bool = False,
        concurrency: int | None = None,
        peers: bool = True,
    ) -> None:
        """``peers``: other processes of this run may ask for the same requests (xdist workers
        with their own dispatchers), so each model call is claimed in the cache first. A sole
        asker (one pytest process, or the run's dispatch service) skips the claims."""
        self.model = model
        self.stats = DispatchStats()
        self._cache_path = cache_path
        self._run_id = run_id
        self._refresh = refresh
        self._peers = peers
        self._concurrency = max(1, concurrency or model.max_concurrency)
        self._seq = itertools.count()
        self._futures: dict[str, asyncio.Future[Answer]] = {}
        self._pending: dict[str, Request] = {}
        self._waiting: dict[str, Request] = {}
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="ahelm-dispatch", daemon=True)
        self._startup_error: BaseException | None = None
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise RuntimeError(f"the dispatcher could not start: {self._startup_error}")

    # -- called from test threads -------------------------------------------------------------

    def key(self, request: Request) -> str:
        return request.key(self.model.fingerprint)

    def prefetch(self, requests: Sequence[Request]) -> None:
        """Queue requests to be answered in this order, behind anything a test is waiting for."""
        assert self._loop is not None
        keyed = [(self.key(request), request) for request in requests]
        self._loop.call_soon_threadsafe(self.enqueue_plan, keyed)

    def answer(self, request: Request) -> Answer:
        """Block until ``request`` is answered (or failed); asks first if it is not started."""
        assert self._loop is not None
        future: Future[Answer] = asyncio.run_coroutine_threadsafe(self._ask(request), self._loop)
        return future.result()

    def close(self) -> None:
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=30)

    # -- the loop thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._queue: asyncio.PriorityQueue[_Entry] = asyncio.PriorityQueue()
        self._cache = Cache(self._cache_path, self._run_id, refresh=self._refresh)
        self._ready.set()  # requests may be queued now; they are asked once the model is warm
        tasks: list[asyncio.Task[None]] = []
        try:
            warm = getattr(self.model, "warm", None)
            if warm is not None:
                try:
                    await warm()
                except Exception:  # noqa: BLE001 - a failed warm-up only costs the first call time
                    pass
            tasks = [asyncio.create_task(self._worker()) for _ in range(self._workers())]
            tasks.append(asyncio.create_task(self._watch_peers()))
            await self._stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.model.aclose()
            self._cache.close()

    def _workers(self) -> int:
        """Calls kept going at once: the concurrency, plus the model's ``lookahead`` when the
        model bounds its own requests in flight to that same number (see models.base.Model)."""
        if self._concurrency < self.model.max_concurrency:
            return self._concurrency
        return self._concurrency + max(0, int(getattr(self.model, "lookahead", 0)))

    async def _ask(self, request: Request) -> Answer:
        return await asyncio.shield(self.enqueue(self.key(request), request, _ASK))

    # -- on the loop (the dispatch service calls these directly) --------------------------------

    def submit(self, coroutine: Any) -> Future[Any]:
        """Run a coroutine on the dispatcher's loop (from any thread)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def enqueue_plan(
        self, keyed: Sequence[tuple[str, Request]], start: int = 0
    ) -> list[asyncio.Future[Answer]]:
        """Queue a plan of (key, request) in order (``start``: the position of its first item,
        for a plan sent in chunks); what the cache already holds is settled at once, from one
        bulk read. Returns each request's future, in the plan's order."""
        stored = self._cache.lookup_many([key for key, _ in keyed])
        futures = []
        for position, (key, request) in enumerate(keyed, start):
            if key in stored and key not in self._futures:
                self._futures[key] = asyncio.get_running_loop().create_future()
                self._settle_stored(key, *stored[key])
                futures.append(self._futures[key])
            else:
                futures.append(self.enqueue(key, request, _PREFETCH, position))
        return futures

    def enqueue(
        self, key: str, request: Request, priority: int = _ASK, position: int = 0
    ) -> asyncio.Future[Answer]:
        """The future answer to ``request``; queued unless it is already known or on its way.
        A request queued again at a better place (an ask, or earlier in another plan) moves up."""
        future = self._futures.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._futures[key] = future
            self._pending[key] = request
            self._queue.put_nowait((priority, position, next(self._seq), key))
        elif key in self._pending:
            self._queue.put_nowait((priority, position, next(self._seq), key))
        return future

    async def _worker(self) -> None:
        while True:
            *_, key = await self._queue.get()
            request = self._pending.pop(key, None)
            if request is None:
                continue
            try:
                await self._resolve(key, request)
            except Exception as exc:  # a bug must fail one instance, never hang the run
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                self._settle(key, Answer(key, None, ModelCallError(f"internal error: {detail}")))

    async def _resolve(self, key: str, request: Request) -> None:
        if self._from_store(key):
            return
        if self._peers:
            if self._cache.claim(key) is not None:
                self._waiting[key] = request
                return
            if self._from_store(key):  # a peer finished between the look-up and the claim
                self._cache.release(key)
                return
        try:
            response = await self.model.generate(request)
        except Exception as exc:
            failure = exc if isinstance(exc, InstanceError) else ModelCallError(
                "model adapter failed: "
                + "".join(traceback.format_exception_only(type(exc), exc)).strip()
            )
            self._cache.put_error(key, failure)
            self.stats.errors += 1
            self._settle(key, Answer(key, None, failure))
        else:
            self._cache.put(key, self.model.fingerprint, request.instance_id, response)
            self.stats.model_calls += 1
            self._settle(key, Answer(key, response, None))
        finally:
            if self._peers:
                self._cache.release(key)

    def _from_store(self, key: str) -> bool:
        """Settle ``key`` from the cache: an earlier run's answer, or a peer's from this run."""
        found = self._cache.lookup(key)
        if found is not None:
            self._settle_stored(key, *found)
            return True
        error = self._cache.get_error(key)
        if error is not None:
            self._settle(key, Answer(key, None, error))
            return True
        return False

    def _settle_stored(self, key: str, response: Response, this_run: bool) -> None:
        """Settle ``key`` with a stored answer: a peer's from this run, or an earlier run's."""
        if this_run:
            self.stats.peer_answers += 1
        else:
            self.stats.cache_hits += 1
        self._settle(key, Answer(key, response, None, cached=not this_run))

    async def _watch_peers(self) -> None:
        """Answers that another process claimed arrive through the cache; poll for them."""
        while True:
            await asyncio.sleep(PEER_POLL_S)
            for key, request in list(self._waiting.items()):
                if self._from_store(key):
                    del self._waiting[key]
                elif not self._cache.claimed_by_other(key):
                    del self._waiting[key]
                    self._pending[key] = request
                    self._queue.put_nowait((_ASK, 0, next(self._seq), key))

    def _settle(self, key: str, answer: Answer) -> None:
        future = self._futures.get(key)
        if future is not None and not future.done():
            future.set_result(answer)

    def snapshot(self) -> dict[str, Any]:
        return {"concurrency": self._concurrency, **self.stats.to_json()}

    def progress(self) -> RequestCounts:
        """The requests known to this dispatcher so far, and how many are settled (from any
        thread: a look at the futures, which only the loop changes)."""
        futures = list(self._futures.values())
        answered = sum(future.done() for future in futures)
        return RequestCounts(answered, len(futures), self.stats.errors)
