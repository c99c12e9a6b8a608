"""FLEURS (Conneau et al., 2022): FLoRes sentences read aloud in 102 languages; AHELM's
multilingual ASR on six of them, and US English split by speaker gender for fairness.

Published layout (the ``google/fleurs`` Hub repository, one folder per language config; the
audio archive extracted in place)::

    fleurs/
      data/<config>/test.tsv                no header; 7 tab-separated fields: id (the FLoRes
                                            sentence), file name, raw transcription,
                                            transcription, characters, num_samples,
                                            gender (MALE, FEMALE or OTHER)
      data/<config>/audio/test/<file name>  (from data/<config>/audio/test.tar.gz)

or a Hugging Face ``datasets`` export of a config under ``fleurs/hf/<config>/``
(``test-*.parquet``, ``test/*.parquet`` or a save_to_disk ``test/`` folder) with the loader's
columns: id, path, audio, transcription, raw_transcription, gender (0 male, 1 female,
2 other), num_samples, lang_id, language, lang_group_id.

Configs AHELM runs: fi_fi, en_us, he_il, zu_za, bn_in, th_th (ASR); en_us (fairness). The
reference is the ``transcription`` field (FLEURS' normalised text), as in AHELM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from ahelm.datasets.base import (
    Dataset,
    DatasetError,
    HubSource,
    LoadContext,
    RealScenario,
    Row,
    field_of,
    need_file,
    read_tsv,
)
from ahelm.datasets.hf import export_rows, has_export

LANGUAGES = (
    ("fi_fi", "fi", "Finnish"),
    ("en_us", "en", "English"),
    ("he_il", "he", "Hebrew"),
    ("zu_za", "zu", "Zulu"),
    ("bn_in", "bn", "Bengali"),
    ("th_th", "th", "Thai"),
)
"""(FLEURS config, language code of the rows, AHELM's run-entry name), in AHELM's order."""
FAIRNESS_CONFIG = "en_us"
COLUMNS = ("id", "file_name", "raw_transcription", "transcription", "characters",
           "num_samples", "gender")
_GENDER = {"MALE": "male", "FEMALE": "female", "OTHER": "other"}
_GENDER_LABELS = ("male", "female", "other")
"""The export's ClassLabel order."""


class Fleurs(Dataset):
    name = "fleurs"
    title = "FLEURS test split"
    folder = "fleurs"
    homepage = "https://huggingface.co/datasets/google/fleurs"
    licence = "CC BY 4.0"
    scenarios = (
        RealScenario(
            name="fleurs_asr", aspect="multilinguality", family="asr",
            title="FLEURS: read speech in Finnish, English, Hebrew, Zulu, Bengali and Thai",
            smoke_size=40, group_by=("language",),
            run_entries=tuple(f"fleurs:language={name}" for _, _, name in LANGUAGES),
        ),
        RealScenario(
            name="fleurs_fairness", aspect="fairness", family="asr",
            title="FLEURS US English by speaker gender", smoke_size=40,
            group_by=("gender",),
            run_entries=("fleurs_fairness:gender=male", "fleurs_fairness:gender=female"),
        ),
    )
    hub = HubSource(
        repo_id="google/fleurs",
        allow_patterns=tuple(pattern for config, _, _ in LANGUAGES for pattern in (
            f"data/{config}/test.tsv", f"data/{config}/audio/test.tar.gz")),
        after=("extract each language's audio next to its archive: for d in "
               "DATA_DIR/fleurs/data/*/; do tar -xzf $d/audio/test.tar.gz -C $d/audio; done "
               "(it creates audio/test/)",),
    )
    manual = ("download data/<config>/test.tsv and data/<config>/audio/test.tar.gz for the "
              "configs fi_fi, en_us, he_il, zu_za, bn_in, th_th from "
              "https://huggingface.co/datasets/google/fleurs into DATA_DIR/fleurs/ (keeping the "
              "data/<config>/ folders) and extract each archive in its audio/ folder")

    def rows(self, context: LoadContext, scenario: RealScenario) -> Iterator[tuple[str, Row]]:
        fairness = scenario.name == "fleurs_fairness"
        wanted = [entry for entry in LANGUAGES if not fairness or entry[0] == FAIRNESS_CONFIG]
        found = False
        for config, code, _ in wanted:
            source = self._source(context, config, code)
            if source is None:
                continue
            found = True
            for where, row in source:
                if fairness and row["gender"] not in ("male", "female"):
                    continue  # AHELM compares male and female speakers only
                yield where, row
        if not found:
            looked = ", ".join(f"data/{c}/test.tsv or hf/{c}/" for c, _, _ in wanted)
            raise DatasetError(f"{context.root}: none of AHELM's FLEURS languages for "
                               f"{scenario.name} found (looked for {looked}; expected layout: "
                               f"see {self.doc})")

    def _source(self, context: LoadContext, config: str,
                code: str) -> Iterator[tuple[str, Row]] | None:
        published = context.root / "data" / config
        if published.is_dir():
            return self._published(published, config, code)
        export = context.root / "hf" / config
        if has_export(export, "test"):
            return self._exported(export, context.cache_dir, config, code)
        return None

    def _published(self, folder: Path, config: str, code: str) -> Iterator[tuple[str, Row]]:
        tsv = need_file(folder / "test.tsv", f"the {config} test transcripts", self)
        audio = folder / "audio" / "test"
        for where, fields in read_tsv(tsv, header=False, columns=COLUMNS):
            gender = fields["gender"].strip()
            if gender not in _GENDER:
                raise DatasetError(f"{where}: field 'gender' (7th) should be MALE, FEMALE or "
                                   f"OTHER, found {gender[:40]!r}")
            file_name = field_of(fields, "file_name", where)
            yield where, self._row(config, code, file_name, fields, _GENDER[gender], where,
                                   str(audio / file_name))

    def _exported(self, folder: Path, cache_dir: Path, config: str,
                  code: str) -> Iterator[tuple[str, Row]]:
        for where, fields in export_rows(folder, "test", cache_dir):
            name = Path(str(fields.get("audio_path") or fields.get("path") or "")).name
            if not name:
                raise DatasetError(f"{where}: the audio has no file name (column 'audio' "
                                   f"path or 'path')")
            yield where, self._row(config, code, name, fields,
                                   _export_gender(fields.get("gender"), where), where,
                                   str(fields["audio"]))

    @staticmethod
    def _row(config: str, code: str, file_name: str, fields: Row, gender: str, where: str,
             audio: str) -> Row:
        return {"id": f"{config}-{Path(file_name).stem}", "audio": audio,
                "transcript": field_of(fields, "transcription", where), "language": code,
                "gender": gender, "sentence": str(fields.get("id", "")).strip()}


def _export_gender(value: Any, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(_GENDER_LABELS):
        return _GENDER_LABELS[value]
    if isinstance(value, str) and value.strip().upper() in _GENDER:
        return _GENDER[value.strip().upper()]
    raise DatasetError(f"{where}: column 'gender' should be 0, 1, 2 or male/female/other, "
                       f"found {value!r}")


DATASET = Fleurs()
