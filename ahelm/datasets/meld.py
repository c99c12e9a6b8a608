"""MELD (Poria et al., 2019): utterances from the sitcom *Friends*, each labelled with one of seven
emotions; AHELM's emotion-detection scenario over the test split, from the audio alone.

Published layout (``MELD.Raw.tar.gz`` unpacked, then its ``test.tar.gz``)::

    MELD.Raw/
      test_sent_emo.csv              ; Sr No., Utterance, Speaker, Emotion, Sentiment,
                                     ; Dialogue_ID, Utterance_ID, Season, Episode, StartTime, EndTime
      output_repeated_splits_test/dia<D>_utt<U>.mp4   (or test/output_repeated_splits_test/)

The clips are video: ahelm reads ``dia<D>_utt<U>.wav`` (or ``.flac``) converted next to each
``.mp4``. Or the FLAC copy AHELM itself used (Hub ``zrr1999/MELD_Text_Audio``): its
``test_sent_emo.csv`` in ``MELD.Raw/`` and ``archive/audios_test.tgz`` unpacked into
``MELD.Raw/audios_test/`` (``dia<D>_utt<U>.flac``, directly or inside one sub-folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ahelm.datasets.base import (
    Dataset,
    DatasetError,
    HubSource,
    LoadContext,
    RealScenario,
    Row,
    audio_file,
    field_of,
    need_file,
    read_csv,
)

CSV_NAME = "test_sent_emo.csv"
EMOTIONS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
"""MELD's seven labels, spelled as in the CSV; AHELM scores the label text exactly."""
QUESTION = "Which emotion does the speaker in this clip express?"
CLIP_FOLDERS = ("audios_test", "output_repeated_splits_test", "test/output_repeated_splits_test")
"""Where the test clips may be, in the order tried (converted audio wins over video only)."""
AUDIO = (".wav", ".flac")
_COLUMNS = ("Emotion", "Dialogue_ID", "Utterance_ID")


class Meld(Dataset):
    name = "meld"
    title = "MELD test split (Friends utterances, 7 emotions)"
    folder = "MELD.Raw"
    homepage = "https://affective-meld.github.io/"
    licence = "GPL-3.0"
    scenarios = (
        RealScenario(
            name="meld", aspect="emotion", family="multiple_choice",
            title="MELD: the speaker's emotion (7 classes), audio only", smoke_size=40,
            group_by=("emotion",),
            run_entries=("meld_audio:model=audiolm",),
        ),
    )
    hub = HubSource(
        repo_id="zrr1999/MELD_Text_Audio",
        allow_patterns=(CSV_NAME, "archive/audios_test.tgz"),
        after=("mkdir -p DATA_DIR/MELD.Raw/audios_test && tar -xzf "
               "DATA_DIR/MELD.Raw/archive/audios_test.tgz -C DATA_DIR/MELD.Raw/audios_test",),
    )
    manual = ("download http://web.eecs.umich.edu/~mihalcea/downloads/MELD.Raw.tar.gz (or "
              "MELD.Raw.tar.gz from the Hub's declare-lab/MELD), unpack it in the data directory "
              "(it creates MELD.Raw/), unpack MELD.Raw/test.tar.gz inside MELD.Raw/, then convert "
              "each output_repeated_splits_test/*.mp4 to a .wav next to it (ffmpeg -i X.mp4 -vn "
              "-ac 1 -ar 16000 X.wav)")

    def rows(self, context: LoadContext, scenario: RealScenario) -> Iterator[tuple[str, Row]]:
        table = need_file(context.root / CSV_NAME, "MELD's test annotations", self)
        clips = self._clip_folder(context.root)
        found: list[tuple[tuple[int, int], str, Row]] = []
        for where, record in read_csv(table, _COLUMNS, errors="replace"):
            emotion = field_of(record, "Emotion", where).lower()
            if emotion not in EMOTIONS:
                raise DatasetError(f"{where}: field 'Emotion' is {emotion!r}, not one of "
                                   f"{', '.join(EMOTIONS)}")
            dialogue = _number(record, "Dialogue_ID", where)
            utterance = _number(record, "Utterance_ID", where)
            clip = f"dia{dialogue}_utt{utterance}"
            row: Row = {
                "id": clip, "audio": audio_file(clips / clip, AUDIO, where),
                "question": QUESTION, "choices": list(EMOTIONS), "answer": emotion,
                "emotion": emotion, "speaker": str(record.get("Speaker") or "").strip(),
            }
            found.append(((dialogue, utterance), where, row))
        for _, where, row in sorted(found, key=lambda item: item[0]):
            yield where, row

    def _clip_folder(self, root: Path) -> Path:
        """The first folder holding converted clips; else the first holding any (video only:
        audio_file() then says how to convert); else a DatasetError naming what was expected."""
        present = [_descend(root / name) for name in CLIP_FOLDERS if (root / name).is_dir()]
        for folder in present:
            if any(next(folder.glob(f"dia*_utt*{ext}"), None) for ext in AUDIO):
                return folder
        for folder in present:
            if next(folder.glob("dia*_utt*.*"), None) is not None:
                return folder
        raise DatasetError(f"{root}: no test clips found (looked for dia<D>_utt<U>.wav/.flac/.mp4 "
                           f"in {', '.join(n + '/' for n in CLIP_FOLDERS)}; expected layout: "
                           f"see {self.doc})")


def _descend(folder: Path, depth: int = 3) -> Path:
    """``folder``, or the folder its clips are in when an archive wrapped them in a chain of
    single sub-folders (``audios_test/<x>/dia0_utt0.flac``)."""
    for _ in range(depth):
        if next(folder.glob("dia*_utt*.*"), None) is not None:
            return folder
        children = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
        if len(children) != 1:
            return folder
        folder = children[0]
    return folder


def _number(record: Row, name: str, where: str) -> int:
    value = field_of(record, name, where)
    if not value.isdigit():
        raise DatasetError(f"{where}: field '{name}' should be a whole number, found {value!r}")
    return int(value)


DATASET = Meld()
