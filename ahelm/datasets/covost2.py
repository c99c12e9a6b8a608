"""CoVoST 2 (Wang, Wu and Pino, 2020): Common Voice sentences with English translations;
AHELM's speech translation, Chinese (zh-CN) and Spanish (es) into English, test split.

Published layout (CoVoST 2 translation TSVs from https://github.com/facebookresearch/covost
next to the Common Voice Corpus 4 folder of each source language)::

    covost2/
      covost_v2.<src>_en.tsv        header; columns path, translation, split (train,
                                    train_covost, dev, test...); a sentence column is used
                                    when present, else the sentence comes from validated.tsv
      covost_v2.<src>_en.test.tsv   (alternative) the test TSV written by the CoVoST repo's
                                    get_covost_splits.py: path, sentence, translation, client_id
      <src>/validated.tsv           Common Voice 4: path, sentence, client_id, ...
      <src>/clips/<path>            Common Voice 4 MP3 clips

with <src> ``zh-CN`` and ``es``. The TSVs are read as the CoVoST scripts read them: tab
separated, no quoting, backslash escapes. Or a Parquet export in the ``facebook/covost2``
columns (client_id, file, audio, sentence, translation, id) under ``covost2/hf/<src>_en/``
(``test-*.parquet``), as the ``fixie-ai/covost2`` mirror publishes it.

For each pair the split TSV is used if present, else the full TSV with validated.tsv, else the
export.
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
    field_of,
    need_file,
    read_tsv,
)
from ahelm.datasets.hf import export_rows, has_export

PAIRS = (("zh-CN", "Chinese"), ("es", "Spanish"))
"""(CoVoST source language code, AHELM's run-entry name); the target is English."""
TEST = "test"


class CoVoST2(Dataset):
    name = "covost2"
    title = "CoVoST 2 test split (zh-CN and es into English)"
    folder = "covost2"
    homepage = "https://github.com/facebookresearch/covost"
    licence = "CC0 1.0"
    scenarios = (
        RealScenario(
            name="covost2", aspect="multilinguality", family="translation",
            title="CoVoST 2: Chinese and Spanish speech translated into English",
            smoke_size=40, group_by=("source_language",),
            run_entries=tuple(f"covost2:source_language={name},target_language=English"
                              for _, name in PAIRS),
        ),
    )
    hub = HubSource(repo_id="fixie-ai/covost2",
                    allow_patterns=tuple(f"{src}_en/test-*" for src, _ in PAIRS),
                    subfolder="hf")
    manual = ("get Common Voice Corpus 4 for zh-CN and es (https://commonvoice.mozilla.org/"
              "datasets) and put each language folder (validated.tsv, clips/) at "
              "DATA_DIR/covost2/<lang>/; download covost_v2.zh-CN_en.tsv.tar.gz and "
              "covost_v2.es_en.tsv.tar.gz from https://dl.fbaipublicfiles.com/covost/ and "
              "extract them into DATA_DIR/covost2/")

    def rows(self, context: LoadContext, scenario: RealScenario) -> Iterator[tuple[str, Row]]:
        found = False
        for source, _ in PAIRS:
            rows = self._source(context, source)
            if rows is not None:
                found = True
                yield from rows
        if not found:
            looked = "; ".join(f"covost_v2.{s}_en.tsv or covost_v2.{s}_en.test.tsv with "
                               f"{s}/clips/, or hf/{s}_en/test-*.parquet" for s, _ in PAIRS)
            raise DatasetError(f"{context.root}: no CoVoST 2 pair AHELM runs found (looked "
                               f"for {looked}; expected layout: see {self.doc})")

    def _source(self, context: LoadContext, source: str) -> Iterator[tuple[str, Row]] | None:
        root = context.root
        split = root / f"covost_v2.{source}_en.{TEST}.tsv"
        if split.is_file():
            return self._split(split, source)
        full = root / f"covost_v2.{source}_en.tsv"
        if full.is_file():
            return self._full(full, source)
        export = root / "hf" / f"{source}_en"
        if has_export(export, TEST):
            return self._exported(export, context.cache_dir, source)
        return None

    def _split(self, path: Path, source: str) -> Iterator[tuple[str, Row]]:
        for where, fields in _tsv(path, "path", "sentence", "translation"):
            yield where, self._row(source, fields, fields, where, self._clips(path, source))

    def _full(self, path: Path, source: str) -> Iterator[tuple[str, Row]]:
        clips = self._clips(path, source)
        with_sentence: dict[str, Row] | None = None
        for where, fields in _tsv(path, "path", "translation", "split"):
            if fields["split"].strip() != TEST:
                continue
            text: Row = fields
            if "sentence" not in fields:
                if with_sentence is None:
                    with_sentence = self._validated(path.parent / source / "validated.tsv")
                clip = field_of(fields, "path", where)
                if clip not in with_sentence:
                    raise DatasetError(
                        f"{where}: clip {clip!r} is not in {path.parent / source}/validated.tsv "
                        f"(CoVoST 2 needs Common Voice Corpus 4, whose validated.tsv lists "
                        f"every clip the translations name)")
                text = with_sentence[clip]
            yield where, self._row(source, fields, text, where, clips)

    def _validated(self, path: Path) -> dict[str, Row]:
        need_file(path, "Common Voice 4's validated.tsv of the source language", self)
        return {fields["path"].strip(): fields
                for _, fields in _tsv(path, "path", "sentence")}

    @staticmethod
    def _clips(tsv: Path, source: str) -> Path:
        return tsv.parent / source / "clips"

    @staticmethod
    def _row(source: str, fields: Row, text: Row, where: str, clips: Path) -> Row:
        clip = field_of(fields, "path", where)
        return {"id": Path(clip).stem, "audio": str(clips / clip), "source_language": source,
                "source_text": field_of(text, "sentence", where),
                "reference": field_of(fields, "translation", where),
                "speaker": str(text.get("client_id") or "")}

    def _exported(self, folder: Path, cache_dir: Path, source: str) -> Iterator[tuple[str, Row]]:
        for where, fields in export_rows(folder, TEST, cache_dir):
            name = str(fields.get("id") or "").strip() or Path(
                str(fields.get("file") or fields.get("audio_path") or "")).stem
            if not name:
                raise DatasetError(f"{where}: no clip id (columns 'id' and 'file' are empty)")
            yield where, {"id": name, "audio": fields["audio"], "source_language": source,
                          "source_text": field_of(fields, "sentence", where),
                          "reference": field_of(fields, "translation", where),
                          "speaker": str(fields.get("client_id") or "")}


def _tsv(path: Path, *columns: str) -> Iterator[tuple[str, Row]]:
    """CoVoST's and Common Voice's TSVs: a header, no quoting, backslash escapes (as the
    CoVoST scripts read them)."""
    return read_tsv(path, columns=columns, escapechar="\\")


DATASET = CoVoST2()
