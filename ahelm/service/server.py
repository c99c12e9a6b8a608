"""The dispatch service process: one per run, asking a remote model for every pytest process.

``python -m ahelm.service.server FOLDER`` reads ``FOLDER/service.json`` (the model config, the
answer cache, the run id, the WAV cache), builds the model, and serves a Unix socket at
``FOLDER/dispatch.sock`` with a :class:`~ahelm.dispatch.Dispatcher` behind it. Clients speak
JSON lines (see :mod:`ahelm.service.protocol`): they send plans and asks, and every answer they
planned or asked is pushed to them once, as soon as it is known.

The process lives until its standard input, a pipe from its owner (the single pytest process,
or the xdist controller), ends: the owner closes it when the run ends, and the system closes it
if the owner dies in any way. It ignores Ctrl-C, which reaches its whole process group: the owner
decides when to stop. If it cannot start, it writes why to ``FOLDER/error.txt`` and exits
with status 1.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ahelm.core import Answer, Request
from ahelm.service.protocol import ERROR_FILE, SETTINGS_FILE, SOCKET_NAME, line

READ_LIMIT = 1 << 24
"""The longest message a client may send (a plan chunk of a few hundred requests is ~100 KB)."""


class DispatchService:
    def __init__(self, dispatcher: Any, folder: Path, wav_cache: Any = None) -> None:
        self.dispatcher = dispatcher
        self.folder = folder
        self.wav_cache = wav_cache
        """The WAV cache this process writes to (trimmed when the service ends), if any."""
        self.delivered: set[str] = set()
        """Keys whose answer some client has received: the first to receive one counts it."""

    async def start(self) -> None:
        await asyncio.start_unix_server(
            self._connection, path=str(self.folder / SOCKET_NAME), limit=READ_LIMIT
        )

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        sent: set[str] = set()

        def push(future: asyncio.Future[Answer]) -> None:
            if future.cancelled():
                return
            answer = future.result()
            if answer.key not in sent and not writer.is_closing():
                sent.add(answer.key)
                first = answer.key not in self.delivered
                self.delivered.add(answer.key)
                writer.write(line({"op": "answer", "answer": answer.to_json(), "count": first}))

        try:
            while message := await reader.readline():
                request = json.loads(message)
                op = request.get("op")
                if op == "hello":
                    writer.write(self._hello(request))
                elif op == "plan":
                    keyed = [(key, Request.from_json(data)) for key, data in request["items"]]
                    futures = self.dispatcher.enqueue_plan(keyed, start=request["start"])
                    if request.get("push", True):
                        for future in futures:
                            future.add_done_callback(push)
                elif op == "ask":
                    future = self.dispatcher.enqueue(
                        request["key"], Request.from_json(request["request"]))
                    future.add_done_callback(push)
                elif op == "progress":
                    writer.write(line({"op": "progress", **asdict(self.dispatcher.progress())}))
                await writer.drain()
        except (ConnectionError, json.JSONDecodeError, KeyError, ValueError):
            pass
        finally:
            writer.close()

    def _hello(self, request: dict[str, Any]) -> bytes:
        mine = self.dispatcher.model.fingerprint
        if request.get("fingerprint") != mine:
            return line({"op": "refused", "message": (
                f"the dispatch service serves model {mine!r}, not {request.get('fingerprint')!r}"
            )})
        return line({"op": "ready", "concurrency": self.dispatcher.snapshot()["concurrency"]})


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    folder = Path(argv[0])
    try:
        service = _start(folder)
    except BaseException as exc:  # noqa: BLE001 - any failure to start is reported, then exit 1
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        (folder / ERROR_FILE).write_text(detail + "\n", encoding="utf-8")
        return 1
    while sys.stdin.buffer.read(1 << 16):
        pass
    service.dispatcher.close()
    if service.wav_cache is not None:
        service.wav_cache.trim()
    return 0


def _start(folder: Path) -> DispatchService:
    from ahelm.audio import WavCache, use_wav_cache
    from ahelm.config import ModelConfig
    from ahelm.dispatch import Dispatcher
    from ahelm.models import build_model

    settings = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
    model = build_model(ModelConfig(
        name=settings["model"]["name"], path=Path(settings["model"]["path"]),
        provider=settings["model"]["provider"], settings=settings["model"]["settings"],
        gate_overrides={},
    ))
    wav_cache = None
    if settings.get("wav_cache_dir"):
        wav_cache = WavCache(Path(settings["wav_cache_dir"]), int(settings["wav_cache_bytes"]))
        use_wav_cache(wav_cache)
    dispatcher = Dispatcher(
        model, Path(settings["cache"]), settings["run_id"], refresh=bool(settings["refresh"]),
        concurrency=model.max_concurrency, peers=False,
    )
    service = DispatchService(dispatcher, folder, wav_cache)
    dispatcher.submit(service.start()).result()
    return service


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
