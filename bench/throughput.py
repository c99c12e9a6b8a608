"""Throughput of a full run against an endpoint with latency L and a limit of C requests at once.

A run of N requests against such an endpoint cannot finish sooner than N·L/C. This script starts
an OpenAI-compatible chat-completions server on 127.0.0.1 (part of the benchmark: it sleeps L
per request, answers 429 with Retry-After beyond C requests in flight, and counts what it saw),
then runs the offline suite's instance tests through ``pytest --model=<config>`` as a user
would, each time from a cold answer cache, and prints:

- wall time against the floor N·L/C, for each C, in one process and with ``-n 2``;
- the naive way (every test posts synchronously and waits, ``-n 2``) for comparison;
- a fully cached rerun: harness time per instance, collection and reports included;
- report and leaderboard generation for 10,000 synthetic instances;
- peak memory (max RSS) of the largest process of each run.

    python bench/throughput.py                       # L = 200 ms, C = 32 and 64, 3 runs each
    python bench/throughput.py --runs 1 --latency 0.1 --concurrency 32

Figures are medians over ``--runs`` runs. Nothing here asserts: the README quotes the output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
INSTANCE_TESTS = "not breaking_point and not stays_within and not do_not_change"
"""The instance tests and gates; the robustness properties ask one question at a time by nature
(hypothesis examples, bisection steps) and are measured by their own figures."""


class Endpoint:
    """A loopback chat-completions server with a fixed latency and a concurrency limit.

    An HTTP/1.1 server on its own event loop thread: once a request's body is fully read, it
    holds the request for exactly ``latency_s``, then answers (429 with Retry-After beyond
    ``limit`` requests in flight). It stands for a remote model, so it should cost this
    machine as little as possible: each connection reads into one reused buffer, skips the
    body without keeping it, and answers from a timer, not a task (about 0.1 ms of CPU per
    request for bodies of a few hundred KB).
    """

    BODY = json.dumps({
        "id": "bench", "object": "chat.completion", "model": "bench",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "A"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }).encode()
    BUSY = json.dumps({"error": {"message": "too many requests"}}).encode()

    def __init__(self, latency_s: float, limit: int) -> None:
        self.latency_s = latency_s
        self.limit = limit
        self.in_flight = 0
        self.max_in_flight = 0
        self.served = 0
        self.rejected = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.loop = asyncio.new_event_loop()
        self.server = self.loop.run_until_complete(self.loop.create_server(
            lambda: _Connection(self), "127.0.0.1", 0, backlog=512))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.ok = self._reply(200, self.BODY, b"")
        self.busy = self._reply(429, self.BUSY, b"Retry-After: 1\r\n")

    def received(self, transport: asyncio.Transport) -> None:
        """A whole request has arrived on ``transport``: answer it now (429) or after L."""
        if self.first_at is None:
            self.first_at = time.perf_counter()
        if self.in_flight >= self.limit:
            self.rejected += 1
            transport.write(self.busy)
            return
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.loop.call_later(self.latency_s, self._answer, transport)

    def _answer(self, transport: asyncio.Transport) -> None:
        self.in_flight -= 1
        self.served += 1
        self.last_at = time.perf_counter()
        if not transport.is_closing():
            transport.write(self.ok)

    @staticmethod
    def _reply(status: int, body: bytes, extra: bytes) -> bytes:
        reason = b"OK" if status == 200 else b"Too Many Requests"
        return (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                % (status, reason, len(body)) + extra + b"\r\n" + body)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    def reset(self) -> None:
        self.max_in_flight = self.served = self.rejected = 0
        self.first_at = self.last_at = None

    def __enter__(self) -> Endpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        async def close() -> None:
            self.server.close()  # on the loop's own thread: asyncio servers are not thread-safe

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


class _Connection(asyncio.BufferedProtocol):
    """One client connection of the endpoint: heads are parsed for Content-Length, bodies are
    counted and dropped. A client sends its next request only after the answer (HTTP/1.1
    without pipelining, as httpx does), so a read holds at most one request's bytes."""

    BUFFER = 1 << 18
    MAX_HEAD = 1 << 16

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.buffer = bytearray(self.BUFFER)
        self.view = memoryview(self.buffer)
        self.head = bytearray()
        """A head split across reads, until its blank line arrives."""
        self.body_left = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        position = 0
        while position < nbytes:
            if self.body_left:
                taken = min(self.body_left, nbytes - position)
                position += taken
                self.body_left -= taken
                if not self.body_left:
                    self._request_done()
                continue
            if self.head:
                self.head += self.view[position:nbytes]
                position = nbytes
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.head) > self.MAX_HEAD:
                        self._close()
                    return
                head, extra = bytes(self.head[:end]), len(self.head) - end - 4
                self.head.clear()
            else:
                end = self.buffer.find(b"\r\n\r\n", position, nbytes)
                if end < 0:
                    self.head += self.view[position:nbytes]
                    return
                head, extra, position = bytes(self.buffer[position:end]), 0, end + 4
            length = _content_length(head)
            if length is None or extra > length:
                self._close()
                return
            self.body_left = length - extra
            if not self.body_left:
                self._request_done()

    def _request_done(self) -> None:
        assert self.transport is not None
        self.endpoint.received(self.transport)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _content_length(head: bytes) -> int | None:
    """The Content-Length of a request head (0 when absent); None when it is not a number."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return 0


def write_config(folder: Path, url: str, concurrency: int) -> Path:
    path = folder / f"bench-c{concurrency}.toml"
    path.write_text(textwrap.dedent(f"""\
        name = "bench-c{concurrency}"
        provider = "openai-chat"
        model = "bench-model"
        base_url = "{url}"
        api_key_env = "AHELM_BENCH_KEY"
        max_concurrency = {concurrency}
        max_retries = 8
        timeout_s = 30.0
        """))
    return path


NAIVE_SUITE = '''
"""The way one would write it by hand: one test per instance, a blocking POST each."""
import base64
import os

import httpx
import pytest

from ahelm.audio import decode, to_wav_bytes
from ahelm.scenarios import load_scenario

CORPUS = os.environ["AHELM_BENCH_CORPUS"]
URL = os.environ["AHELM_BENCH_URL"]
NAMES = sorted(p.name for p in __import__("pathlib").Path(CORPUS).iterdir() if p.is_dir())
INSTANCES = [i for name in NAMES for i in load_scenario(__import__("pathlib").Path(CORPUS) / name).instances]


@pytest.mark.parametrize("instance", INSTANCES, ids=[f"{i.scenario}/{i.id}" for i in INSTANCES])
def test_instance(instance):
    audio = base64.b64encode(to_wav_bytes(decode(instance.audio.read_verified(), "x"))).decode()
    body = {"model": "bench-model", "temperature": 0, "max_tokens": instance.max_tokens,
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": instance.prompt},
                {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}}]}]}
    while True:
        reply = httpx.post(f"{URL}/chat/completions", json=body, timeout=30,
                           headers={"Authorization": "Bearer bench"})
        if reply.status_code != 429:
            break
    assert reply.json()["choices"][0]["message"]["content"]
'''


PEAK_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)
"""Runs the command and prints the max RSS (KiB) of the largest process in its tree (pytest and
its xdist workers): per run, not the running maximum this script's own rusage would give."""


def run(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, max RSS (MB) of the largest process, and the output's last lines."""
    global STARTED
    started = STARTED = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, *command], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    *rest, peak = done.stderr.strip().splitlines() or ["0"]
    tail = "\n".join((done.stdout + "\n".join(rest)).strip().splitlines()[-3:])
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{tail}")
    return wall, int(peak) / 1024, tail


STARTED = 0.0
"""When the last ``run`` started (perf_counter), to place the endpoint's first and last request."""


def pytest_command(config: Path, report_dir: Path, workers: int) -> list[str]:
    command = [sys.executable, "-m", "pytest", f"--model={config}", "-p", "no:randomly",
               "-p", "no:cacheprovider", "-q", "--tb=no", "-rN", f"--report-dir={report_dir}",
               "-k", INSTANCE_TESTS]
    return command + (["-n", str(workers)] if workers > 1 else [])


def instances_in(report_dir: Path) -> int:
    runs = sorted((report_dir / "runs").iterdir())
    return int(json.loads((runs[-1] / "summary.json").read_text())["counts"]["total"])


def bench_reports(count: int) -> tuple[float, float]:
    """Seconds to score (metrics with bootstrap CIs) and write one run folder of ``count``
    synthetic ASR instances, and to build a leaderboard over three such runs."""
    from ahelm.core import Record
    from ahelm.reports import leaderboard
    from ahelm.scenarios.asr import AsrFamily
    from ahelm.store.run import write_run

    scenarios = ["english_asr", "nonspeech_mc", "parade_bias", "speech_translation"]
    records = [
        Record(f"i{n:05d}", scenarios[n % 4], "perception", "asr", "pass" if n % 3 else "fail",
               "prompt", ("reference words",), "output words",
               {"wer": (n % 5) / 10, "word_errors": float(n % 5), "ref_words": 10.0,
                "char_errors": float(n % 7), "ref_chars": 50.0},
               {"voice": f"v{n % 4}"}, audio=None)
        for n in range(count)
    ]
    summary: dict[str, Any] = {"run_id": "bench", "verdict": "fail", "verdict_reason": "synthetic",
               "model": {"name": "m", "provider": "python", "path": "x"}, "suite_size": "full",
               "started": "", "duration_s": 0.0, "counts": {"total": count, "pass": 0, "fail": 0,
                                                             "error": 0},
               "gates": [], "aspects": {}, "scenarios": {}, "versions": {},
               "dispatch": {"model_calls": 0, "cache_hits": count, "peer_answers": 0,
                            "errors": 0}}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        for name in scenarios:
            mine = [r for r in records if r.scenario == name]
            metrics = AsrFamily().metrics(mine)
            summary["scenarios"][name] = {
                "aspect": "perception", "family": "asr", "instance_bar": "wer <= 0.25",
                "counts": {"total": len(mine), "pass": 0, "fail": 0, "error": 0},
                "metrics": {k: m.to_json() for k, m in metrics.items()}, "gates": []}
        write_run(Path(tmp) / "run", summary, records, None)
        write_s = time.perf_counter() - started
        folders = []
        for name in ("a", "b", "c"):
            folder = Path(tmp) / name
            folder.mkdir()
            (folder / "summary.json").write_text(json.dumps({**summary, "model": {
                **summary["model"], "name": name}}))
            folders.append(folder)
        started = time.perf_counter()
        leaderboard.write(leaderboard.build(folders), Path(tmp) / "board")
        board_s = time.perf_counter() - started
    return write_s, board_s


def measure(endpoint: Endpoint, config: Path, report_dir: Path, workers: int,
            env: dict[str, str]) -> dict[str, float]:
    """One run from a cold answer cache: wall, peak RSS, and where the wall time went."""
    endpoint.reset()
    wall, peak, _ = run(pytest_command(config, report_dir, workers), env)
    first = (endpoint.first_at or STARTED) - STARTED
    last = (endpoint.last_at or STARTED) - STARTED
    return {"wall": wall, "rss": peak, "served": endpoint.served, "in_flight":
            endpoint.max_in_flight, "startup": first, "requests": last - first,
            "tail": wall - last, "instances": instances_in(report_dir)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--runs", type=int, default=3, help="runs per configuration (median)")
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ahelm-bench-"))
    env = {**os.environ, "AHELM_BENCH_KEY": "bench-key", "AHELM_PROGRESS": "0",
           "AHELM_AUDIO_CACHE_DIR": str(work / "audio")}
    # As on a user's machine, the first run leaves Python's bytecode caches behind (ahelm, the
    # suites, pytest's rewritten test modules): with PYTHONDONTWRITEBYTECODE, which some
    # containers set, every process of every measured run would compile them all again.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    print(f"L = {args.latency * 1000:.0f} ms, medians of {args.runs} runs, each from a cold "
          f"answer cache; {os.cpu_count()} cores", flush=True)
    best = float("inf")
    try:
        for limit in args.concurrency:
            with Endpoint(args.latency, limit) as endpoint:
                config = write_config(work, endpoint.url, limit)
                if limit == args.concurrency[0]:
                    first = measure(endpoint, config, work / "first", 1, env)
                    print(f"first run on this machine (every clip decoded, then kept in the WAV "
                          f"cache), C={limit}, 1 proc: wall {first['wall']:.1f} s", flush=True)
                for workers in (1, 2):
                    results = [measure(endpoint, config, work / f"c{limit}-n{workers}-{i}",
                                       workers, env) for i in range(args.runs)]
                    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
                    floor = med["served"] * args.latency / limit
                    best = min(best, med["wall"])
                    ratios = sorted(r["wall"] / floor for r in results)
                    print(f"C={limit:<3} {'-n 2' if workers > 1 else '1 proc':6} "
                          f"N={med['instances']:.0f} requests={med['served']:.0f}  wall "
                          f"{med['wall']:5.1f} s (startup {med['startup']:.1f} + requests "
                          f"{med['requests']:.1f} + tail {med['tail']:.1f})  floor N·L/C "
                          f"{floor:5.1f} s  ratio {med['wall'] / floor:4.2f} (runs "
                          f"{ratios[0]:.2f}-{ratios[-1]:.2f})  max in flight "
                          f"{max(r['in_flight'] for r in results):.0f}  peak RSS "
                          f"{max(r['rss'] for r in results):.0f} MB", flush=True)
                if limit == args.concurrency[0]:
                    cached_dir = work / f"c{limit}-n1-0"
                    walls = [run(pytest_command(config, cached_dir, 1), env)[0]
                             for _ in range(args.runs)]
                    n_cached = instances_in(cached_dir)
                    wall = statistics.median(walls)
                    print(f"cached rerun (1 proc): {wall:.2f} s for {n_cached} instances = "
                          f"{1000 * wall / n_cached:.2f} ms per instance (collection and "
                          f"reports included)", flush=True)
                if not args.skip_naive and limit == args.concurrency[0]:
                    suite = work / "naive"
                    suite.mkdir(exist_ok=True)
                    (suite / "test_naive.py").write_text(NAIVE_SUITE)
                    naive_env = {**env, "AHELM_BENCH_CORPUS": str(ROOT / "fixtures" / "corpus"),
                                 "AHELM_BENCH_URL": endpoint.url}
                    endpoint.reset()
                    wall, _, _ = run([sys.executable, "-m", "pytest", str(suite), "-q", "-n", "2",
                                      "-p", "no:randomly", "-p", "no:cacheprovider",
                                      "--rootdir", str(suite), "-c", os.devnull], naive_env)
                    print(f"naive (blocking POST per test, -n 2): {wall:.1f} s for "
                          f"{endpoint.served} requests; ahelm's best median above is "
                          f"{wall / best:.1f}x faster", flush=True)
        write_s, board_s = bench_reports(10_000)
        print(f"reports for 10,000 instances: run folder {write_s:.2f} s, "
              f"leaderboard of 3 runs {board_s:.2f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
