"""A run folder: summary.json, instances.jsonl, summary.md, written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ahelm.core import Record
from ahelm.gates.policy import Baseline
from ahelm.store.files import write_atomic


def _write_atomic(path: Path, text: str) -> None:
    write_atomic(path, text.encode("utf-8"))


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


def load_baseline(option: str) -> Baseline:
    """``--baseline``: a run folder or its summary.json; its instances.jsonl sits beside it.
    Raises ValueError naming what could not be read."""
    path = Path(option)
    run_dir = path if path.is_dir() else path.parent
    try:
        summary = load_summary(path)
        records = load_records(run_dir)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(
            f"--baseline {option}: cannot read the run "
            f"(need summary.json and instances.jsonl): {exc}"
        ) from None
    by_scenario: dict[str, list[Record]] = {}
    for record in records:
        by_scenario.setdefault(record.scenario, []).append(record)
    model = summary.get("model", {}).get("name", "?")
    label = f"baseline {summary.get('run_id', run_dir.name)} ({model})"
    return Baseline(label, {k: tuple(v) for k, v in by_scenario.items()})
