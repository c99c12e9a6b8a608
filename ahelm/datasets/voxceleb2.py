"""VoxCeleb2 (Chung, Nagrani and Zisserman, Interspeech 2018): celebrities speaking in YouTube
interviews; AHELM's "same speaker or not?" trials (perception) on its test set.

Layout read (``vox2_test_aac.zip`` unpacked, plus the pair list HELM uses)::

    voxceleb2/
      voxceleb2_audioidentity.csv      first,second,same   (Hub: LAOS-Y/VoxCeleb2-AudioIdentity)
                                       first/second: id00017/01dfn2spqyE/00001.m4a, relative to aac/
                                       same: True or False
      aac/<speaker>/<video>/<nnnnn>.wav     the utterances, converted from the published .m4a
                                            (.flac also read); vox2_test_aac/aac/ is read too
      trials.txt                       alternative pair list, the VoxCeleb verification format:
                                       "1 id00017/01dfn2spqyE/00001.wav id00061/abc/00002.wav"
                                       (1 = same speaker, 0 = different)

The CSV is used when present, else ``trials.txt``. ahelm cannot decode AAC: a trial whose
utterance exists only as .m4a is a load error that gives the ffmpeg command.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
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
    read_csv,
)

PAIRS = "voxceleb2_audioidentity.csv"
TRIALS = "trials.txt"
QUESTION = "Are the two utterances in this recording spoken by the same person?"
SAME, DIFFERENT = "Same speaker", "Different speakers"
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}
_EXTENSIONS = (".wav", ".flac")


class VoxCeleb2(Dataset):
    name = "voxceleb2"
    title = "VoxCeleb2 test set, speaker-identity pairs"
    folder = "voxceleb2"
    homepage = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox2.html"
    licence = ("CC BY 4.0 (VoxCeleb; the videos' copyright stays with their owners); "
               "pair list LAOS-Y/VoxCeleb2-AudioIdentity: CC BY-SA 4.0")
    scenarios = (
        RealScenario(
            name="voxceleb2", aspect="perception", family="multiple_choice",
            title="VoxCeleb2: are two utterances by the same speaker?",
            group_by=("label",), smoke_size=40,
            run_entries=("voxceleb2:model=audiolm",),
        ),
    )
    hub = HubSource(
        repo_id="ProgramComputer/voxceleb", allow_patterns=("vox2/vox2_test_aac.zip",),
        after=(
            f"download {PAIRS} from https://huggingface.co/datasets/LAOS-Y/"
            f"VoxCeleb2-AudioIdentity into DATA_DIR/voxceleb2/",
            "unzip DATA_DIR/voxceleb2/vox2/vox2_test_aac.zip -d DATA_DIR/voxceleb2/ "
            "(creates voxceleb2/aac/)",
            "convert the utterances to WAV next to the .m4a files, e.g. "
            "find DATA_DIR/voxceleb2/aac -name '*.m4a' -exec sh -c "
            "'ffmpeg -loglevel error -i \"$0\" -ac 1 -ar 16000 \"${0%.m4a}.wav\"' {} \\;",
        ),
    )
    manual = ("request VoxCeleb2 from its homepage (vox2_test_aac.zip), unzip it into "
              f"DATA_DIR/voxceleb2/, convert the .m4a files to .wav, and add {PAIRS} from "
              "https://huggingface.co/datasets/LAOS-Y/VoxCeleb2-AudioIdentity")

    def rows(self, context: LoadContext, scenario: RealScenario) -> Iterator[tuple[str, Row]]:
        root = context.root
        audio = next((d for d in (root / "aac", root / "vox2_test_aac" / "aac") if d.is_dir()),
                     root / "aac")
        if (root / PAIRS).is_file():
            pairs = self._csv(root / PAIRS)
        elif (root / TRIALS).is_file():
            pairs = self._trials(root / TRIALS)
        else:
            raise DatasetError(f"{root}: neither {PAIRS} nor {TRIALS} found (the list of "
                               f"utterance pairs; expected layout: see {self.doc})")
        for number, (where, first, second, same) in enumerate(pairs, start=1):
            yield where, {
                "id": f"pair{number:05d}",
                "audio": _utterance(audio, first, where, "first"),
                "then": [_utterance(audio, second, where, "second")],
                "question": QUESTION, "choices": [SAME, DIFFERENT],
                "answer": SAME if same else DIFFERENT,
                "label": "same" if same else "different",
                "first": first, "second": second,
            }

    def _csv(self, path: Path) -> Iterator[tuple[str, str, str, bool]]:
        for where, row in read_csv(path, ("first", "second", "same")):
            same = field_of(row, "same", where).lower()
            if same not in _TRUE | _FALSE:
                raise DatasetError(f"{where}: field 'same' should be True or False, "
                                   f"found {row['same']!r}")
            yield (where, field_of(row, "first", where), field_of(row, "second", where),
                   same in _TRUE)

    def _trials(self, path: Path) -> Iterator[tuple[str, str, str, bool]]:
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            fields = line.split()
            if len(fields) != 3 or fields[0] not in ("0", "1"):
                raise DatasetError(f"{where}: expected 'LABEL PATH1 PATH2' with LABEL 1 (same "
                                   f"speaker) or 0, found {line.strip()[:80]!r}")
            yield where, fields[1], fields[2], fields[0] == "1"


def _utterance(audio: Path, name: str, where: str, column: str) -> str:
    """The file of ``name`` (``idXXXXX/<video>/<nnnnn>.m4a``) under ``audio``; any extension
    in the list is replaced by the WAV (or FLAC) converted next to it."""
    relative = PurePosixPath(name.replace("\\", "/"))
    if relative.parts and relative.parts[0] == "aac":
        relative = PurePosixPath(*relative.parts[1:])
    if relative.is_absolute() or ".." in relative.parts or len(relative.parts) < 2:
        raise DatasetError(f"{where}: field '{column}' {name!r} should be a path like "
                           f"id00017/01dfn2spqyE/00001.m4a, relative to aac/")
    return audio_file(audio / relative.with_suffix(""), _EXTENSIONS, where)


DATASET = VoxCeleb2()
