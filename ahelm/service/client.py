"""The pytest side of the dispatch service: a dispatcher whose requests the service asks.

:class:`ServiceClient` has the interface of :class:`ahelm.dispatch.Dispatcher` (``prefetch``,
``answer``, ``snapshot``, ``close``). Answers an earlier run left in the cache are read here, in
one bulk read, and never travel; the rest of the plan goes to the service in chunks, and a
reader thread files every answer the service pushes back. A test that needs an answer not yet
in asks for it, which puts it ahead of every plan.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

from ahelm.core import Answer, ModelCallError, Request
from ahelm.dispatch import DispatchStats
from ahelm.models.base import Model
from ahelm.reports.progress import RequestCounts
from ahelm.service import ServiceError
from ahelm.service.protocol import ERROR_FILE, LOG_FILE, PLAN_CHUNK, SOCKET_NAME, line
from ahelm.store.cache import Cache

CONNECT_TIMEOUT_S = 120.0


class ServiceClient:
    def __init__(
        self,
        model: Model,
        folder: Path,
        cache_path: Path,
        run_id: str,
        *,
        refresh: bool = False,
        alive: Any = None,
    ) -> None:
        """``alive``: a callable telling whether the service process still runs (the owner
        knows; workers find out from the socket)."""
        self.model = model
        self.stats = DispatchStats()
        self._folder = folder
        self._cache = Cache(cache_path, run_id, refresh=refresh)
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._answers: dict[str, Answer] = {}
        self._events: dict[str, threading.Event] = {}
        self._asked: set[str] = set()
        self._planned: set[str] = set()
        self._failed = 0
        """Answers received that are failures (for the progress line)."""
        self._broken: str | None = None
        self._socket, self._stream, hello = _open(folder, model, alive)
        self.concurrency = int(hello["concurrency"])
        self._reader = threading.Thread(target=self._read, name="ahelm-service-reader",
                                        daemon=True)
        self._reader.start()

    # -- the Dispatcher interface -------------------------------------------------------------

    def key(self, request: Request) -> str:
        return request.key(self.model.fingerprint)

    def prefetch(self, requests: Sequence[Request]) -> None:
        keyed = [(self.key(request), request) for request in requests]
        stored = self._cache.lookup_many([key for key, _ in keyed])
        todo: list[tuple[str, Request]] = []
        with self._lock:
            self._planned.update(key for key, _ in keyed)
            for key, request in keyed:
                found = stored.get(key)
                if found is not None and not found[1]:
                    self.stats.cache_hits += 1
                    self._answers[key] = Answer(key, found[0], None, cached=True)
                elif key not in self._answers:
                    # Answers of this run travel from the service, even when the cache has
                    # them already, so that the first process to receive one counts its call.
                    todo.append((key, request))
        for message in _plan_messages(todo, push=True):
            self._send(message)

    def answer(self, request: Request) -> Answer:
        key = self.key(request)
        with self._lock:
            found = self._answers.get(key)
            if found is not None:
                return found
            if self._broken is not None:
                return self._lost(key)
            event = self._events.setdefault(key, threading.Event())
            ask = key not in self._asked
            self._asked.add(key)
        if ask:
            self._send({"op": "ask", "key": key, "request": request.to_json()})
        event.wait()
        with self._lock:
            return self._answers.get(key) or self._lost(key)

    def progress(self) -> RequestCounts:
        """This process's requests (planned or asked) and how many answers it has."""
        with self._lock:
            return RequestCounts(len(self._answers), len(self._planned | self._asked),
                                 self._failed)

    def snapshot(self) -> dict[str, Any]:
        """This process's share of the run's counts: the answers it found in the cache itself,
        and those the service told it to count (each answer is counted by one client only)."""
        return {"concurrency": self.concurrency, **self.stats.to_json()}

    def _count(self, answer: Answer) -> None:
        if answer.error is not None:
            self.stats.errors += 1
        elif answer.cached:
            self.stats.cache_hits += 1
        else:
            self.stats.model_calls += 1

    def close(self) -> None:
        try:
            self._socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._socket.close()
        self._reader.join(timeout=5.0)
        self._cache.close()

    # -- the socket ---------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        data = line(message)
        with self._send_lock:
            try:
                self._socket.sendall(data)
            except OSError as exc:
                self._lose(f"sending to it failed: {exc}")

    def _read(self) -> None:
        try:
            for raw in self._stream:
                message = json.loads(raw)
                if message.get("op") == "answer":
                    answer = Answer.from_json(message["answer"])
                    if message.get("count"):
                        self._count(answer)
                    with self._lock:
                        if answer.key not in self._answers:
                            self._answers[answer.key] = answer
                            self._failed += answer.error is not None
                        event = self._events.pop(answer.key, None)
                    if event is not None:
                        event.set()
        except (OSError, ValueError) as exc:
            self._lose(f"reading from it failed: {exc}")
        else:
            self._lose("it closed the connection")

    def _lose(self, reason: str) -> None:
        """The service is gone: wake every waiting test; each gets an error answer."""
        with self._lock:
            if self._broken is None:
                self._broken = reason
            events, self._events = list(self._events.values()), {}
        for event in events:
            event.set()

    def _lost(self, key: str) -> Answer:
        return Answer(key, None, ModelCallError(
            f"the dispatch service stopped before answering ({self._broken}); "
            f"rerun the same command to resume from the cache"))


def connect(folder: Path, alive: Any = None) -> socket.socket:
    """A connection to the service serving ``folder``, once it listens (it may be starting)."""
    path = str(folder / SOCKET_NAME)
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    delay = 0.005
    while True:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            client.connect(path)
            return client
        except OSError:
            client.close()
        if (folder / ERROR_FILE).exists() or (alive is not None and not alive()):
            raise ServiceError(why_not(folder, "it stopped while starting"))
        if time.monotonic() > deadline:
            raise ServiceError(why_not(folder, f"no answer within {CONNECT_TIMEOUT_S:.0f} s"))
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def why_not(folder: Path, fallback: str) -> str:
    for name in (ERROR_FILE, LOG_FILE):
        try:
            text = (folder / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if text.strip():
            return f"the dispatch service failed: {text.strip().splitlines()[-1]}"
    return f"the dispatch service failed: {fallback}"


def send_plan(folder: Path, model: Model, requests: Sequence[Request], alive: Any = None) -> None:
    """Hand the service a plan whose answers nobody here will read: the xdist controller's,
    sent before its workers start (see ahelm.planning). The service settles what the cache
    holds and asks the model for the rest; each worker then plans and asks its own tests as
    usual, and finds their answers on their way or ready. Nothing is counted here: the workers
    count what they receive."""
    keyed: dict[str, Request] = {}
    for request in requests:
        keyed.setdefault(request.key(model.fingerprint), request)
    sock, stream, _ = _open(folder, model, alive)
    with sock, stream:
        for message in _plan_messages(list(keyed.items()), push=False):
            sock.sendall(line(message))


class ProgressProbe:
    """The xdist controller's view of the run's requests, asked of the service (``progress``):
    it plans for the workers but reads no answers, so only the service knows how far the run
    is. One connection, opened on first use; None from then on if the service cannot say."""

    TIMEOUT_S = 5.0
    """The longest the controller waits for an answer (the line is not worth a stall)."""

    def __init__(self, folder: Path, model: Model, alive: Any = None) -> None:
        self._folder = folder
        self._model = model
        self._alive = alive
        self._socket: socket.socket | None = None
        self._stream: Any = None
        self._failed = False

    def counts(self) -> RequestCounts | None:
        if self._failed:
            return None
        try:
            if self._socket is None:
                self._socket, self._stream, _ = _open(self._folder, self._model, self._alive,
                                                      timeout_s=self.TIMEOUT_S)
            self._socket.sendall(line({"op": "progress"}))
            reply = json.loads(self._stream.readline() or b"{}")
            return RequestCounts(int(reply["answered"]), int(reply["planned"]),
                                 int(reply["errors"]))
        except (OSError, ValueError, KeyError, TypeError, ServiceError):
            self._failed = True
            self.close()
            return None

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
        if self._socket is not None:
            self._socket.close()
        self._socket = self._stream = None


def _open(
    folder: Path, model: Model, alive: Any = None, *, timeout_s: float | None = None
) -> tuple[socket.socket, Any, dict[str, Any]]:
    """A connection that has said hello: the socket, its reading stream and the service's
    ``ready``; closed again if the service refuses (ServiceError). ``timeout_s`` bounds every
    later read and write (None: they block)."""
    sock = connect(folder, alive)
    sock.settimeout(timeout_s)
    stream = sock.makefile("rb")
    try:
        return sock, stream, _hello(sock, stream, model, folder)
    except BaseException:
        stream.close()
        sock.close()
        raise


def _hello(sock: socket.socket, stream: Any, model: Model, folder: Path) -> dict[str, Any]:
    """Say which model this client expects; the service's ``ready`` (ServiceError if not)."""
    sock.sendall(line({"op": "hello", "fingerprint": model.fingerprint}))
    hello: dict[str, Any] = json.loads(stream.readline() or b"{}")
    if hello.get("op") != "ready":
        raise ServiceError(hello.get("message") or why_not(folder, "it closed the connection"))
    return hello


def _plan_messages(
    keyed: Sequence[tuple[str, Request]], *, push: bool
) -> Iterator[dict[str, Any]]:
    """A plan of (key, request) as messages of PLAN_CHUNK requests, in order."""
    for start in range(0, len(keyed), PLAN_CHUNK):
        chunk = keyed[start:start + PLAN_CHUNK]
        yield {"op": "plan", "start": start, "push": push,
               "items": [[key, request.to_json()] for key, request in chunk]}
