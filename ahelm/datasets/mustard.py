"""MUStARD (Castro et al., 2019): 690 sitcom lines, each with the lines that led up to it, labelled
sarcastic or not; AHELM's sarcasm scenario (emotion detection), heard as lead-up then line.

Published layout (the GitHub repository ``soujanyaporia/MUStARD`` cloned, its video archive
``mmsd_raw_data.zip`` unpacked into ``data/videos/``)::

    MUStARD/
      data/sarcasm_data.json            {id: {utterance, speaker, context[], context_speakers[],
                                              show, sarcasm (true/false)}}
      data/videos/utterances_final/<id>.mp4
      data/videos/context_final/<id>_c.mp4

The clips are video: ahelm reads ``<id>.wav`` (or ``.flac``/``.mp3``) converted next to each
``.mp4``. ``data/videos/mmsd_raw_data/`` (the archive unpacked into a folder of its own) works too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

from ahelm.datasets.base import (
    Dataset,
    DatasetError,
    HubSource,
    LoadContext,
    RealScenario,
    Row,
    audio_file,
    need_file,
    read_json,
)

ANNOTATIONS = Path("data") / "sarcasm_data.json"
VIDEOS = (Path("data") / "videos", Path("data") / "videos" / "mmsd_raw_data")
AUDIO = (".wav", ".flac", ".mp3")
QUESTION = ("The recording plays the lead-up to a line, a short pause, then the line itself. "
            "Is that last line sarcastic?")
CHOICES = ["Yes", "No"]
"""AHELM's options: "Yes" is right for a sarcastic line, "No" otherwise."""
_ENTRY = re.compile(r'^\s*"((?:[^"\\]|\\.)+)"\s*:\s*\{')


class Mustard(Dataset):
    name = "mustard"
    title = "MUStARD (sitcom sarcasm with its conversational lead-up)"
    folder = "MUStARD"
    homepage = "https://github.com/soujanyaporia/MUStARD"
    licence = "MIT"
    scenarios = (
        RealScenario(
            name="mustard", aspect="emotion", family="multiple_choice",
            title="MUStARD: is the line sarcastic, given its lead-up?", smoke_size=40,
            group_by=("sarcasm",),
            run_entries=("mustard:model=audiolm",),
        ),
    )
    hub = HubSource(
        repo_id="MichiganNLP/MUStARD", allow_patterns=("mmsd_raw_data.zip",),
        subfolder="data/videos",
        after=("cd DATA_DIR/MUStARD/data/videos && unzip mmsd_raw_data.zip -x '__MACOSX/*' "
               "(it creates utterances_final/ and context_final/)",
               "curl -L -o DATA_DIR/MUStARD/data/sarcasm_data.json https://raw.githubusercontent.com/"
               "soujanyaporia/MUStARD/master/data/sarcasm_data.json",
               "convert every .mp4 under DATA_DIR/MUStARD/data/videos/ to a .wav next to it "
               "(ffmpeg -i X.mp4 -vn -ac 1 -ar 16000 X.wav)"),
    )
    manual = ("git clone https://github.com/soujanyaporia/MUStARD into the data directory (it "
              "creates MUStARD/ with data/sarcasm_data.json), download mmsd_raw_data.zip (linked "
              "from the repository's README) and unzip it into MUStARD/data/videos/, then convert "
              "each .mp4 there to a .wav next to it (ffmpeg -i X.mp4 -vn -ac 1 -ar 16000 X.wav)")

    def rows(self, context: LoadContext, scenario: RealScenario) -> Iterator[tuple[str, Row]]:
        path = need_file(context.root / ANNOTATIONS, "the sarcasm labels and transcripts", self)
        entries = read_json(path)
        if not isinstance(entries, dict):
            raise DatasetError(f"{path}:1: expected an object keyed by clip id")
        lines = _entry_lines(path)
        videos = self._videos(context.root)
        for key in sorted(entries, key=_natural):
            where = f"{path}:{lines.get(key, 1)}"
            yield where, self._row(key, entries[key], videos, where)

    def _videos(self, root: Path) -> Path:
        for folder in VIDEOS:
            if (root / folder / "utterances_final").is_dir():
                return root / folder
        raise DatasetError(f"{root}: no data/videos/utterances_final/ found (unzip "
                           f"mmsd_raw_data.zip into data/videos/; expected layout: see {self.doc})")

    def _row(self, key: str, entry: Any, videos: Path, where: str) -> Row:
        if not isinstance(entry, dict):
            raise DatasetError(f"{where}: entry {key!r} should be an object")
        sarcastic = entry.get("sarcasm")
        if not isinstance(sarcastic, bool):
            raise DatasetError(f"{where}: entry {key!r}: field 'sarcasm' should be true or false, "
                               f"found {sarcastic!r}")
        for name in ("utterance", "speaker"):
            if not isinstance(entry.get(name), str):
                raise DatasetError(f"{where}: entry {key!r}: field '{name}' is missing")
        row: Row = {
            "id": key,
            "audio": audio_file(videos / "context_final" / f"{key}_c", AUDIO, where),
            "then": [audio_file(videos / "utterances_final" / key, AUDIO, where)],
            "question": QUESTION, "choices": list(CHOICES),
            "answer": "Yes" if sarcastic else "No",
            "sarcasm": "yes" if sarcastic else "no",
            "speaker": entry["speaker"],
        }
        if isinstance(entry.get("show"), str):
            row["show"] = entry["show"]
        return row


def _entry_lines(path: Path) -> dict[str, int]:
    """Clip id -> the line its entry starts on (top-level keys are the only ones opening an
    object), so errors can name a line."""
    found: dict[str, int] = {}
    text = path.read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        match = _ENTRY.match(line)
        if match:
            found.setdefault(json.loads(f'"{match.group(1)}"'), number)
    return found


def _natural(key: str) -> tuple[tuple[int, str], ...]:
    """``1_60`` before ``1_105``: numeric parts compare as numbers."""
    return tuple((int(part), "") if part.isdigit() else (-1, part) for part in key.split("_"))


DATASET = Mustard()
