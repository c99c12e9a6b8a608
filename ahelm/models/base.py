"""The one small interface every model adapter implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ahelm.core import Request, Response


@runtime_checkable
class Model(Protocol):
    """Turns a Request into a Response.

    ``fingerprint`` names everything about the model that changes its answers (provider, model
    name, endpoint) and nothing secret; it is part of every cache key. ``max_concurrency`` bounds
    how many ``generate`` calls the dispatcher keeps in flight for this model in one process.
    ``generate`` raises :class:`ahelm.core.InstanceError` (usually ``ModelCallError``) when no
    answer can be had; it never returns a half answer.

    An adapter that bounds its own requests in flight to ``max_concurrency`` (the HTTP adapters,
    through their transport's slots) may set ``lookahead``: that many more ``generate`` calls
    are started, which prepare their request (read and encode the audio) and wait for a slot,
    so that a slot is never idle while the next body is built. It may also define
    ``async def warm()``, which the dispatcher awaits once before the first request (open the
    connection pools, load what the first call would load).
    """

    fingerprint: str
    max_concurrency: int

    async def generate(self, request: Request) -> Response: ...

    async def aclose(self) -> None: ...
