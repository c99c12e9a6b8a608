"""The throughput benchmark's loopback endpoint: latency, limit and HTTP/1.1 framing."""

from __future__ import annotations

import importlib.util
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "throughput.py"


@pytest.fixture(scope="module")
def throughput() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ahelm_bench_throughput", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def post(url: str, body: bytes, client: httpx.Client | None = None) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    send = client.post if client is not None else httpx.post
    reply = send(f"{url}/chat/completions", content=body, timeout=10,
                 headers={"Content-Type": "application/json"})
    return reply, time.perf_counter() - started


def read_reply(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    while len(rest) < length:
        rest += sock.recv(4096)
    return head + b"\r\n\r\n" + rest


def test_answers_a_chat_completion_after_exactly_the_latency(throughput: Any) -> None:
    with throughput.Endpoint(0.2, 4) as endpoint:
        reply, elapsed = post(endpoint.url, b'{"model": "m"}')
        assert reply.status_code == 200
        assert reply.json()["choices"][0]["message"]["content"] == "A"
        assert 0.2 <= elapsed < 0.6
        assert (endpoint.served, endpoint.rejected, endpoint.max_in_flight) == (1, 0, 1)
        assert endpoint.first_at is not None and endpoint.last_at is not None
        assert 0.19 <= endpoint.last_at - endpoint.first_at < 0.4


def test_rejects_beyond_the_limit_with_retry_after(throughput: Any) -> None:
    with throughput.Endpoint(0.5, 2) as endpoint, ThreadPoolExecutor(3) as pool:
        replies = list(pool.map(lambda _: post(endpoint.url, b"{}")[0], range(3)))
        codes = sorted(reply.status_code for reply in replies)
        assert codes == [200, 200, 429]
        busy = next(reply for reply in replies if reply.status_code == 429)
        assert busy.headers["Retry-After"] == "1"
        assert (endpoint.served, endpoint.rejected, endpoint.max_in_flight) == (2, 1, 2)
        endpoint.reset()
        assert (endpoint.served, endpoint.rejected, endpoint.first_at) == (0, 0, None)


def test_heads_and_bodies_split_across_reads_on_a_kept_alive_connection(throughput: Any) -> None:
    """A head sent a byte at a time, a body larger than the read buffer in uneven pieces, then a
    second request on the same connection: each is answered once, after its last byte."""
    body = b"x" * (throughput._Connection.BUFFER * 3 + 17)
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    with throughput.Endpoint(0.05, 4) as endpoint:
        port = int(endpoint.url.rsplit(":", 1)[1].split("/")[0])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for byte in head:
                sock.sendall(bytes([byte]))
            for start in range(0, len(body), 100_003):
                sock.sendall(body[start:start + 100_003])
                time.sleep(0.005)
            first = read_reply(sock)
            sock.sendall(head + body)
            second = read_reply(sock)
        assert first.startswith(b"HTTP/1.1 200 OK") and second.startswith(b"HTTP/1.1 200 OK")
        assert b'"content":"A"' in first.replace(b" ", b"")
        assert endpoint.served == 2


def test_a_bad_content_length_closes_the_connection(throughput: Any) -> None:
    with throughput.Endpoint(0.01, 4) as endpoint:
        port = int(endpoint.url.rsplit(":", 1)[1].split("/")[0])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: lots\r\n\r\n")
            sock.settimeout(5)
            assert sock.recv(100) == b""
        assert endpoint.served == 0


def test_many_clients_at_the_limit(throughput: Any) -> None:
    """As the benchmark drives it: C keep-alive connections busy at once, none rejected."""
    with throughput.Endpoint(0.05, 8) as endpoint, httpx.Client(
        limits=httpx.Limits(max_connections=8)
    ) as client, ThreadPoolExecutor(8) as pool:
        bodies = [b"y" * (1000 * n) for n in range(40)]
        replies = list(pool.map(lambda b: post(endpoint.url, b, client)[0], bodies))
        assert all(reply.status_code == 200 for reply in replies)
        assert (endpoint.served, endpoint.rejected) == (40, 0)
        assert endpoint.max_in_flight <= 8
