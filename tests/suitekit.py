"""Builds a small, complete ahelm project inside a pytester directory.

A scenario folder with real audio files, a suite module, a gate policy and a model config for an
in-process fake model (provider "python") whose answers the test chooses per instance.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pytest
import soundfile as sf

FAKE_MODEL = '''
"""A scripted model: right, wrong or failing per instance id; logs every call."""
import json
import os
import time
from pathlib import Path


class Fake:
    def __init__(self, manifest, wrong=(), fail=(), log=None, reply=None, delay=0.0,
                 decode=False):
        rows = [json.loads(line) for line in Path(manifest).read_text().splitlines() if line]
        self.truth = {row["id"]: row["transcript"] for row in rows}
        self.wrong = set(wrong)
        self.fail = set(fail)
        self.log = log
        self.reply = reply
        self.delay = delay
        self.decode = decode

    def generate(self, request):
        time.sleep(self.delay)
        if self.decode and request.audio is not None:
            from ahelm.audio import decode

            decode(request.audio.read_verified(), str(request.audio.path))
        if self.log:
            with open(self.log, "a") as handle:
                handle.write(f"{os.getpid()} {request.instance_id}\\n")
        if request.instance_id in self.fail:
            raise RuntimeError("simulated outage")
        if self.reply is not None:
            return self.reply
        if request.instance_id in self.wrong:
            return "completely different words here"
        return self.truth[request.instance_id]


def create(**options):
    return Fake(**options)
'''

SENTENCES = (
    "the red boat sails at dawn",
    "my neighbour grows tall yellow flowers",
    "we counted stars from the hill",
    "a quiet train crossed the river",
    "please close the window before lunch",
    "the baker sells warm bread daily",
    "our team won the final game",
    "the cat sleeps under the blue chair",
    "fresh snow covered the empty road",
    "she reads a new book every week",
    "the market opens early on sunday",
    "two owls called across the valley",
)


def write_clip(path: Path, index: int) -> str:
    """A short tone whose length encodes the index; returns the file's sha256."""
    rate = 16_000
    n = 3_200 + 160 * index
    t = np.arange(n) / rate
    samples = 0.3 * np.sin(2 * np.pi * (220 + 20 * index) * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples.astype(np.float32), rate, format="FLAC", subtype="PCM_16")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_project(
    pytester: pytest.Pytester,
    *,
    sentences: int = 6,
    voices: Iterable[tuple[str, str]] = (("ann", "female"), ("bob", "male")),
    wrong: Iterable[str] = (),
    fail: Iterable[str] = (),
    reply: str | None = None,
    gates: str = '["wer <= 0.2", "error_rate <= 0.05"]',
    instance_bar: str = "wer <= 0.25",
    smoke_size: int = 4,
    extra_config: str = "",
    policy_extra: str = "",
    delay: float = 0.0,
    decode: bool = False,
) -> dict[str, Any]:
    root = pytester.path
    scenario = root / "corpus" / "mini_asr"
    rows = []
    index = 0
    for s in range(sentences):
        for voice, gender in voices:
            clip_id = f"s{s + 1:02d}-{voice}"
            audio = f"audio/{clip_id}.flac"
            digest = write_clip(scenario / audio, index)
            rows.append({"id": clip_id, "audio": audio, "transcript": SENTENCES[s],
                         "voice": voice, "gender": gender, "sentence": f"s{s + 1:02d}",
                         "sha256": digest})
            index += 1
    (scenario / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (scenario / "scenario.toml").write_text(textwrap.dedent(f"""\
        name = "mini_asr"
        aspect = "perception"
        family = "asr"
        smoke_size = {smoke_size}
        group_by = ["voice", "gender"]
        pair_by = "sentence"
        """))
    (root / "fakemodel.py").write_text(FAKE_MODEL)
    (root / "model_configs").mkdir(exist_ok=True)
    options = {"manifest": str(scenario / "manifest.jsonl"), "wrong": list(wrong),
               "fail": list(fail), "log": str(root / "calls.log")}
    if reply is not None:
        options["reply"] = reply
    if delay:
        options["delay"] = delay
    if decode:
        options["decode"] = True
    option_lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in options.items())
    (root / "model_configs" / "fake.toml").write_text(
        f'provider = "python"\nobject = "fakemodel:create"\n{extra_config}\n'
        f"[options]\n{option_lines}\n"
    )
    (root / "suites").mkdir(exist_ok=True)
    (root / "suites" / "gates.toml").write_text(
        f'[mini_asr]\ninstance = "{instance_bar}"\ngates = {gates}\n{policy_extra}\n'
    )
    (root / "suites" / "test_mini.py").write_text(textwrap.dedent("""\
        import pytest

        pytestmark = pytest.mark.perception


        @pytest.mark.scenario("mini_asr")
        def test_mini_asr(outcome):
            outcome.check()
        """))
    (root / "conftest.py").write_text('pytest_plugins = ["ahelm.plugin"]\n')
    (root / "pytest.ini").write_text(
        "[pytest]\ntestpaths = suites\nahelm_corpus = corpus\n"
    )
    pytester.syspathinsert()
    return {"rows": rows, "scenario": scenario}


def calls(pytester: pytest.Pytester) -> list[str]:
    log = pytester.path / "calls.log"
    return log.read_text().split("\n")[:-1] if log.exists() else []


def runs(pytester: pytest.Pytester) -> list[Path]:
    folder = pytester.path / "reports" / "runs"
    if not folder.exists():
        return []
    return sorted(folder.iterdir(), key=lambda d: (d / "summary.json").stat().st_mtime_ns)


def last_summary(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((runs(pytester)[-1] / "summary.json").read_text())
    return data
