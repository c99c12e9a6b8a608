"""VocalSound (Gong, Yu and Glass, ICASSP 2022): laughter, sighs, coughs, throat clearing,
sneezes and sniffs recorded by 3,365 people; AHELM's vocal-sound classification (perception).

Published layout (``vs_release_16k.zip`` unpacked into ``vocalsound/``)::

    vocalsound/
      audio_16k/<speaker>_<n>_<label>.wav    e.g. f0003_0_cough.wav: speaker f0003 (f = female,
                                             m = male), first session, label one of cough,
                                             laughter, sigh, sneeze, sniff, throatclearing
      datafiles/te.json                      optional: {"data": [{"wav": ".../f0003_0_cough.wav",
                                             "labels": ...}, ...]}, the test split
      meta/, class_labels_indices_vs.csv     not read

With ``datafiles/te.json`` the scenario is the test split it lists; without it, every file in
``audio_16k/``. Label and sex come from the file name, as in the release.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Iterator

from ahelm.datasets.base import (
    Dataset,
    DatasetError,
    LoadContext,
    RealScenario,
    Row,
    audio_file,
    field_of,
    json_array_items,
)

SOUNDS = {
    "cough": "Cough",
    "laughter": "Laughter",
    "sigh": "Sigh",
    "sneeze": "Sneeze",
    "sniff": "Sniff",
    "throatclearing": "Throat clearing",
}
"""The label in the file name -> the option text (AHELM's reference spells "throat clearing")."""
CHOICES = list(SOUNDS.values())
QUESTION = "Which of these sounds does the person make in the recording?"
_NAME = re.compile(r"^(?P<speaker>(?P<sex>[fm])\d+)_(?P<session>\d+)_(?P<label>[a-z]+)$")
_SEX = {"f": "female", "m": "male"}


class VocalSound(Dataset):
    name = "vocalsound"
    title = "VocalSound (16 kHz release)"
    folder = "vocalsound"
    homepage = "https://github.com/YuanGongND/vocalsound"
    licence = "CC BY-SA 4.0"
    scenarios = (
        RealScenario(
            name="vocalsound", aspect="perception", family="multiple_choice",
            title="VocalSound: which non-speech vocal sound is it?",
            group_by=("gender", "sound"), smoke_size=40,
            run_entries=tuple(f"vocal_sound:sound={label},model=audiolm" for label in SOUNDS),
        ),
    )
    manual = ("download vs_release_16k.zip (https://www.dropbox.com/s/c5ace70qh1vbyzb/"
              "vs_release_16k.zip?dl=1, linked from the homepage) and unzip it so that "
              "DATA_DIR/vocalsound/audio_16k/ holds the .wav files")

    def rows(self, context: LoadContext, scenario: RealScenario) -> Iterator[tuple[str, Row]]:
        audio = context.root / "audio_16k"
        if not audio.is_dir():
            raise DatasetError(f"{audio}: not found (the release's audio_16k/ folder of "
                               f"<speaker>_<n>_<label>.wav files; expected layout: see {self.doc})")
        split = context.root / "datafiles" / "te.json"
        if split.is_file():
            yield from self._listed(split, audio)
        else:
            for path in sorted(audio.glob("*.wav")):
                yield str(path), self._row(path.stem, audio, str(path))

    def _listed(self, split: Path, audio: Path) -> Iterator[tuple[str, Row]]:
        found = []
        for where, item in json_array_items(split, "data"):
            wav = field_of(item, "wav", where)
            name = PureWindowsPath(wav).name if "\\" in wav else PurePosixPath(wav).name
            if not name.endswith(".wav"):
                raise DatasetError(f"{where}: field 'wav' {wav!r} is not a .wav file")
            found.append((name[: -len(".wav")], where))
        for stem, where in sorted(found):
            yield where, self._row(stem, audio, where)

    def _row(self, stem: str, audio: Path, where: str) -> Row:
        match = _NAME.match(stem)
        if match is None or match["label"] not in SOUNDS:
            raise DatasetError(f"{where}: file name {stem!r} is not <f|m><id>_<n>_<label> with "
                               f"label one of {', '.join(SOUNDS)}")
        return {"id": stem, "audio": audio_file(audio / stem, (".wav",), where),
                "question": QUESTION, "choices": CHOICES, "answer": SOUNDS[match["label"]],
                "gender": _SEX[match["sex"]], "sound": match["label"],
                "speaker": match["speaker"]}


DATASET = VocalSound()
