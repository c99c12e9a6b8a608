"""provider = "python": a model object living in this process (a local checkpoint, a fake).

The config names a factory, ``object = "package.module:factory"``, called once with the
``options`` table as keyword arguments. The object it returns needs one method::

    generate(request: ahelm.core.Request) -> str | ahelm.core.Response   # sync or async

and may set ``fingerprint`` (a string identifying its weights, for the cache; default: the
object path and options) and ``max_concurrency`` (default: the config's). Synchronous
``generate`` runs in a worker thread so the event loop keeps other requests moving.
Exceptions it raises become errors for that instance only.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import time
from dataclasses import dataclass, field
from typing import Any

from ahelm.core import InstanceError, ModelCallError, Request, Response


@dataclass(frozen=True)
class Settings:
    object: str
    options: dict[str, Any] = field(default_factory=dict)
    max_concurrency: int = 4


class ObjectPathError(ValueError):
    field = "object"


def _load(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ObjectPathError(f"{path!r} should look like 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ObjectPathError(f"cannot import {module_name!r}: {exc}") from None
    if not hasattr(module, attribute):
        raise ObjectPathError(f"module {module_name!r} has no attribute {attribute!r}")
    return getattr(module, attribute)


def check(settings: Settings) -> None:
    """Resolve the factory before the run starts, so a typo stops it at once."""
    _load(settings.object)


class PythonObjectModel:
    def __init__(self, settings: Settings) -> None:
        self._target = _load(settings.object)(**settings.options)
        if not callable(getattr(self._target, "generate", None)):
            raise TypeError(f"{settings.object} returned an object without a generate() method")
        default = f"python/{settings.object}/{json.dumps(settings.options, sort_keys=True)}"
        self.fingerprint = str(getattr(self._target, "fingerprint", default))
        self.max_concurrency = int(getattr(self._target, "max_concurrency", settings.max_concurrency))

    async def generate(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            if inspect.iscoroutinefunction(self._target.generate):
                result = await self._target.generate(request)
            else:
                result = await asyncio.to_thread(self._target.generate, request)
        except InstanceError:
            raise
        except Exception as exc:
            raise ModelCallError(f"{type(exc).__name__}: {exc}") from None
        if isinstance(result, Response):
            return result
        if not isinstance(result, str):
            raise ModelCallError(f"generate() returned {type(result).__name__}, not str or Response")
        return Response(text=result, latency_s=time.perf_counter() - started)

    async def aclose(self) -> None:
        close = getattr(self._target, "close", None)
        if callable(close):
            result = close()
            if inspect.isawaitable(result):
                await result


def create(settings: Settings) -> PythonObjectModel:
    return PythonObjectModel(settings)
