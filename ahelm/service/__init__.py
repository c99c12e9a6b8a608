"""The dispatch service: one process per run that asks a remote model for every pytest process.

A remote model's requests cost the asking process CPU (HTTP, JSON, base64 audio): inside a pytest
process that work competes with the tests for the interpreter lock, and under xdist each worker
would hold only its share of the model's concurrency, rate limit and circuit breaker. So for
remote models (OpenAI-compatible chat, Gemini, cascades of remote halves) the run's owner (the
single pytest process, or the xdist controller) starts one service process at configure time;
every pytest process sends it its plan and its asks over a Unix socket, and reads the answers as
they arrive. Local models (the reference system, in-process objects) keep a dispatcher thread in
each pytest process: their work is the CPU, which xdist spreads.

``AHELM_DISPATCH=thread`` keeps every model in-process; ``AHELM_DISPATCH=service`` sends local
models to the service too (their objects must then be importable in a fresh process).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from ahelm.config import ModelConfig
from ahelm.service.protocol import LOG_FILE, SETTINGS_FILE

MODES = ("auto", "service", "thread")


class ServiceError(RuntimeError):
    """The dispatch service could not start or went away."""


NICE_ENV = "AHELM_NICE"
DEFAULT_NICE = 19
"""The lowest priority: the workers of a remote model's run mostly wait for answers and score
them, which may lag; they still get every moment the service leaves. Against +5 or +10, +19
took 0.1-0.15 s more off a 10.5 s benchmark run (C = 64, L = 200 ms, -n 2, alternating): the
service's loop is woken sooner when a worker holds the core."""


def nice_increment() -> int:
    """How much a run's xdist workers lower their priority when a service serves the run:
    ``AHELM_NICE`` (default 19; 0 keeps it). ServiceError for a value that is not a number."""
    raw = os.environ.get(NICE_ENV, "").strip()
    try:
        return max(0, int(raw)) if raw else DEFAULT_NICE
    except ValueError:
        raise ServiceError(
            f"{NICE_ENV}={raw!r}: expected a whole number (0 keeps the priority)") from None


def yield_to_service(increment: int) -> int:
    """Lower this process's CPU priority (``nice``) by ``increment``; returns the increment
    applied (0 where the system refuses).

    The service's event loop sets the pace of every request: an answer it reads late is a slot
    of the model's concurrency left idle. The pytest processes only score answers, which may
    lag and catch up. When they compete for the same cores, the scheduler should run the
    service first; it still runs them whenever it waits.
    """
    if increment <= 0 or not hasattr(os, "nice"):
        return 0
    try:
        os.nice(increment)
    except OSError:
        return 0
    return increment


def wanted(model_config: ModelConfig) -> bool:
    """Whether this run's model is asked through a dispatch service (see the module docstring)."""
    mode = os.environ.get("AHELM_DISPATCH", "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ServiceError(f"AHELM_DISPATCH={mode!r}: expected one of {', '.join(MODES)}")
    if mode == "thread" or not hasattr(socket, "AF_UNIX"):
        return False
    if mode == "service":
        return True
    from ahelm.models import is_remote

    return is_remote(model_config)


class ServiceProcess:
    """The owner's handle on the service process: start it, tell clients where, stop it.

    The service reads its stdin until end of file: closing it (``stop``), or the owner dying in
    any way, ends the service.
    """

    def __init__(self, folder: Path, process: subprocess.Popen[bytes]) -> None:
        self.folder = folder
        self.process = process

    @classmethod
    def start(
        cls,
        model_config: ModelConfig,
        cache_path: Path,
        run_id: str,
        *,
        refresh: bool,
        wav_cache_dir: Path | None,
        wav_cache_bytes: int,
    ) -> ServiceProcess:
        folder = Path(tempfile.mkdtemp(prefix="ahelm-dispatch-"))
        settings = {
            "model": {"name": model_config.name, "path": str(model_config.path),
                      "provider": model_config.provider,
                      "settings": dict(model_config.settings)},
            "cache": str(cache_path), "run_id": run_id, "refresh": refresh,
            "wav_cache_dir": str(wav_cache_dir) if wav_cache_dir else None,
            "wav_cache_bytes": wav_cache_bytes,
        }
        (folder / SETTINGS_FILE).write_text(json.dumps(settings), encoding="utf-8")
        # The service imports what this process can (a pytester directory, pytest's pythonpath).
        path = [p for p in sys.path if p and os.path.isdir(p)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        with open(folder / LOG_FILE, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "ahelm.service.server", str(folder)],
                stdin=subprocess.PIPE, stdout=log, stderr=log, env=env,
            )
        return cls(folder, process)

    def alive(self) -> bool:
        return self.process.poll() is None

    def finish(self) -> None:
        """Tell the service to stop (close its stdin); it winds down while the run is written."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish, wait for the service to end (then kill it) and remove its folder."""
        self.finish()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
