"""Gemini ``generateContent`` replies for the loopback server of :mod:`loopback`.

The server itself is reused unchanged: it records any path and answers whatever behaviour is
scripted or whatever its responder returns, so speaking Gemini only takes Gemini-shaped bodies
and a responder that echoes the prompt in that shape::

    with LoopbackServer(responder=echo) as server:
        server.script(error(429, "RESOURCE_EXHAUSTED", headers={"Retry-After": "1"}), ok("hi"))
        ...  # point the adapter at gemini_base_url(server)
"""

from __future__ import annotations

import base64
from typing import Any, Iterator, Mapping

import pytest
from loopback import LoopbackServer, RecordedRequest, Reply, json_reply


def gemini_base_url(server: LoopbackServer) -> str:
    """The server's root with Gemini's API version: requests land on /v1beta/models/..."""
    return server.base_url.removesuffix("/v1") + "/v1beta"


def parts(request: RecordedRequest) -> list[dict[str, Any]]:
    """The parts of the last content of a generateContent body ([] for anything else)."""
    try:
        found = request.json["contents"][-1]["parts"]
    except (TypeError, KeyError, IndexError):
        return []
    return [p for p in found if isinstance(p, dict)] if isinstance(found, list) else []


def prompt(request: RecordedRequest) -> str:
    return "".join(p["text"] for p in parts(request) if isinstance(p.get("text"), str))


def inline_audio(request: RecordedRequest) -> tuple[str, bytes]:
    """The MIME type and decoded bytes of the one inline-data part."""
    (blob,) = [p["inlineData"] for p in parts(request) if "inlineData" in p]
    return blob["mimeType"], base64.b64decode(blob["data"])


def usage(prompt_tokens: int = 12, candidates: int = 3, thoughts: int = 0) -> dict[str, int]:
    meta = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt_tokens + candidates + thoughts,
    }
    return {**meta, "thoughtsTokenCount": thoughts} if thoughts else meta


def response(
    candidate_parts: list[dict[str, Any]] | None,
    finish_reason: str = "STOP",
    *,
    meta: Mapping[str, int] | None = None,
    ratings: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A GenerateContentResponse with one candidate; ``None`` parts means no content at all."""
    candidate: dict[str, Any] = {"finishReason": finish_reason, "index": 0}
    if candidate_parts is not None:
        candidate["content"] = {"role": "model", "parts": candidate_parts}
    if ratings is not None:
        candidate["safetyRatings"] = ratings
    return {
        "candidates": [candidate],
        "usageMetadata": dict(meta or usage()),
        "modelVersion": "gemini-loopback",
        "responseId": "loopback",
    }


def ok(text: str, *, meta: Mapping[str, int] | None = None, thought: str | None = None) -> Reply:
    """A plain answer; ``thought`` adds a thought-summary part before it."""
    answer: list[dict[str, Any]] = [{"text": text}]
    if thought is not None:
        answer.insert(0, {"text": thought, "thought": True})
    return json_reply(response(answer, meta=meta))


def blocked(reason: str = "SAFETY") -> Reply:
    """The prompt itself was blocked: no candidates, only promptFeedback."""
    return json_reply(
        {
            "promptFeedback": {"blockReason": reason, "safetyRatings": []},
            "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
        }
    )


def finish(reason: str, text: str | None = None, *, meta: Mapping[str, int] | None = None) -> Reply:
    """A candidate that stopped for ``reason``, with ``text`` or with no content at all."""
    ratings = [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}]
    body = response(
        None if text is None else [{"text": text}],
        reason,
        meta=meta,
        ratings=ratings if reason == "SAFETY" else None,
    )
    return json_reply(body)


def error(
    code: int, status: str, message: str = "", headers: Mapping[str, str] | None = None
) -> Reply:
    """Google's error envelope, with HTTP status ``code``."""
    message = message or f"loopback says {status}"
    body = {"error": {"code": code, "message": message, "status": status}}
    return json_reply(body, code, headers)


def echo(request: RecordedRequest) -> Reply:
    return ok(prompt(request))


@pytest.fixture
def gemini_server() -> Iterator[LoopbackServer]:
    """A started loopback server that, unscripted, echoes the prompt as a Gemini answer."""
    with LoopbackServer(responder=echo) as server:
        yield server
