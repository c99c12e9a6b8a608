"""Speech Robust Bench (Shah et al., 2024): LibriSpeech test-clean under perturbations; AHELM's
robustness scenario reads the Gaussian-noise and environmental-noise (ESC-50) sets.

Published layout (Hugging Face dataset ``mshah1/speech_robust_bench``, the config AHELM
reads, ``librispeech_asr-test.clean_pertEval_500_30``: 500 test-clean utterances, each in 30
copies, the first the original and the others independently perturbed at severity 1)::

    speech_robust_bench/
      librispeech_asr-test.clean_pertEval_500_30/
        gnoise.1-00000-of-00008.parquet ...            (or gnoise.1/0000.parquet ...)
        env_noise_esc50.1-00000-of-00008.parquet ...
      srb_instance_keys.json                            (optional: AHELM's choice of copies)

Columns: file, audio {bytes, path}, text, speaker_id, chapter_id, id (the LibriSpeech
utterance) and pert_idx (0 for the original, 1-29 for the perturbed copies; when the column
is missing, a copy's rank among the rows of its utterance stands for it).

AHELM's "level" k of a perturbation is the k-th copy of each utterance. With
``srb_instance_keys.json`` (from the Hub dataset ``PahaII/SRB_instance_key_mapping``:
``{"srb_librispeech_noises_key2audio": {split: {key: [row index, ...]}}}``) the k-th row index
of each key is used, exactly as AHELM does; without it, the copy with ``pert_idx == k``. The
originals (``pert_idx == 0``) are the ``clean`` condition that every noisy copy is compared with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ahelm.datasets.base import (
    Dataset,
    DatasetError,
    HubSource,
    LoadContext,
    RealScenario,
    Row,
    read_json,
)
from ahelm.datasets.hf import cache_audio, export_files

CONFIG = "librispeech_asr-test.clean_pertEval_500_30"
PERTURBATIONS = (("gnoise", "gnoise.1"), ("env_noise", "env_noise_esc50.1"))
"""Our condition name and the Hub split it is read from."""
LEVELS = (1, 2, 3)
"""The levels AHELM runs (its run entries level=1..3)."""
MAPPING = "srb_instance_keys.json"
MAPPING_KEY = "srb_librispeech_noises_key2audio"
CLEAN = "clean"
CONDITIONS = (CLEAN, *(f"{name}-{level}" for name, _ in PERTURBATIONS for level in LEVELS))


@dataclass(frozen=True)
class _Copy:
    """One row of a split, without its audio."""

    file: Path
    index: int
    """The row's place in its file (0-based)."""
    utterance: str
    text: str
    copy: int
    """pert_idx: 0 for the original."""

    @property
    def where(self) -> str:
        return f"{self.file}#row{self.index + 1}"


class SpeechRobustBench(Dataset):
    name = "speech_robust_bench"
    title = "Speech Robust Bench: LibriSpeech test-clean with Gaussian and environmental noise"
    folder = "speech_robust_bench"
    homepage = "https://github.com/ahmedshah1494/speech_robust_bench"
    licence = "CC BY 4.0 (LibriSpeech, whose speech it perturbs; SRB's own terms not verified)"
    scenarios = (
        RealScenario(
            name="speech_robust_bench", aspect="robustness", family="asr",
            title="Speech Robust Bench: LibriSpeech under Gaussian and environmental noise",
            group_by=("condition",), pair_by="utterance", smoke_size=40,
            run_entries=tuple(
                f"speech_robust_bench:subject=librispeech_{name},level={level},model=audiolm"
                for level in LEVELS for name, _ in PERTURBATIONS),
        ),
    )
    hub = HubSource(
        repo_id="mshah1/speech_robust_bench",
        allow_patterns=tuple(f"{CONFIG}/{split}-*.parquet" for _, split in PERTURBATIONS),
        after=("optional, to pick exactly AHELM's copies: put srb_instance_keys.json from the "
               "Hub dataset PahaII/SRB_instance_key_mapping in DATA_DIR/speech_robust_bench/",),
    )

    def rows(self, context: LoadContext, scenario: RealScenario) -> Iterator[tuple[str, Row]]:
        folder = context.root / CONFIG
        mapping = self._mapping(context.root / MAPPING)
        chosen: dict[tuple[str, str], _Copy] = {}
        present = 0
        for name, split in PERTURBATIONS:
            files = export_files(folder, split)
            if not files:
                continue
            present += 1
            copies = [c for path in files for c in _copies(path)]
            for copy in copies:
                if copy.copy == 0:
                    chosen.setdefault((copy.utterance, CLEAN), copy)
            for level, copy, where in self._levels(copies, mapping, split, context.root):
                key = (copy.utterance, f"{name}-{level}")
                if key in chosen:
                    raise DatasetError(f"{where}: utterance {copy.utterance} has two copies "
                                       f"for {name} level {level}")
                chosen[key] = copy
        if not present:
            raise DatasetError(
                f"{folder}: no {' or '.join(s for _, s in PERTURBATIONS)} split found "
                f"(expected {CONFIG}/<split>-*.parquet; see {self.doc})")
        # the clean condition covers the utterances that are heard noisy, no others
        noisy = {utterance for utterance, condition in chosen if condition != CLEAN}
        chosen = {k: v for k, v in chosen.items() if k[0] in noisy}
        audio = _write_audio(set(chosen.values()), context.cache_dir)
        order = {condition: rank for rank, condition in enumerate(CONDITIONS)}
        for utterance, condition in sorted(chosen, key=lambda k: (k[0], order[k[1]])):
            copy = chosen[(utterance, condition)]
            yield copy.where, {
                "id": f"{utterance}-{condition}", "audio": audio[copy],
                "transcript": copy.text.lower(), "condition": condition,
                "utterance": utterance, "pert_idx": copy.copy,
            }

    def _mapping(self, path: Path) -> dict[str, Any] | None:
        if not path.is_file():
            return None
        data = read_json(path)
        table = data.get(MAPPING_KEY) if isinstance(data, dict) else None
        if not isinstance(table, dict):
            raise DatasetError(f"{path}: expected an object with key {MAPPING_KEY!r}")
        return table

    def _levels(self, copies: list[_Copy], mapping: dict[str, Any] | None, split: str,
                root: Path) -> Iterator[tuple[int, _Copy, str]]:
        """(level, the copy AHELM reads at that level, where it was chosen)."""
        if mapping is None:
            for copy in copies:
                if copy.copy in LEVELS:
                    yield copy.copy, copy, copy.where
            return
        keys = mapping.get(split)
        if not isinstance(keys, dict):
            raise DatasetError(f"{root / MAPPING}: {MAPPING_KEY}.{split} is missing")
        for key, indices in sorted(keys.items()):
            where = f"{root / MAPPING}: {MAPPING_KEY}.{split}.{key}"
            if not isinstance(indices, list) or len(indices) < max(LEVELS):
                raise DatasetError(f"{where}: expected a list of at least {max(LEVELS)} row "
                                   f"indices")
            for level in LEVELS:
                try:
                    index = int(indices[level - 1])
                except (TypeError, ValueError):
                    raise DatasetError(f"{where}[{level - 1}]: not a row index") from None
                if not 0 <= index < len(copies):
                    raise DatasetError(f"{where}[{level - 1}]: row {index} is outside the "
                                       f"{len(copies)} rows of {split}")
                yield level, copies[index], where


def _copies(path: Path) -> list[_Copy]:
    """The rows of one export file without their audio (the text columns only)."""
    table = _table(path, ("id", "file", "text", "pert_idx"))
    names = set(table.column_names)
    if "text" not in names or not names & {"id", "file"}:
        raise DatasetError(f"{path}: columns 'text' and 'id' (or 'file') are required; found "
                           f"{', '.join(sorted(names)) or 'none'}")
    seen: dict[str, int] = {}
    out: list[_Copy] = []
    for index, row in enumerate(table.to_pylist()):
        where = f"{path}#row{index + 1}"
        utterance = str(row.get("id") or "").strip() or Path(str(row.get("file") or "")).stem
        text = str(row.get("text") or "").strip()
        if not utterance or not text:
            raise DatasetError(f"{where}: fields 'id' (or 'file') and 'text' must not be empty")
        rank = seen.get(utterance, 0)
        seen[utterance] = rank + 1
        copy = row.get("pert_idx", rank)
        if not isinstance(copy, int) or isinstance(copy, bool) or copy < 0:
            raise DatasetError(f"{where}: field 'pert_idx' should be a whole number >= 0")
        out.append(_Copy(path, index, utterance, text, copy))
    return out


def _table(path: Path, columns: tuple[str, ...] | None) -> Any:
    """``path`` (Parquet or Arrow) as a pyarrow Table, only ``columns`` that exist."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if path.suffix == ".parquet":
            names = pq.ParquetFile(path).schema_arrow.names
            return pq.read_table(path, columns=[c for c in columns or names if c in names])
        with pa.memory_map(str(path)) as source:
            try:
                table = pa.ipc.open_stream(source).read_all()
            except pa.ArrowInvalid:
                table = pa.ipc.open_file(source).read_all()
        if columns is not None:
            table = table.select([c for c in columns if c in table.column_names])
        return table
    except (pa.ArrowInvalid, OSError) as exc:
        raise DatasetError(f"{path}: not a readable export ({exc})") from None


def _write_audio(copies: set[_Copy], cache_dir: Path) -> dict[_Copy, str]:
    """The audio of the chosen rows, written once to the cache; file by file, only the rows
    needed (the splits hold 15,000 rows, of which a run reads a few thousand)."""
    by_file: dict[Path, dict[int, _Copy]] = {}
    for copy in copies:
        by_file.setdefault(copy.file, {})[copy.index] = copy
    out: dict[_Copy, str] = {}
    for path, wanted in sorted(by_file.items()):
        table = _table(path, ("audio",))
        if "audio" not in table.column_names:
            raise DatasetError(f"{path}: column 'audio' is missing")
        indices = sorted(wanted)
        values = table.column("audio").take(indices).to_pylist()
        for index, value in zip(indices, values, strict=True):
            copy = wanted[index]
            _, out[copy] = cache_audio(value, cache_dir, copy.where, "audio")
    return out


DATASET = SpeechRobustBench()
