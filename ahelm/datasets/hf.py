"""Reading a Hugging Face ``datasets`` export without ``datasets``: Parquet files (the Hub's
own layout, ``data/<split>-00000-of-00001.parquet``) or a ``save_to_disk`` folder (Arrow
stream files, ``<split>/data-00000-of-00001.arrow``), read with pyarrow, batch by batch.

Audio columns hold ``{"bytes": ..., "path": ...}``. Their bytes are written once to the run's
dataset cache, named by their sha256 (so a rerun writes nothing and the cache key is the
content), and the row gets the file's path in place of the struct; ``<column>_path`` keeps the
name the export gave it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterable, Iterator

from ahelm.datasets.base import DatasetError, Row

_MAGIC = ((b"RIFF", ".wav"), (b"fLaC", ".flac"), (b"OggS", ".ogg"), (b"ID3", ".mp3"),
          (b"\xff\xfb", ".mp3"), (b"\xff\xf3", ".mp3"), (b"\xff\xf2", ".mp3"))


def export_files(folder: Path, split: str) -> list[Path]:
    """The Parquet or Arrow files of ``split`` under ``folder``, in name order."""
    patterns = (f"{split}-*.parquet", f"{split}/*.parquet", f"data/{split}-*.parquet",
                f"data/{split}/*.parquet", f"{split}.parquet", f"{split}/data-*.arrow",
                f"{split}/*.arrow", f"**/{split}-*.parquet", f"**/{split}/*.parquet")
    for pattern in patterns:
        found = sorted(folder.glob(pattern))
        if found:
            return found
    return []


def has_export(folder: Path, split: str) -> bool:
    return bool(export_files(folder, split))


def export_rows(folder: Path, split: str, cache_dir: Path,
                audio_columns: Iterable[str] = ("audio",)) -> Iterator[tuple[str, Row]]:
    """``(where, row)`` for every row of the export's ``split``; audio written to ``cache_dir``."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise DatasetError(f"{folder}: reading a Hugging Face export needs pyarrow") from None
    files = export_files(folder, split)
    if not files:
        raise DatasetError(f"{folder}: no '{split}' split found (looked for {split}-*.parquet, "
                           f"data/{split}-*.parquet and {split}/data-*.arrow)")
    audio = list(audio_columns)
    for path in files:
        try:
            if path.suffix == ".parquet":
                batches: Iterable[Any] = pq.ParquetFile(path).iter_batches(batch_size=64)
            else:
                batches = _arrow_batches(pa, path)
            number = 0
            for batch in batches:
                for row in batch.to_pylist():
                    number += 1
                    where = f"{path}#row{number}"
                    for column in audio:
                        if column in row:
                            row[f"{column}_path"], row[column] = cache_audio(row[column], cache_dir,
                                                                        where, column)
                    yield where, row
        except (pa.ArrowInvalid, OSError) as exc:
            raise DatasetError(f"{path}: not a readable export ({exc})") from None


def _arrow_batches(pa: Any, path: Path) -> Iterator[Any]:
    with pa.memory_map(str(path)) as source:
        try:
            reader = pa.ipc.open_stream(source)
        except pa.ArrowInvalid:
            reader = pa.ipc.open_file(source)
            for index in range(reader.num_record_batches):
                yield reader.get_batch(index)
            return
        yield from reader


def cache_audio(value: Any, cache_dir: Path, where: str, column: str) -> tuple[str, str]:
    """(the name the export gives, the path of the bytes written to the cache)."""
    if not isinstance(value, dict) or not isinstance(value.get("bytes"), (bytes, bytearray)):
        raise DatasetError(f"{where}: column '{column}' should hold audio bytes "
                           f"({{bytes, path}}); export it with the Audio feature undecoded")
    data = bytes(value["bytes"])
    name = str(value.get("path") or "")
    digest = hashlib.sha256(data).hexdigest()
    suffix = Path(name).suffix.lower() or next(
        (ext for magic, ext in _MAGIC if data.startswith(magic)), ".bin")
    target = cache_dir / digest[:2] / f"{digest}{suffix}"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(data)
        partial.replace(target)
    return name, str(target)
