"""A real HTTP server on 127.0.0.1 that speaks OpenAI's ``/v1/audio/transcriptions``.

Built on :mod:`loopback`: the same threaded server, script of behaviours (``status``, ``raw``,
``sleep``, ``drop``) and request recording; only the default answer differs. Unscripted
requests are checked the way a real server checks them (path, multipart body, ``model`` and
``file`` fields) and answered ``{"text": server.text}``::

    with TranscriptionServer() as server:
        server.script(status(429, {"Retry-After": "1"}))   # then the default answer
        ...  # point a transcription client at server.base_url
        (upload,) = server.uploads()
        assert upload.fields["model"] == "whisper-1" and upload.files["file"].data[:4] == b"RIFF"

Multipart bodies are parsed with the standard library's email parser, which reads binary parts
byte for byte.
"""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass
from typing import Iterator, Mapping

import pytest
from loopback import Behaviour, LoopbackServer, RecordedRequest, Reply, json_reply, raw, status

DEFAULT_TEXT = "the quick brown fox"


@dataclass(frozen=True)
class FilePart:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Upload:
    """A parsed ``multipart/form-data`` body: its plain fields and its files, by field name."""

    fields: Mapping[str, str]
    files: Mapping[str, FilePart]
    order: tuple[str, ...]


def parse_multipart(content_type: str, body: bytes) -> Upload:
    """ValueError if ``body`` is not a well-formed multipart/form-data body."""
    if not content_type.startswith("multipart/form-data") or "boundary=" not in content_type:
        raise ValueError(f"not multipart/form-data with a boundary: {content_type!r}")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        raise ValueError(f"malformed multipart body: {message.defects or 'no parts'}")
    fields: dict[str, str] = {}
    files: dict[str, FilePart] = {}
    order: list[str] = []
    for part in message.iter_parts():
        if part.get_content_disposition() != "form-data":
            disposition = part.get("content-disposition")
            raise ValueError(f"part without a form-data disposition: {disposition}")
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise ValueError("form-data part without a name")
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        order.append(name)
        filename = part.get_filename()
        if filename is None:
            fields[name] = payload.decode("utf-8")
        else:
            files[name] = FilePart(filename, part.get_content_type(), payload)
    return Upload(fields, files, tuple(order))


def upload_of(request: RecordedRequest) -> Upload:
    return parse_multipart(request.headers.get("content-type", ""), request.body)


def transcript(text: str, **extra: object) -> Reply:
    """A transcription answer, ``{"text": text}`` (plus any extra keys)."""
    return json_reply({"text": text, **extra})


def malformed() -> Reply:
    """A 200 whose body is cut-off JSON."""
    return raw('{"text": "the quick bro')


def no_text() -> Reply:
    """Valid JSON without a ``text`` string."""
    return json_reply({"task": "transcribe", "text": None})


def problem(request: RecordedRequest) -> Reply | None:
    """The 4xx a real server would answer, or None if the request is well-formed."""
    if request.method != "POST" or not request.path.endswith("/audio/transcriptions"):
        return status(404, body={"error": {"message": f"no route {request.method} {request.path}"}})
    try:
        upload = upload_of(request)
    except ValueError as exc:
        return status(400, body={"error": {"message": f"bad multipart body: {exc}"}})
    if not upload.fields.get("model"):
        return status(400, body={"error": {"message": "you must provide a model parameter"}})
    if "file" not in upload.files or not upload.files["file"].data:
        return status(400, body={"error": {"message": "you must provide a file"}})
    return None


class TranscriptionServer(LoopbackServer):
    """The scripted server; unscripted requests are validated, then get ``{"text": self.text}``."""

    def __init__(self, text: str = DEFAULT_TEXT) -> None:
        super().__init__(self.answer)
        self.text = text

    def answer(self, request: RecordedRequest) -> Behaviour:
        return problem(request) or transcript(self.text)

    def uploads(self) -> list[Upload]:
        """Every request's multipart body, in order of arrival (ValueError if one is malformed)."""
        return [upload_of(r) for r in self.requests]


@pytest.fixture
def transcription_server() -> Iterator[TranscriptionServer]:
    """A started TranscriptionServer, stopped after the test."""
    server = TranscriptionServer()
    with server:
        yield server
