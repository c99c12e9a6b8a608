"""Tiny copies of AHELM's real datasets, in their real layouts, made from our own corpus clips.

Each loader test writes a few files with the dataset's real names and columns, using speech
from ``fixtures/corpus`` (our flite / espeak-ng recordings, decoded and re-encoded in the
format the dataset ships: FLAC, WAV, MP3...) or synthesized tones, then loads them and runs them
end to end against the offline reference model with ``run_real``.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "fixtures" / "corpus"
RATE = 16_000


@dataclass(frozen=True)
class Clip:
    """A corpus recording: 16 kHz mono samples and what is said, by whom."""

    id: str
    samples: np.ndarray
    text: str
    gender: str
    voice: str
    language: str


def corpus_clips(scenario: str = "english_asr", count: int = 4, *,
                 where: dict[str, str] | None = None) -> list[Clip]:
    """The first ``count`` rows of a corpus scenario (matching ``where``), decoded."""
    from ahelm.audio import decode

    clips: list[Clip] = []
    folder = CORPUS / scenario
    for line in (folder / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if any(str(row.get(k)) != v for k, v in (where or {}).items()):
            continue
        path = folder / row["audio"]
        clips.append(Clip(
            id=row["id"], samples=decode(path.read_bytes(), str(path)),
            text=str(row.get("transcript") or row.get("text") or row.get("source_text") or ""),
            gender=str(row.get("gender", "")), voice=str(row.get("voice", "")),
            language=str(row.get("language", "en")),
        ))
        if len(clips) == count:
            break
    return clips


def tone(seconds: float, frequency: float, *, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def write_audio(path: Path, samples: np.ndarray, *, rate: int = RATE) -> Path:
    """Write ``samples`` in the format ``path``'s suffix names (.flac, .wav, .mp3, .ogg)."""
    formats = {".flac": ("FLAC", "PCM_16"), ".wav": ("WAV", "PCM_16"),
               ".mp3": ("MP3", "MPEG_LAYER_III"), ".ogg": ("OGG", "VORBIS")}
    kind, subtype = formats[path.suffix.lower()]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, rate, format=kind, subtype=subtype)
    return path


def audio_bytes(samples: np.ndarray, suffix: str = ".wav") -> bytes:
    """Encoded audio, for exports that embed the bytes (Hugging Face Parquet)."""
    import io

    formats = {".flac": "FLAC", ".wav": "WAV"}
    buffer = io.BytesIO()
    sf.write(buffer, samples, RATE, format=formats[suffix], subtype="PCM_16")
    return buffer.getvalue()


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    """A Hugging Face style Parquet file; audio values are {"bytes": ..., "path": ...}."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def run_real(pytester: pytest.Pytester, data_dir: Path | None, tests: dict[str, str],
             *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    """Run real scenarios end to end on the reference model: ``tests`` maps each scenario
    name to its aspect. Returns the pytest result and the run's summary.json (or {})."""
    root = pytester.path
    (root / "model_configs").mkdir(exist_ok=True)
    shutil.copy(REPO / "model_configs" / "reference.toml", root / "model_configs")
    (root / "corpus").mkdir(exist_ok=True)
    (root / "suites").mkdir(exist_ok=True)
    (root / "suites" / "gates.toml").write_text("[defaults]\ngates = [\"failure_rate <= 0.5\"]\n")
    body = "import pytest\n\n"
    for name, aspect in tests.items():
        body += textwrap.dedent(f"""

            @pytest.mark.{aspect}
            @pytest.mark.scenario("{name}")
            def test_{name}(outcome):
                outcome.check()
            """)
    (root / "suites" / "test_real.py").write_text(body)
    (root / "conftest.py").write_text('pytest_plugins = ["ahelm.plugin"]\n')
    (root / "pytest.ini").write_text("[pytest]\ntestpaths = suites\nahelm_corpus = corpus\n")
    options = ["--model=reference", "-p", "no:cacheprovider", *args]
    if data_dir is not None:
        options.append(f"--data-dir={data_dir}")
    result = pytester.runpytest_inprocess(*options)
    summaries = sorted((root / "reports" / "runs").glob("*/summary.json"))
    summary: dict[str, Any] = json.loads(summaries[-1].read_text()) if summaries else {}
    return result, summary


def records(summary_dir: Path) -> list[dict[str, Any]]:
    """The per-instance records of the newest run under ``summary_dir``/reports/runs."""
    runs = sorted((summary_dir / "reports" / "runs").glob("*/instances.jsonl"))
    return [json.loads(line) for line in runs[-1].read_text().splitlines() if line]


def ids(found: Iterable[dict[str, Any]], scenario: str) -> set[str]:
    return {r["id"] for r in found if r["scenario"] == scenario}
