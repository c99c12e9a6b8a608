"""What every real-dataset loader provides, and how its rows become a Scenario.

A loader reads one dataset in its published layout (or its Hugging Face export) from a folder
under the data directory and yields manifest-like rows, the same rows our corpus manifests hold
(see each family in :mod:`ahelm.scenarios`), with ``audio`` an absolute path and no ``sha256``.
Each row comes with ``where``: the file and line (or row) it came from, so every error names it.

A missing or unreadable audio file is not a load error: the instance fails alone when the model
is asked (AudioError). A folder whose metadata is wrong is a load error naming the file and field.
"""

from __future__ import annotations

import csv
import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from ahelm.core import Instance
from ahelm.scenarios.base import ScenarioError, ScenarioSpec

Row = dict[str, Any]

UNDECODABLE = (".mp4", ".m4a", ".aac", ".webm", ".mkv")
"""Containers libsndfile cannot read: a loader that finds only these says how to convert."""


class DatasetError(ScenarioError):
    """A dataset folder is present but wrong; names the file, line and field."""


class DatasetAbsent(Exception):
    """The dataset is not in the data directory (or no data directory was given)."""


@dataclass(frozen=True)
class RealScenario:
    """One scenario a dataset provides, mapped as AHELM maps it."""

    name: str
    aspect: str
    family: str
    title: str
    run_entries: tuple[str, ...]
    """The AHELM (HELM) run entries this scenario reproduces, e.g. ``librispeech:subject=...``."""
    language: str = "en"
    group_by: tuple[str, ...] = ()
    pair_by: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    smoke_size: int = 40


@dataclass(frozen=True)
class HubSource:
    """Where ``ahelm data fetch`` gets a dataset from the Hugging Face Hub."""

    repo_id: str
    allow_patterns: tuple[str, ...] = ()
    """The files to download (fnmatch patterns); empty means the whole repository."""
    revision: str | None = None
    gated: bool = False
    """The repository asks users to accept its terms first (and to log in: HF_TOKEN)."""
    after: tuple[str, ...] = ()
    """Steps the user still runs after downloading (extracting archives, converting video)."""
    subfolder: str = ""
    """Where under the dataset's folder the download lands (e.g. ``hf`` for an export read
    next to the published layout); empty: the dataset's folder itself."""


@dataclass(frozen=True)
class LoadContext:
    """Where a loader reads from and where it may write derived files (never into the data)."""

    root: Path
    """The dataset's folder: ``<data dir>/<Dataset.folder>``."""
    cache_dir: Path
    """A folder of this run's report directory for files derived from the data (audio pulled
    out of a Hugging Face export); reused across runs."""


class Dataset(ABC):
    """A real dataset AHELM uses: its folder, its scenarios, how to read and how to fetch it."""

    name: str
    """Registry key and ``ahelm data`` name, e.g. ``librispeech``."""
    title: str
    folder: str
    """The folder under the data directory that holds it, e.g. ``LibriSpeech``."""
    scenarios: tuple[RealScenario, ...]
    homepage: str
    licence: str
    hub: HubSource | None = None
    manual: str = ""
    """How to obtain it when ``ahelm data fetch`` cannot (not on the Hub, or partly)."""

    def locate(self, data_dir: Path) -> Path | None:
        """The dataset's folder if it is present under ``data_dir``."""
        root = data_dir / self.folder
        return root if root.is_dir() else None

    @abstractmethod
    def rows(self, context: LoadContext, scenario: RealScenario) -> Iterator[tuple[str, Row]]:
        """``(where, row)`` for every instance of ``scenario``, in a stable order."""

    def scenario(self, name: str) -> RealScenario:
        return next(s for s in self.scenarios if s.name == name)

    @property
    def doc(self) -> str:
        return f"docs/datasets/{self.name}.md"


def load_instances(dataset: Dataset, scenario: RealScenario, context: LoadContext,
                   family: Any) -> tuple[ScenarioSpec, tuple[Instance, ...]]:
    """Read a real scenario through its family, exactly as a corpus manifest is read."""
    spec = ScenarioSpec(
        name=scenario.name, aspect=scenario.aspect, family=scenario.family,
        directory=context.root, title=scenario.title, language=scenario.language,
        smoke_size=scenario.smoke_size, group_by=scenario.group_by, pair_by=scenario.pair_by,
        options=scenario.options, checksums=False, dataset=dataset.name,
    )
    instances: list[Instance] = []
    seen: set[str] = set()
    for where, row in dataset.rows(context, scenario):
        instance = family.instance(spec, row, where)
        if instance.id in seen:
            raise DatasetError(f"{where}: duplicate instance id {instance.id!r}")
        seen.add(instance.id)
        instances.append(instance)
    if not instances:
        raise DatasetError(f"{context.root}: no instances of {scenario.name} found "
                           f"(expected layout: see {dataset.doc})")
    return spec, tuple(instances)


# -- helpers shared by the loaders ----------------------------------------------------------------


def need_file(path: Path, what: str, dataset: Dataset) -> Path:
    """``path`` if it is a file, else a DatasetError saying what it should hold."""
    if not path.is_file():
        raise DatasetError(f"{path}: not found ({what}; expected layout: see {dataset.doc})")
    return path


def read_tsv(path: Path, *, header: bool = True, columns: Iterable[str] = (),
             quoted: bool = False, escapechar: str | None = None,
             errors: str = "strict") -> Iterator[tuple[str, Row]]:
    """Rows of a tab-separated file as dicts, with ``file:line`` for errors.

    With ``header`` the first line names the columns and every name in ``columns`` must be
    among them; a short row gets empty fields (a required one is then reported by name), a long
    row is an error. Without it ``columns`` names the fields in order; a short row is an error
    and extra fields are kept as ``_5``, ``_6``...

    The dialects differ by corpus: quoting is off by default (LibriSpeech-style corpora put bare
    quotes inside transcripts); ``quoted`` reads double-quoted fields as pandas writes them
    (MuTox); ``escapechar`` is CoVoST's and Common Voice's backslash. ``errors="replace"`` keeps
    rows whose unused text has bytes that are not UTF-8."""
    wanted = list(columns)
    with path.open(encoding="utf-8", errors=errors, newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", escapechar=escapechar,
                            quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE)
        names = [] if header else wanted
        try:
            for fields in reader:
                where = f"{path}:{reader.line_num}"
                if header and not names:
                    names = [f.strip() for f in fields] or [""]
                    missing = [c for c in wanted if c not in names]
                    if missing:
                        raise DatasetError(f"{where}: missing column(s) {', '.join(missing)}; "
                                           f"found {', '.join(n for n in names if n) or 'nothing'}")
                    continue
                if not any(f.strip() for f in fields):
                    continue
                if len(fields) > len(names) if header else len(fields) < len(names):
                    raise DatasetError(f"{where}: expected {len(names)} tab-separated fields "
                                       f"({', '.join(names)}), found {len(fields)}")
                padded = fields + [""] * (len(names) - len(fields))
                row = dict(zip(names, padded[:len(names)], strict=True))
                row.update({f"_{i}": v for i, v in enumerate(fields) if i >= len(names)})
                yield where, row
        except csv.Error as exc:
            raise DatasetError(f"{path}:{reader.line_num}: not valid TSV ({exc})") from None


def read_csv(path: Path, columns: Iterable[str] = (), *,
             errors: str = "strict") -> Iterator[tuple[str, Row]]:
    """Rows of a CSV file with a header, with ``file:line`` for errors (quoted fields allowed).
    ``errors="replace"`` keeps rows whose unused text has bytes that are not UTF-8."""
    wanted = list(columns)
    with path.open(encoding="utf-8-sig", errors=errors, newline="") as handle:
        reader = csv.DictReader(handle)
        names = [n.strip() for n in reader.fieldnames or []]
        missing = [c for c in wanted if c not in names]
        if missing:
            raise DatasetError(f"{path}:1: missing column(s) {', '.join(missing)}; "
                               f"found {', '.join(names)}")
        try:
            for row in reader:
                yield f"{path}:{reader.line_num}", {
                    k.strip(): v for k, v in row.items() if isinstance(k, str) and k}
        except csv.Error as exc:
            raise DatasetError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None


_ARRAY_AT_KEY = '"{}"\\s*:\\s*\\['


def json_array_items(path: Path, key: str | None = None) -> Iterator[tuple[str, Any]]:
    """The elements of a JSON array (the file's top level, or the value of its top-level
    ``key``), each with where it is: ``file:line`` of the element's first character, or
    ``file#itemN`` when the file puts several elements on one line."""
    data = read_json(path)
    items = data if key is None else data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        what = "a JSON array" if key is None else f"an object whose '{key}' is a JSON array"
        raise DatasetError(f"{path}:1: expected {what}")
    lines = _element_lines(path.read_text(encoding="utf-8"), key, len(items))
    for index, item in enumerate(items):
        where = f"{path}:{lines[index]}" if lines else f"{path}#item{index + 1}"
        if not isinstance(item, dict):
            raise DatasetError(f"{where}: expected a JSON object, found {type(item).__name__}")
        yield where, item


def _element_lines(text: str, key: str | None, count: int) -> list[int] | None:
    """The line each array element starts on, or None if they do not each have their own."""
    if key is None:
        start = len(text) - len(text.lstrip())
    else:
        found = re.search(_ARRAY_AT_KEY.format(re.escape(key)), text)
        if found is None:
            return None
        start = found.end() - 1
    decoder = json.JSONDecoder()
    position = start + 1
    counted, line = 0, 1
    lines: list[int] = []
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text) or text[position] == "]":
            break
        line += text.count("\n", counted, position)
        counted = position
        lines.append(line)
        try:
            _, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            return None
    if len(lines) != count or len(set(lines)) != count:
        return None
    return lines


def field_of(row: Mapping[str, Any], name: str, where: str) -> str:
    """A non-empty text field of a metadata row; the error names the place and the field."""
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DatasetError(f"{where}: field '{name}' is missing or empty")
    return str(value).strip()


def audio_file(base: Path, extensions: Iterable[str], where: str) -> str:
    """The path of ``base`` with the first extension that exists (in the order given); when
    none does, the first (the instance then fails alone, naming it). A file found only in a
    video or AAC container is a DatasetError that gives the conversion command."""
    options = list(extensions)
    for extension in options:
        candidate = base.with_name(base.name + extension)
        if candidate.is_file():
            return str(candidate)
    for extension in UNDECODABLE:
        candidate = base.with_name(base.name + extension)
        if candidate.is_file():
            target = base.with_name(base.name + ".wav")
            raise DatasetError(
                f"{where}: {candidate} is {extension[1:]}, which ahelm cannot decode; convert "
                f"the folder once, e.g. ffmpeg -i {candidate} -ac 1 -ar 16000 {target}")
    return str(base.with_name(base.name + options[0]))
