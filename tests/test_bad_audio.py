"""Bad audio in a real run: each file is normalised or fails its own instance, by name."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from suitekit import last_summary, make_project


def _tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 440 * t)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


def _write(path: Path, writer: str) -> None:
    if writer == "missing":
        return
    if writer == "empty":
        path.write_bytes(b"")
    elif writer == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4000))
    elif writer == "truncated":
        sf.write(path, _tone(1.0, 16000), 16000, format="FLAC")
        path.write_bytes(path.read_bytes()[:300])
    elif writer == "nan":
        samples = _tone(0.5, 16000).astype(np.float32)
        samples[100] = np.nan
        sf.write(path, samples, 16000, format="WAV", subtype="FLOAT")
    elif writer == "stereo_44k":
        sf.write(path, _tone(0.5, 44100, channels=2), 44100, format="WAV", subtype="PCM_16")
    elif writer == "u8_8k":
        sf.write(path, _tone(0.5, 8000), 8000, format="WAV", subtype="PCM_U8")
    elif writer == "pcm24_48k":
        sf.write(path, _tone(0.5, 48000), 48000, format="WAV", subtype="PCM_24")
    elif writer == "too_long":
        frames = int(31 * 60 * 8000)
        sf.write(path, np.zeros(frames, dtype=np.int16), 8000, format="WAV", subtype="PCM_16")


CASES = {
    "s01-ann": ("missing", "cannot read audio file"),
    "s01-bob": ("empty", "is empty"),
    "s02-ann": ("random", "cannot be decoded"),
    "s02-bob": ("truncated", "cannot be decoded"),
    "s03-ann": ("nan", "contains NaN or infinite samples"),
    "s03-bob": ("stereo_44k", None),
    "s04-ann": ("u8_8k", None),
    "s04-bob": ("pcm24_48k", None),
    "s05-ann": ("too_long", "clips longer than 30 min are refused"),
}


def test_each_bad_file_fails_only_its_instance(pytester: pytest.Pytester) -> None:
    project = make_project(pytester, sentences=6, decode=True, gates='["wer <= 1.0"]')
    scenario: Path = project["scenario"]
    rows = [json.loads(line) for line in (scenario / "manifest.jsonl").read_text().splitlines()]
    for row in rows:
        if row["id"] in CASES:
            writer = CASES[row["id"]][0]
            path = scenario / "audio" / f"{row['id']}.{writer}.wav"
            row["audio"] = str(path.relative_to(scenario))
            _write(path, writer)
            # a missing file keeps the checksum its manifest promised for the real clip
            data = path.read_bytes() if path.exists() else b"the clip that went missing"
            row["sha256"] = hashlib.sha256(data).hexdigest()
    (scenario / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    result = pytester.runpytest("--model=fake", "-p", "no:randomly")
    errors = {name for name, (_, message) in CASES.items() if message}
    result.assert_outcomes(passed=12 - len(errors) + 1, errors=len(errors))
    for name, (writer, message) in CASES.items():
        if message:
            result.stdout.fnmatch_lines([f"*{name}: audio error: *{name}.{writer}.wav*"])
            result.stdout.fnmatch_lines([f"*{name}: audio error: *{message}*"])
    summary = last_summary(pytester)
    assert summary["counts"]["error"] == len(errors)
    assert summary["counts"]["pass"] == 12 - len(errors)
