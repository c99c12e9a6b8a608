"""A real HTTP server on 127.0.0.1 that speaks OpenAI chat completions, scripted per request.

Tests exercise adapters over genuine sockets instead of mocking httpx, so retries, timeouts,
dropped connections and pool limits are tested as they happen in production::

    with LoopbackServer() as server:
        server.script(status(429, {"Retry-After": "1"}), ok("hello"))
        ...  # point an adapter at server.base_url
        assert len(server.requests) == 2

Each request pops the next scripted behaviour; once the script is empty the server asks
``server.responder(request)`` (by default it echoes the prompt). ``server.max_in_flight`` is the
largest number of requests it was handling at once.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator, Mapping

import pytest


@dataclass(frozen=True)
class Reply:
    """Answer with this status, headers and body.

    ``content_length`` announces a different length than the body has, then closes the
    connection: a body cut short in transit.
    """

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_length: int | None = None


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` (cut short when the server stops), then behave as ``then``.

    ``then=None`` means whatever the responder answers (or the prompt echo, if the responder is
    what asked to sleep).
    """

    seconds: float
    then: Behaviour | None = None


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering: a clean FIN, or a TCP reset if ``reset``."""

    reset: bool = False


Behaviour = Reply | Sleep | Drop


@dataclass(frozen=True)
class RecordedRequest:
    """What the server received, stamped with ``time.monotonic()`` on arrival."""

    index: int
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    json: Any
    arrived_at: float

    def content_parts(self) -> list[dict[str, Any]]:
        """The content parts of the last chat message ([] if the body is not a chat request)."""
        try:
            content = self.json["messages"][-1]["content"]
        except (TypeError, KeyError, IndexError):
            return []
        if isinstance(content, str):
            return [{"type": "text", "text": content}]
        return [p for p in content if isinstance(p, dict)] if isinstance(content, list) else []

    @property
    def prompt(self) -> str:
        return "".join(p.get("text", "") for p in self.content_parts() if p.get("type") == "text")


Responder = Callable[[RecordedRequest], Behaviour]


def completion(
    text: str | None, *, usage: Mapping[str, int] | None = None, parts: bool = False
) -> dict[str, Any]:
    """A chat.completion object; ``parts`` sends the content as a list of text parts."""
    content: Any = [{"type": "text", "text": text}] if parts and text is not None else text
    if usage is None:
        words = len((text or "").split())
        usage = {"prompt_tokens": 10, "completion_tokens": words, "total_tokens": 10 + words}
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "loopback",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": dict(usage),
    }


def json_reply(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    """Any JSON value, e.g. a completion with null content or a bare list."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    return Reply(status, json.dumps(obj).encode(), headers)


def ok(text: str, *, usage: Mapping[str, int] | None = None, parts: bool = False) -> Reply:
    return json_reply(completion(text, usage=usage, parts=parts))


def status(
    code: int, headers: Mapping[str, str] | None = None, body: str | Mapping[str, Any] | None = None
) -> Reply:
    """An error status; with no body, an OpenAI-style ``{"error": ...}`` object."""
    if body is None:
        body = {"error": {"message": f"loopback says {code}", "type": "loopback", "code": code}}
    if isinstance(body, str):
        return Reply(code, body.encode(), {"Content-Type": "text/plain", **(headers or {})})
    return json_reply(body, code, headers)


def raw(body: str | bytes, status: int = 200, content_type: str = "application/json") -> Reply:
    """Exactly these bytes, e.g. malformed or truncated JSON (with a matching Content-Length)."""
    data = body.encode() if isinstance(body, str) else body
    return Reply(status, data, {"Content-Type": content_type})


def cut_short(reply: Reply, keep: int) -> Reply:
    """``reply`` with only its first ``keep`` body bytes sent, though all were announced."""
    return Reply(reply.status, reply.body[:keep], reply.headers, content_length=len(reply.body))


def empty_choices() -> Reply:
    return json_reply({**completion(""), "choices": []})


def sleep(seconds: float, then: Behaviour | None = None) -> Sleep:
    return Sleep(seconds, then)


def drop(reset: bool = False) -> Drop:
    return Drop(reset)


def echo_prompt(request: RecordedRequest) -> Behaviour:
    return ok(request.prompt)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True
    loopback: LoopbackServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.loopback._serve(self, body)

    do_GET = do_POST

    def send(self, behaviour: Behaviour) -> None:
        if isinstance(behaviour, Drop):
            self.close_connection = True
            if behaviour.reset:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
            return
        assert isinstance(behaviour, Reply), behaviour
        try:
            self.send_response(behaviour.status)
            for name, value in behaviour.headers.items():
                self.send_header(name, value)
            length = behaviour.content_length
            self.send_header(
                "Content-Length", str(len(behaviour.body) if length is None else length)
            )
            self.end_headers()
            self.wfile.write(behaviour.body)
            if length is not None and length != len(behaviour.body):
                self.close_connection = True
        except OSError:
            self.close_connection = True


class LoopbackServer:
    """The scripted server; start it with ``with`` (or ``start``/``stop``)."""

    def __init__(self, responder: Responder | None = None) -> None:
        self.responder: Responder = responder or echo_prompt
        self._script: deque[Behaviour] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._in_flight = 0
        self._max_in_flight = 0
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """What an OpenAI-compatible adapter takes as ``base_url``."""
        if self._httpd is None:
            raise RuntimeError("LoopbackServer is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def max_in_flight(self) -> int:
        return self._max_in_flight

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next requests, in order of arrival."""
        with self._lock:
            self._script.extend(behaviours)

    @property
    def pending(self) -> int:
        """Scripted behaviours not used yet."""
        return len(self._script)

    def reset(self) -> None:
        """Forget the script, the recorded requests and the in-flight peak."""
        with self._lock:
            self._script.clear()
            self._requests.clear()
            self._max_in_flight = self._in_flight

    def start(self) -> LoopbackServer:
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.loopback = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, handler: _Handler, body: bytes) -> None:
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        with self._lock:
            request = RecordedRequest(
                index=len(self._requests),
                method=handler.command,
                path=handler.path,
                headers={k.lower(): v for k, v in handler.headers.items()},
                body=body,
                json=parsed,
                arrived_at=time.monotonic(),
            )
            self._requests.append(request)
            behaviour = self._script.popleft() if self._script else None
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            fallback = self.responder
            if behaviour is None:
                behaviour, fallback = self.responder(request), echo_prompt
            while isinstance(behaviour, Sleep):
                self._stopping.wait(behaviour.seconds)
                if behaviour.then is not None:
                    behaviour = behaviour.then
                else:
                    behaviour, fallback = fallback(request), echo_prompt
            handler.send(behaviour)
        finally:
            with self._lock:
                self._in_flight -= 1


@pytest.fixture
def loopback_server() -> Iterator[LoopbackServer]:
    """A started LoopbackServer, stopped after the test."""
    with LoopbackServer() as server:
        yield server
