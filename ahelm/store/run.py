"""A run folder: summary.json, instances.jsonl, summary.md, written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from ahelm.core import Record


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_run(
    directory: Path, summary: dict[str, Any], records: Sequence[Record], root: Path | None = None
) -> Path:
    """``root``: where relative audio paths in the records start (the project root)."""
    from ahelm.reports.html import render_html
    from ahelm.reports.markdown import render_markdown

    directory.mkdir(parents=True, exist_ok=True)
    lines = (json.dumps(r.to_json(), ensure_ascii=False) for r in records)
    _write_atomic(directory / "instances.jsonl", "".join(line + "\n" for line in lines))
    _write_atomic(directory / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False))
    _write_atomic(directory / "summary.md", render_markdown(summary, records))
    _write_atomic(directory / "report.html", render_html(summary, records, root))
    return directory


def load_summary(path: Path) -> dict[str, Any]:
    """A run's summary from its folder or from the summary.json itself."""
    file = path / "summary.json" if path.is_dir() else path
    data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    return data


def load_records(run_dir: Path) -> list[Record]:
    with (run_dir / "instances.jsonl").open(encoding="utf-8") as handle:
        return [Record.from_json(json.loads(line)) for line in handle if line.strip()]
