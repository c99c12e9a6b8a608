"""A leaderboard across runs: HELM's mean win rate per aspect, every metric with its 95% CI.

Each run folder is one model. A *column* is one headline metric of one scenario: every metric in
``summary["scenarios"][s]["metrics"]`` without a ``[group]`` selector, except the operational
rates ``error_rate``, ``failure_rate`` and ``format_failure_rate`` (they say whether the endpoint
answered, not how good the answers were; the gates judge them). In a column, a model's win share
is ``(others strictly worse + 0.5 * others tied) / (others with a value)``; lower-is-better
metrics are compared flipped. Missing cells (no such scenario or metric, or a null value) are left
out of that column, and a column where fewer than two models have a value gives no win shares.
A model's aspect score is the mean of its win shares over that aspect's columns; its overall
score is the mean over all its columns. Models are ranked by overall score.
"""

from __future__ import annotations

import html
import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote

from ahelm.reports.markdown import cell
from ahelm.store.run import load_summary

METHOD = ("A model's win share in a metric is the share of the other models it beats there "
          "(ties count half); its score is the mean over an aspect's metrics (overall: all).")
OPERATIONAL = frozenset({"error_rate", "failure_rate", "format_failure_rate"})
PER_RUN = frozenset({"output_toxic_rate"})
"""Ranked once per run (``summary["run_metrics"]``, under the toxicity aspect), not per scenario."""
ALL_OUTPUTS = "all outputs"
FORMATS = ("md", "json", "html")
LINKED_FILES = ("summary.md", "report.html")


@dataclass(frozen=True)
class Column:
    aspect: str
    scenario: str
    metric: str
    lower_is_better: bool


@dataclass
class Entry:
    """One model: its run, its cells and, once compared, its win shares and scores."""

    name: str
    run_dir: Path
    summary: dict[str, Any]
    cells: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    shares: dict[tuple[str, str], float] = field(default_factory=dict)
    aspects: dict[str, float | None] = field(default_factory=dict)
    overall: float | None = None


@dataclass
class Leaderboard:
    entries: list[Entry]  # ranked
    columns: list[Column]
    aspects: list[str]
    notes: list[str]


def win_shares(values: Mapping[str, float], lower_is_better: bool) -> dict[str, float]:
    """Each model's share of the other models it beats in one column, ties counting half."""
    if len(values) < 2:
        return {}
    sign = -1.0 if lower_is_better else 1.0
    shares = {}
    for name, mine in values.items():
        others = [sign * v for other, v in values.items() if other != name]
        wins = sum(1.0 if sign * mine > o else 0.5 if sign * mine == o else 0.0 for o in others)
        shares[name] = wins / len(others)
    return shares


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _started(summary: Mapping[str, Any]) -> datetime:
    try:
        return datetime.strptime(str(summary.get("started")), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def load_entries(paths: Iterable[Path], notes: list[str]) -> list[Entry]:
    """One entry per model name; of several runs of the same model the newest one stays."""
    runs: dict[str, list[Entry]] = {}
    for path in paths:
        run_dir = path if path.is_dir() else path.parent
        summary = load_summary(path)
        name = str(summary.get("model", {}).get("name") or run_dir.name)
        runs.setdefault(name, []).append(Entry(name, run_dir.resolve(), summary))
    kept = []
    for name, found in runs.items():
        newest = max(found, key=lambda e: _started(e.summary))
        kept.append(newest)
        if len(found) > 1:
            older = ", ".join(e.run_dir.name for e in found if e is not newest)
            notes.append(f"model {name} has {len(found)} runs; kept the newest, "
                         f"{newest.run_dir.name} (started {newest.summary.get('started')}); "
                         f"left out {older}")
    return kept


def build(paths: Iterable[Path]) -> Leaderboard:
    notes: list[str] = []
    entries = load_entries(paths, notes)
    columns: dict[tuple[str, str], Column] = {}
    for entry in entries:
        sources = [(scenario, data.get("aspect", ""), data.get("metrics", {}))
                   for scenario, data in entry.summary.get("scenarios", {}).items()]
        if entry.summary.get("run_metrics"):
            sources.append((ALL_OUTPUTS, "toxicity", entry.summary["run_metrics"]))
        for scenario, aspect, metrics in sources:
            for metric, value in metrics.items():
                if "[" in metric or metric in OPERATIONAL or (
                        metric in PER_RUN and scenario != ALL_OUTPUTS):
                    continue
                key = (scenario, metric)
                columns.setdefault(key, Column(str(aspect), scenario, metric,
                                               bool(value.get("lower_is_better"))))
                entry.cells[key] = {"value": _number(value.get("value")),
                                    "ci95": value.get("ci95"), "n": value.get("n")}
    ordered = sorted(columns.values(), key=lambda c: (c.aspect, c.scenario))
    for column in ordered:
        key = (column.scenario, column.metric)
        values = {e.name: v for e in entries
                  if key in e.cells and (v := e.cells[key]["value"]) is not None}
        for name, share in win_shares(values, column.lower_is_better).items():
            next(e for e in entries if e.name == name).shares[key] = share
    aspects = sorted({c.aspect for c in ordered})
    for entry in entries:
        entry.overall = _mean(list(entry.shares.values()))
        for aspect in aspects:
            entry.aspects[aspect] = _mean([s for (sc, m), s in entry.shares.items()
                                           if columns[(sc, m)].aspect == aspect])
    if len(entries) < 2:
        notes.append("win rates need at least two models; with one they are undefined (—)")
    else:
        notes += [f"model {e.name} shares no metric with another model, so it has no win rate"
                  for e in entries if e.overall is None]
    notes.append("operational rates (" + ", ".join(sorted(OPERATIONAL)) + ") are shown by the "
                 "gates, not ranked; metrics for groups (name[...]) are left out of the ranking")
    entries.sort(key=lambda e: (e.overall is None, -(e.overall or 0.0), e.name))
    return Leaderboard(entries, ordered, aspects, notes)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value + 0.0:.{digits}f}"


def _cell_text(data: Mapping[str, Any] | None) -> str:
    if data is None or data["value"] is None:
        return "—"
    ci = data.get("ci95") or [None, None]
    lo, hi = _number(ci[0]), _number(ci[1])
    bounds = f" [{_fmt(lo)}, {_fmt(hi)}]" if lo is not None and hi is not None else ""
    return _fmt(data["value"]) + bounds


def _links(entry: Entry, out: Path) -> dict[str, str]:
    return {name: Path(os.path.relpath(entry.run_dir / name, out.resolve())).as_posix()
            for name in LINKED_FILES if (entry.run_dir / name).is_file()}


def _gates(summary: Mapping[str, Any]) -> str:
    gates = summary.get("gates", [])
    passed = sum(1 for g in gates if g.get("passed"))
    return f"{summary.get('verdict', '?')} ({passed}/{len(gates)} gates hold)"


def to_json(board: Leaderboard, out: Path) -> dict[str, Any]:
    models = []
    for rank, entry in enumerate(board.entries, 1):
        s = entry.summary
        cells: dict[str, dict[str, Any]] = {}
        for (scenario, metric), data in entry.cells.items():
            cells.setdefault(scenario, {})[metric] = {
                **data, "win_share": entry.shares.get((scenario, metric))}
        models.append({
            "rank": rank, "name": entry.name,
            "description": s.get("model", {}).get("description", ""),
            "run_id": s.get("run_id"), "run_dir": str(entry.run_dir), "started": s.get("started"),
            "verdict": s.get("verdict"), "verdict_reason": s.get("verdict_reason"),
            "gates": [{"name": g.get("name"), "passed": g.get("passed")} for g in s.get("gates", [])],
            "links": _links(entry, out), "overall": entry.overall, "aspects": entry.aspects,
            "cells": cells,
        })
    return {"schema": 1, "method": "mean win rate (HELM)", "aspects": board.aspects,
            "columns": [vars(c) for c in board.columns], "models": models, "notes": board.notes}


def render_markdown(board: Leaderboard, out: Path) -> str:
    lines = ["# ahelm leaderboard", ""]
    lines += [f"- {cell(note)}" for note in board.notes] + [""]
    lines += ["## Mean win rate", "", METHOD, "",
              "| rank | model | overall | " + " | ".join(map(cell, board.aspects)) + " | verdict |",
              "|---:|---|---:|" + "---:|" * len(board.aspects) + "---|"]
    for rank, e in enumerate(board.entries, 1):
        scores = " | ".join(_fmt(e.aspects[a]) for a in board.aspects)
        lines.append(f"| {rank} | {cell(e.name)} | {_fmt(e.overall)} | {scores} | "
                     f"{cell(_gates(e.summary))} |")
    for scenario in dict.fromkeys(c.scenario for c in board.columns):
        cols = [c for c in board.columns if c.scenario == scenario]
        heads = [cell(c.metric) + (" ↓" if c.lower_is_better else " ↑") for c in cols]
        lines += ["", f"## {cell(scenario)} ({cell(cols[0].aspect)})", "",
                  "| model | " + " | ".join(heads) + " |", "|---|" + "---|" * len(cols)]
        for e in board.entries:
            values = " | ".join(_cell_text(e.cells.get((scenario, c.metric))) for c in cols)
            lines.append(f"| {cell(e.name)} | {values} |")
    lines += ["", "## Runs", "", "| model | run | started | verdict | reason | reports |",
              "|---|---|---|---|---|---|"]
    for e in board.entries:
        s = e.summary
        links = ", ".join(f"[{n}]({quote(t)})" for n, t in _links(e, out).items()) or "—"
        lines.append(f"| {cell(e.name)} | {cell(s.get('run_id'))} | {cell(s.get('started'))} | "
                     f"{cell(s.get('verdict'))} | {cell(s.get('verdict_reason', ''))} | {links} |")
    return "\n".join(lines) + "\n"


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;
max-width:1200px;padding:0 16px;color:#1d2330;background:#fafbfc}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px}
table{border-collapse:collapse;background:#fff;margin:6px 0 14px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d9dee7;padding:5px 10px;text-align:left;vertical-align:top}
th{background:#eef1f6;cursor:pointer;white-space:nowrap}td.n{text-align:right;white-space:nowrap}
.pass{color:#17703a;font-weight:600}.fail{color:#b3261e;font-weight:600}
.notes{color:#4a5263;margin:0 0 12px;padding-left:18px}.muted{color:#6b7385}
.nw{white-space:nowrap}.chart{background:#fff;border:1px solid #d9dee7;padding:8px}
"""
_SORT = """document.querySelectorAll("table.sortable th").forEach((th,i)=>th.onclick=()=>{
const b=th.closest("table").tBodies[0],d=th.dataset.d=th.dataset.d==="a"?"d":"a";
const k=r=>{const t=r.cells[i].dataset.v??r.cells[i].textContent;const n=parseFloat(t);
return isNaN(n)?t:n};[...b.rows].sort((x,y)=>{const p=k(x),q=k(y);
const c=typeof p==="number"&&typeof q==="number"?p-q:String(p).localeCompare(String(q));
return d==="a"?c:-c}).forEach(r=>b.appendChild(r))});"""
_COLORS = ("#2f5d9e", "#e0823a", "#3a9e6b", "#9b59b6", "#c0392b", "#16a2b8", "#7f8c8d")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num_td(value: float | None, text: str | None = None) -> str:
    sort = "" if value is None else f' data-v="{value:.6f}"'
    return f'<td class="n"{sort}>{_e(text if text is not None else _fmt(value))}</td>'


def _chart(board: Leaderboard) -> str:
    series = ["overall", *board.aspects]
    label_w, bar_w, bar_h, gap = 220, 640, 14, 12
    block = bar_h * len(series) + gap
    height = 34 + block * len(board.entries)
    parts = [f'<svg class="chart" width="{label_w + bar_w + 70}" height="{height}" '
             f'role="img" aria-label="mean win rate per model">']
    for i, name in enumerate(series):
        x = label_w + i * 150
        parts.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{_COLORS[i % 7]}"/>'
                     f'<text x="{x + 17}" y="16" font-size="12">{_e(name)}</text>')
    for row, e in enumerate(board.entries):
        y0 = 30 + row * block
        parts.append(f'<text x="{label_w - 8}" y="{y0 + block / 2}" font-size="13" '
                     f'text-anchor="end">{_e(e.name[:30])}</text>')
        for i, name in enumerate(series):
            value = e.overall if name == "overall" else e.aspects[name]
            y = y0 + i * bar_h
            width = 0 if value is None else value * bar_w
            parts.append(f'<rect x="{label_w}" y="{y}" width="{width:.1f}" height="{bar_h - 2}" '
                         f'fill="{_COLORS[i % 7]}"/><text x="{label_w + width + 4:.1f}" '
                         f'y="{y + bar_h - 3}" font-size="11">{_fmt(value)}</text>')
        parts.append(f'<line x1="{label_w}" x2="{label_w}" y1="{y0}" y2="{y0 + block - gap}" '
                     'stroke="#888"/>')
    return "".join(parts) + "</svg>"


def render_html(board: Leaderboard, out: Path) -> str:
    h = ['<!doctype html><html lang="en"><head><meta charset="utf-8">',
         '<meta name="viewport" content="width=device-width,initial-scale=1">',
         f"<title>ahelm leaderboard</title><style>{_CSS}</style></head><body>",
         "<h1>ahelm leaderboard</h1>",
         '<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in board.notes) + "</ul>",
         f'<h2>Mean win rate</h2><p class="muted">{_e(METHOD)}</p>', _chart(board),
         '<table class="sortable"><thead><tr><th>rank</th><th>model</th><th>overall</th>'
         + "".join(f"<th>{_e(a)}</th>" for a in board.aspects)
         + "<th>verdict</th></tr></thead><tbody>"]
    for rank, e in enumerate(board.entries, 1):
        verdict = _e(e.summary.get("verdict", "?"))
        h.append(f'<tr>{_num_td(rank, str(rank))}<td>{_e(e.name)}<div class="muted">'
                 f'{_e(e.summary.get("model", {}).get("description", ""))}</div></td>'
                 + _num_td(e.overall) + "".join(_num_td(e.aspects[a]) for a in board.aspects)
                 + f'<td class="{verdict}">{_e(_gates(e.summary))}</td></tr>')
    h.append("</tbody></table>")
    for scenario in dict.fromkeys(c.scenario for c in board.columns):
        cols = [c for c in board.columns if c.scenario == scenario]
        h.append(f'<h2>{_e(scenario)} <span class="muted">({_e(cols[0].aspect)}) · value '
                 '[95% CI] · ↓ lower is better</span></h2><table class="sortable"><thead><tr>'
                 "<th>model</th>" + "".join(
                     f"<th>{_e(c.metric)} {'↓' if c.lower_is_better else '↑'}</th>" for c in cols)
                 + "</tr></thead><tbody>")
        for e in board.entries:
            tds = [_num_td((d := e.cells.get((scenario, c.metric), {})).get("value"),
                           _cell_text(d or None)) for c in cols]
            h.append(f"<tr><td>{_e(e.name)}</td>{''.join(tds)}</tr>")
        h.append("</tbody></table>")
    h.append('<h2>Runs</h2><table class="sortable"><thead><tr><th>model</th><th>run</th>'
             "<th>started</th><th>verdict</th><th>reason</th><th>reports</th></tr></thead><tbody>")
    for e in board.entries:
        s = e.summary
        links = " · ".join(f'<a href="{_e(quote(t))}">{_e(n)}</a>'
                           for n, t in _links(e, out).items()) or "—"
        verdict = _e(s.get("verdict", "?"))
        h.append(f"<tr><td>{_e(e.name)}</td><td>{_e(s.get('run_id'))}</td>"
                 f"<td class=\"nw\">{_e(s.get('started'))}</td><td class=\"{verdict}\">{verdict}</td>"
                 f"<td>{_e(s.get('verdict_reason', ''))}</td><td>{links}</td></tr>")
    h.append(f"</tbody></table><script>{_SORT}</script></body></html>")
    return "\n".join(h) + "\n"


def write(board: Leaderboard, out: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = out / f"leaderboard.{fmt}"
        if fmt == "md":
            text = render_markdown(board, out)
        elif fmt == "json":
            text = json.dumps(to_json(board, out), indent=2, ensure_ascii=False) + "\n"
        elif fmt == "html":
            text = render_html(board, out)
        else:
            raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
