"""LibriSpeech (Panayotov et al., 2015): read English audiobooks; AHELM's ASR (perception) and
its gender split for fairness.

Published layout (OpenSLR resource 12, ``test-clean.tar.gz`` unpacked)::

    LibriSpeech/
      SPEAKERS.TXT                       ; ID | SEX | SUBSET | MINUTES | NAME
      test-clean/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt   UTT-ID TRANSCRIPT
      test-clean/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac

or its Hugging Face export (``openslr/librispeech_asr``, config ``clean``) under
``LibriSpeech/hf/``: ``test-*.parquet`` with columns file, audio, text, speaker_id, chapter_id,
id. The export carries no speaker sex, so the fairness scenario needs SPEAKERS.TXT next to it.
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
    need_file,
)
from ahelm.datasets.hf import export_rows, has_export

SUBSET = "test-clean"
_SEX = {"M": "male", "F": "female"}


class LibriSpeech(Dataset):
    name = "librispeech"
    title = "LibriSpeech test-clean"
    folder = "LibriSpeech"
    homepage = "https://www.openslr.org/12"
    licence = "CC BY 4.0"
    scenarios = (
        RealScenario(
            name="librispeech_asr", aspect="perception", family="asr",
            title="LibriSpeech test-clean: read English speech", smoke_size=40,
            group_by=("gender",),
            run_entries=("librispeech:model=audiolm",),
        ),
        RealScenario(
            name="librispeech_fairness", aspect="fairness", family="asr",
            title="LibriSpeech test-clean by speaker sex", smoke_size=40,
            group_by=("gender", "speaker"),
            run_entries=("librispeech_fairness:gender=male", "librispeech_fairness:gender=female"),
        ),
    )
    hub = HubSource(repo_id="openslr/librispeech_asr", allow_patterns=("clean/test/*",),
                    subfolder="hf",
                    after=("put SPEAKERS.TXT (from OpenSLR's test-clean.tar.gz) in DATA_DIR/LibriSpeech/: "
                           "the export does not say which readers are female or male",))
    manual = ("download test-clean.tar.gz from https://www.openslr.org/12 and unpack it in the "
              "data directory: tar -xzf test-clean.tar.gz -C DATA_DIR (it creates LibriSpeech/)")

    def rows(self, context: LoadContext, scenario: RealScenario) -> Iterator[tuple[str, Row]]:
        root = context.root
        sexes = self._speakers(root / "SPEAKERS.TXT")
        if (root / SUBSET).is_dir():
            yield from self._published(root / SUBSET, sexes)
        elif has_export(root / "hf", "test"):
            yield from self._exported(context, sexes)
        else:
            raise DatasetError(f"{root}: neither {SUBSET}/ nor hf/test-*.parquet found "
                               f"(expected layout: see {self.doc})")

    def _speakers(self, path: Path) -> dict[str, str]:
        """Speaker id -> "male"/"female" from SPEAKERS.TXT (";" starts a comment)."""
        need_file(path, "the speaker list with each reader's sex", self)
        sexes: dict[str, str] = {}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith(";"):
                continue
            fields = [f.strip() for f in line.split("|")]
            if len(fields) < 3 or fields[1] not in _SEX:
                raise DatasetError(f"{path}:{number}: expected 'ID | SEX | SUBSET | ...' "
                                   f"with SEX M or F, found {line.strip()[:60]!r}")
            sexes[fields[0]] = _SEX[fields[1]]
        return sexes

    def _published(self, subset: Path, sexes: dict[str, str]) -> Iterator[tuple[str, Row]]:
        for transcripts in sorted(subset.glob("*/*/*.trans.txt")):
            lines = transcripts.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                where = f"{transcripts}:{number}"
                utterance, _, text = line.strip().partition(" ")
                if not text.strip() or utterance.count("-") != 2:
                    raise DatasetError(f"{where}: expected 'SPEAKER-CHAPTER-UTT TRANSCRIPT', "
                                       f"found {line.strip()[:60]!r}")
                speaker = utterance.split("-")[0]
                yield where, self._row(utterance, text, speaker, sexes, where,
                                       audio_file(transcripts.parent / utterance, (".flac", ".wav"),
                                                  where))

    def _exported(self, context: LoadContext, sexes: dict[str, str]) -> Iterator[tuple[str, Row]]:
        for where, row in export_rows(context.root / "hf", "test", context.cache_dir):
            utterance = str(row.get("id") or "")
            if not utterance or not row.get("text"):
                raise DatasetError(f"{where}: columns 'id' and 'text' are required")
            yield where, self._row(utterance, str(row["text"]), str(row.get("speaker_id", "")),
                                   sexes, where, row["audio"])

    def _row(self, utterance: str, text: str, speaker: str, sexes: dict[str, str], where: str,
             audio: str) -> Row:
        if speaker not in sexes:
            raise DatasetError(f"{where}: speaker {speaker!r} is not in SPEAKERS.TXT")
        return {"id": utterance, "audio": audio, "transcript": text.strip().lower(),
                "gender": sexes[speaker], "speaker": speaker}


DATASET = LibriSpeech()
