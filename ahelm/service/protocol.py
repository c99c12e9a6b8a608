"""What the dispatch service and its clients say to each other: JSON lines over a Unix socket.

Client to service::

    {"op": "hello", "fingerprint": str}                    first: the model the client expects
    {"op": "plan", "start": int, "items": [[key, request], ...], "push": bool}
                                                           a chunk of a plan, in order; with
                                                           push false (the xdist controller's
                                                           plan, made before its workers
                                                           start) no answer comes back
    {"op": "ask", "key": str, "request": {...}}            a test is waiting: ahead of all plans
    {"op": "progress"}                                     how far the run's requests are

Service to client: ``{"op": "ready", "concurrency": int}`` or ``{"op": "refused", "message": str}``
after hello; ``{"op": "answer", "answer": {...}, "count": bool}`` once for every key the client
planned (with push) or asked (:meth:`ahelm.core.Answer.to_json`). ``count`` is true for the
first client to receive a key's answer: that client counts it (model call, error or cache hit),
so that the run's counts are the sum of its clients' with nothing counted twice. After
progress: ``{"op": "progress", "answered": int, "planned": int, "errors": int}``, over every
client's plans and asks.
"""

from __future__ import annotations

import json
from typing import Any

SETTINGS_FILE = "service.json"
SOCKET_NAME = "dispatch.sock"
ERROR_FILE = "error.txt"
LOG_FILE = "service.log"
PLAN_CHUNK = 256
"""Requests per plan message: the service starts on the first chunk while later ones travel."""


def line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"
