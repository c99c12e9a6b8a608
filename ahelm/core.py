"""The values that flow through a run: Instance -> Request -> Response, and the errors between them."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

AUDIO_PIPELINE_VERSION = "2"
"""Bumped whenever the audio sent to models changes for the same file (decoding, resampling)."""


class InstanceError(Exception):
    """Something went wrong for one instance only; the rest of the run goes on."""

    kind = "error"

    def __init__(self, message: str, *, raw: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.raw = raw

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "raw": self.raw}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> InstanceError:
        """The error as its own class where the kind names one (audio, transport)."""
        kind = str(data.get("kind") or "error")
        cls = {"audio": AudioError, "transport": ModelCallError}.get(kind, InstanceError)
        error = cls(str(data["message"]), raw=data.get("raw"))
        error.kind = kind
        return error


class AudioError(InstanceError):
    """The instance's audio is missing, corrupt, or does not match its manifest checksum."""

    kind = "audio"


class ModelCallError(InstanceError):
    """The model could not give an answer: transport failure, HTTP error, malformed body."""

    kind = "transport"


@dataclass(frozen=True)
class AudioClip:
    """An audio file of the corpus, with the checksum its manifest promises.

    A clip may carry a perturbation chain (``(kind, severity)`` steps, applied in order with
    ``seed``): the model then hears the perturbed audio, made deterministically from the
    verified file every time it is read, and the cache addresses it by :attr:`identity`.

    Real datasets (:mod:`ahelm.datasets`) promise no checksum: ``sha256`` is then empty and the
    identity is the hash of the file's bytes as found. ``then`` names more files the model hears
    after ``path`` in the same clip, each after half a second of silence (a VoxCeleb2 trial:
    two utterances, "same speaker?").
    """

    path: Path
    sha256: str
    perturbation: tuple[tuple[str, float], ...] = ()
    seed: int = 0
    then: tuple[Path, ...] = ()

    @property
    def identity(self) -> str:
        """What the model hears, as a hash: the file's sha256, or for a perturbed or joined clip
        a hash of the files, the chain, the seed and the perturbation code's version."""
        first = self.sha256 or _content_sha256(self.path)
        if not self.perturbation and not self.then:
            return first
        from ahelm.robustness.perturbations import PERTURBATION_VERSION

        blob = json.dumps(
            [first, [list(step) for step in self.perturbation], self.seed, PERTURBATION_VERSION]
            + ([[_content_sha256(p) for p in self.then]] if self.then else []),
            separators=(",", ":"),
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "path": os.path.abspath(self.path),
            "sha256": self.sha256,
            "perturbation": [list(step) for step in self.perturbation],
            "seed": self.seed,
            "then": [os.path.abspath(p) for p in self.then],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AudioClip:
        return cls(
            path=Path(data["path"]),
            sha256=str(data["sha256"]),
            perturbation=tuple((str(kind), float(severity))
                               for kind, severity in data.get("perturbation") or ()),
            seed=int(data.get("seed") or 0),
            then=tuple(Path(p) for p in data.get("then") or ()),
        )

    @property
    def suffix(self) -> str:
        """The file type of :meth:`read_verified`'s bytes: perturbed and joined clips are WAV."""
        return ".wav" if self.perturbation or self.then else self.path.suffix.lower()

    def describe(self) -> str:
        """The perturbation in words ("pink noise at 17.0 dB SNR"), or "clean"."""
        if not self.perturbation:
            return "clean"
        from ahelm.robustness.perturbations import Perturbation, describe

        return describe([Perturbation(kind, severity) for kind, severity in self.perturbation])

    def verify(self) -> bytes:
        """The file's bytes, after checking them against the manifest checksum (AudioError)."""
        data = _read(self.path)
        if self.sha256:
            digest = hashlib.sha256(data).hexdigest()
            if digest != self.sha256:
                raise AudioError(
                    f"audio file {self.path} does not match its manifest checksum "
                    f"(manifest {self.sha256[:12]}…, file {digest[:12]}…)"
                )
        return data

    def read_verified(self) -> bytes:
        """The bytes the model hears, after checking the file against its manifest checksum."""
        return self.heard(self.verify())

    def heard(self, data: bytes) -> bytes:
        """What the model hears, from the file's verified bytes: joined with ``then`` and
        perturbed as the clip says."""
        if self.then:
            from ahelm.audio import join

            data = join([(data, str(self.path))] + [(_read(p), str(p)) for p in self.then])
        if self.perturbation:
            from ahelm.robustness.rendering import render_perturbed

            return render_perturbed(data, self)
        return data


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AudioError(f"cannot read audio file {path}: {exc.strerror or exc}") from None


_hashes: dict[tuple[str, int, int], str] = {}


def _content_sha256(path: Path) -> str:
    """The sha256 of a file without a promised checksum, memoised by path, size and mtime.
    An unreadable file gets a stable placeholder: reading it later fails that instance only."""
    try:
        stat = path.stat()
    except OSError:
        return "unreadable:" + hashlib.sha256(str(path).encode()).hexdigest()
    memo = (str(path), stat.st_size, stat.st_mtime_ns)
    if memo not in _hashes:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _hashes[memo] = digest.hexdigest()
    return _hashes[memo]


@dataclass(frozen=True)
class Instance:
    """One scored question of a scenario: the audio, the prompt, and what counts as right."""

    id: str
    scenario: str
    aspect: str
    prompt: str
    audio: AudioClip | None
    references: tuple[str, ...]
    choices: tuple[str, ...] = ()
    groups: tuple[tuple[str, str], ...] = ()
    max_tokens: int = 100
    language: str = "en"
    pair: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    """Family-specific facts about the instance that scoring needs (the stereotyped option of a
    bias item, the expected behaviour of a safety request)."""

    def group(self, name: str) -> str | None:
        return dict(self.groups).get(name)

    def attribute(self, name: str) -> str:
        return dict(self.attributes)[name]

    def __repr__(self) -> str:
        """Short: pytest and Allure show it as the test's parameter."""
        return f"Instance({self.scenario}/{self.id})"


@dataclass(frozen=True)
class Request:
    """Everything that determines a model's answer; its key addresses the cache."""

    instance_id: str
    prompt: str
    audio: AudioClip | None
    max_tokens: int
    temperature: float = 0.0

    def key(self, model_fingerprint: str) -> str:
        payload = {
            "model": model_fingerprint,
            "prompt": self.prompt,
            "audio_sha256": self.audio.identity if self.audio else None,
            "audio_pipeline": AUDIO_PIPELINE_VERSION,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "prompt": self.prompt,
            "audio": self.audio.to_json() if self.audio else None,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Request:
        return cls(
            instance_id=str(data["instance_id"]),
            prompt=str(data["prompt"]),
            audio=AudioClip.from_json(data["audio"]) if data.get("audio") else None,
            max_tokens=int(data["max_tokens"]),
            temperature=float(data.get("temperature", 0.0)),
        )

    @classmethod
    def for_instance(cls, instance: Instance) -> Request:
        return cls(
            instance_id=instance.id,
            prompt=instance.prompt,
            audio=instance.audio,
            max_tokens=instance.max_tokens,
        )


@dataclass(frozen=True)
class Response:
    """A model's answer and what it cost."""

    text: str
    latency_s: float
    usage: Mapping[str, int] = field(default_factory=dict)
    raw: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "latency_s": self.latency_s,
            "usage": dict(self.usage),
            "raw": self.raw,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Response:
        return cls(
            text=str(data["text"]),
            latency_s=float(data["latency_s"]),
            usage=dict(data.get("usage") or {}),
            raw=data.get("raw"),
        )


@dataclass(frozen=True)
class Answer:
    """What the dispatcher hands a test: a response or the error that prevented one."""

    key: str
    response: Response | None
    error: InstanceError | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.response is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "response": self.response.to_json() if self.response else None,
            "error": self.error.to_json() if self.error else None,
            "cached": self.cached,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Answer:
        return cls(
            key=str(data["key"]),
            response=Response.from_json(data["response"]) if data.get("response") else None,
            error=InstanceError.from_json(data["error"]) if data.get("error") else None,
            cached=bool(data.get("cached", False)),
        )


@dataclass(frozen=True)
class Record:
    """The transparent per-instance result: the raw prompt and output and every score."""

    instance_id: str
    scenario: str
    aspect: str
    family: str
    status: str
    prompt: str
    references: tuple[str, ...]
    output: str | None
    scores: Mapping[str, float]
    groups: Mapping[str, str]
    audio: str | None = None
    error: str | None = None
    error_kind: str | None = None
    latency_s: float | None = None
    cached: bool = False
    key: str | None = None
    bar: str | None = None
    pair: str | None = None
    raw: str | None = None
    """The endpoint's raw answer (or the raw body of a failed one), secrets removed."""
    perturbation: str | None = None
    """What was done to ``audio`` before the model heard it, in words; None for the clean file."""

    STATUSES = ("pass", "fail", "error")

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.instance_id,
            "scenario": self.scenario,
            "aspect": self.aspect,
            "family": self.family,
            "status": self.status,
            "prompt": self.prompt,
            "references": list(self.references),
            "output": self.output,
            "scores": dict(self.scores),
            "bar": self.bar,
            "groups": dict(self.groups),
            "pair": self.pair,
            "raw": self.raw,
            "audio": self.audio,
            "perturbation": self.perturbation,
            "error": self.error,
            "error_kind": self.error_kind,
            "latency_s": self.latency_s,
            "cached": self.cached,
            "key": self.key,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Record:
        return cls(
            instance_id=data["id"],
            scenario=data["scenario"],
            aspect=data["aspect"],
            family=data["family"],
            status=data["status"],
            prompt=data["prompt"],
            references=tuple(data["references"]),
            output=data.get("output"),
            scores=dict(data.get("scores") or {}),
            groups=dict(data.get("groups") or {}),
            audio=data.get("audio"),
            error=data.get("error"),
            error_kind=data.get("error_kind"),
            latency_s=data.get("latency_s"),
            cached=bool(data.get("cached", False)),
            key=data.get("key"),
            bar=data.get("bar"),
            pair=data.get("pair"),
            raw=data.get("raw"),
            perturbation=data.get("perturbation"),
        )
