"""Multilingual LibriSpeech (Pratap et al., 2020): LibriVox audiobooks in eight languages;
AHELM's multilingual ASR on seven of them (Dutch, Spanish, Italian, German, French,
Portuguese, Polish).

Published layout (OpenSLR resource 94: ``mls_<language>.tar.gz`` with FLAC, or
``mls_<language>_opus.tar.gz`` with Ogg Opus, unpacked side by side)::

    mls/
      mls_<language>/                       or mls_<language>_opus/
        metainfo.txt                        SPEAKER | GENDER | PARTITION | MINUTES | ... (unused)
        test/transcripts.txt                one line per utterance: UTT-ID <TAB> transcript
        test/segments.txt                   (unused)
        test/audio/<speaker>/<book>/<speaker>_<book>_<utt>.flac   (.opus in the _opus variant)

or the Hugging Face export (``facebook/multilingual_librispeech``, config ``<language>``) under
``mls/hf/<language>/``: ``test-*.parquet`` with columns audio, original_path, begin_time,
end_time, transcript, audio_duration, speaker_id, chapter_id, file, id.

For each language the FLAC folder is used if present, else the Opus folder, else the export.
Instance ids are ``<language code>-<utterance id>`` (``nl-1234_5678_000012``).
"""

from __future__ import annotations

import re
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
    read_tsv,
)
from ahelm.datasets.hf import export_rows, has_export

LANGUAGES = (
    ("dutch", "nl", "Dutch"),
    ("spanish", "es", "Spanish"),
    ("italian", "it", "Italian"),
    ("german", "de", "German"),
    ("french", "fr", "French"),
    ("portuguese", "pt", "Portuguese"),
    ("polish", "pl", "Polish"),
)
"""(MLS language name, language code of the rows, AHELM's run-entry name), in AHELM's order."""
_UTTERANCE = re.compile(r"^(\d+)_(\d+)_(\d+)$")


class MultilingualLibriSpeech(Dataset):
    name = "mls"
    title = "Multilingual LibriSpeech test split"
    folder = "mls"
    homepage = "https://www.openslr.org/94"
    licence = "CC BY 4.0"
    scenarios = (
        RealScenario(
            name="mls_asr", aspect="multilinguality", family="asr",
            title="Multilingual LibriSpeech: read audiobooks in seven European languages",
            smoke_size=40, group_by=("language",),
            run_entries=tuple(f"multilingual_librispeech:language={name}"
                              for _, _, name in LANGUAGES),
        ),
    )
    hub = HubSource(repo_id="facebook/multilingual_librispeech",
                    allow_patterns=tuple(f"{language}/test-*" for language, _, _ in LANGUAGES),
                    subfolder="hf")
    manual = ("download mls_<language>.tar.gz (FLAC) or mls_<language>_opus.tar.gz for dutch, "
              "spanish, italian, german, french, portuguese and polish from "
              "https://www.openslr.org/94 and unpack them in DATA_DIR/mls/ "
              "(tar -xzf mls_dutch.tar.gz -C DATA_DIR/mls creates mls/mls_dutch/)")

    def rows(self, context: LoadContext, scenario: RealScenario) -> Iterator[tuple[str, Row]]:
        found = False
        for language, code, _ in LANGUAGES:
            source = self._source(context, language, code)
            if source is not None:
                found = True
                yield from source
        if not found:
            raise DatasetError(
                f"{context.root}: none of AHELM's MLS languages found (looked for "
                f"mls_<language>/, mls_<language>_opus/ or hf/<language>/test-*.parquet for "
                f"{', '.join(language for language, _, _ in LANGUAGES)}; expected layout: "
                f"see {self.doc})")

    def _source(self, context: LoadContext, language: str,
                code: str) -> Iterator[tuple[str, Row]] | None:
        root = context.root
        for folder, extensions in ((root / f"mls_{language}", (".flac", ".wav")),
                                   (root / f"mls_{language}_opus", (".opus", ".wav"))):
            if folder.is_dir():
                return self._published(folder / "test", code, extensions)
        if has_export(root / "hf" / language, "test"):
            return self._exported(root / "hf" / language, context.cache_dir, code)
        return None

    def _published(self, split: Path, code: str,
                   extensions: tuple[str, ...]) -> Iterator[tuple[str, Row]]:
        transcripts = need_file(split / "transcripts.txt", "the test transcripts", self)
        for where, fields in read_tsv(transcripts, header=False,
                                      columns=("utterance", "transcript")):
            utterance = fields["utterance"].strip()
            match = _UTTERANCE.match(utterance)
            if match is None:
                raise DatasetError(f"{where}: field 'utterance' should be SPEAKER_BOOK_NUMBER "
                                   f"(e.g. 1234_5678_000012), found {utterance[:40]!r}")
            speaker, book = match.group(1), match.group(2)
            yield where, {
                "id": f"{code}-{utterance}",
                "audio": audio_file(split / "audio" / speaker / book / utterance, extensions,
                                    where),
                "transcript": field_of(fields, "transcript", where),
                "language": code,
                "speaker": speaker,
            }

    def _exported(self, folder: Path, cache_dir: Path, code: str) -> Iterator[tuple[str, Row]]:
        for where, fields in export_rows(folder, "test", cache_dir):
            utterance = str(fields.get("id") or "").strip() or Path(
                str(fields.get("file") or fields.get("audio_path") or "")).stem
            if not utterance:
                raise DatasetError(f"{where}: no utterance id (columns 'id' and 'file' are "
                                   f"empty)")
            yield where, {
                "id": f"{code}-{utterance}",
                "audio": fields["audio"],
                "transcript": field_of(fields, "transcript", where),
                "language": code,
                "speaker": str(fields.get("speaker_id") or ""),
            }


DATASET = MultilingualLibriSpeech()
