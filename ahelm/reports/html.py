"""report.html: the run as one self-contained page, verdict first.

Inline CSS, inline SVG charts and a small inline script; no external URL of any kind, so the
file can be mailed, archived or opened offline. Every string from the records or the summary
(model output above all, which is untrusted) goes through ``html.escape``. Wrong and errored
instances carry their audio as ``data:`` URIs (at most ``MAX_CLIPS`` clips). Charts appear only
when the data supports them: per-group metrics (``wer[voice=awb]``) with 95% CI error bars, one
chart per key; robustness curves for group keys named severity / level / snr; a confusion matrix
for records whose scores carry ``label`` and ``predicted`` (no scenario family records those
yet; the matrix is rendered as soon as one does).
"""

from __future__ import annotations

import base64
import html
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Sequence

from ahelm.core import Record
from ahelm.reports.markdown import fmt

MAX_CLIPS = 200
MIME = {".ogg": "audio/ogg", ".opus": "audio/ogg", ".wav": "audio/wav", ".flac": "audio/flac",
        ".mp3": "audio/mpeg"}
CURVE_KEYS = ("severity", "level", "snr")
_GROUPED = re.compile(r"^(?P<metric>[^\[\]]+)\[(?P<key>[^=\]]+)=(?P<value>[^\]]*)\]$")
_COLORS = {"pass": "#2e7d32", "fail": "#c62828", "error": "#ef6c00"}
Point = tuple[str, float, float | None, float | None]

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2430;
background:#f5f6f8}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
.verdict{border-radius:8px;padding:18px 22px;color:#fff;margin:8px 0 6px}
.verdict.pass{background:#2e7d32}.verdict.fail{background:#c62828}
.verdict .big{font-size:34px;font-weight:800;letter-spacing:.06em;margin-right:14px}
.verdict .reason{font-size:17px}
.meta{color:#4a5568;margin:4px 0 16px}.muted{color:#718096}
section{background:#fff;border-radius:8px;padding:14px 18px;margin:14px 0;
box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{margin:4px 0 10px;font-size:19px}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border-bottom:1px solid #e2e8f0;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#edf2f7;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;
white-space:nowrap}
tr.msg td{color:#4a5568;font-size:12.5px;border-bottom:2px solid #cbd5e0}
#gates tr.gate td:nth-child(1),#gates tr.gate td:nth-child(3){overflow-wrap:anywhere}
.ok{color:#2e7d32;font-weight:700}.bad{color:#c62828;font-weight:800}
td.st-fail{color:#c62828}td.st-error{color:#ef6c00}
.charts{display:flex;flex-wrap:wrap;gap:18px}
.text{max-width:260px;word-break:break-word}
audio{width:220px;height:32px}
input#filter{padding:6px 10px;width:320px;border:1px solid #cbd5e0;border-radius:6px}
svg text{font:12px system-ui,sans-serif;fill:#1d2430}
"""

SCRIPT = """
function ahelmMark(a){a.dataset.loaded='true';a.dataset.duration=String(a.duration.toFixed(2));}
document.querySelectorAll('audio').forEach(function(a){
  if(a.readyState>=1){ahelmMark(a);} a.addEventListener('loadedmetadata',function(){ahelmMark(a);});
});
var box=document.getElementById('filter');
if(box){box.addEventListener('input',function(){
  var q=box.value.toLowerCase();
  document.querySelectorAll('#instances tbody tr').forEach(function(tr){
    tr.style.display=tr.textContent.toLowerCase().indexOf(q)>=0?'':'none';
  });
});}
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _ci(ci: Sequence[float | None] | None) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "—"
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def _p_value(details: dict[str, Any] | None) -> float | None:
    if not details:
        return None
    for found in (details.get("p_adjusted"), details.get("p_value"),
                  (details.get("test") or {}).get("p_value")):
        if isinstance(found, (int, float)):
            return float(found)
    return None


def render_html(summary: dict[str, Any], records: Sequence[Record], root: Path | None) -> str:
    """The run as a self-contained HTML page; audio paths resolve against ``root`` (else cwd)."""
    from ahelm.reports.robustness import html_section

    parts = [_header(summary), _gates(summary), _aspects(summary), html_section(summary)]
    for name, scenario in summary.get("scenarios", {}).items():
        parts.append(_scenario(name, scenario, [r for r in records if r.scenario == name]))
    parts += [_instances(records, root), _provenance(summary)]
    title = f"ahelm {summary.get('run_id', '')} · {str(summary.get('verdict', '')).upper()}"
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>\n"
        + "\n".join(parts)
        + f"\n</main><script>{SCRIPT}</script></body></html>\n"
    )


def _header(summary: dict[str, Any]) -> str:
    verdict = "pass" if summary.get("verdict") == "pass" else "fail"
    model = summary.get("model") or {}
    counts = summary.get("counts") or {}
    meta = (
        f"Model <b>{esc(model.get('name', '?'))}</b> (provider {esc(model.get('provider', '?'))})"
        f" · run <code>{esc(summary.get('run_id', '?'))}</code>"
        f" · suite <b>{esc(summary.get('suite_size', '?'))}</b>"
        f" · started {esc(summary.get('started', '?'))}"
        f" · {float(summary.get('duration_s') or 0):.1f} s"
    )
    if not summary.get("complete", True):
        meta += " · <span class='bad'>incomplete run</span>"
    tally = (
        f"Instances: {counts.get('total', 0)} ({counts.get('pass', 0)} pass, "
        f"{counts.get('fail', 0)} fail, {counts.get('error', 0)} error). "
        "Single wrong answers do not decide the verdict; gates do."
    )
    return (
        f"<header><div class='verdict {verdict}' id='verdict'>"
        f"<span class='big'>{verdict.upper()}</span>"
        f"<span class='reason'>{esc(summary.get('verdict_reason', ''))}</span></div>"
        f"<p class='meta'>{meta}</p><p class='meta'>{tally}</p></header>"
    )


def _gates(summary: dict[str, Any]) -> str:
    rows = []
    for gate in summary.get("gates", []):
        passed = bool(gate.get("passed"))
        p = _p_value(gate.get("details"))
        verdict = "<span class='ok'>pass</span>" if passed else "<span class='bad'>FAIL</span>"
        rows.append(
            f"<tr class='gate {'pass' if passed else 'fail'}'><td>{esc(gate.get('name', ''))}</td>"
            f"<td>{esc(gate.get('kind', ''))}</td><td><code>{esc(gate.get('condition', ''))}"
            f"</code></td><td class='num'>{fmt(gate.get('value'))}</td>"
            f"<td class='num'>{_ci(gate.get('ci95'))}</td><td class='num'>{esc(gate.get('n', ''))}"
            f"</td><td class='num'>{fmt(p, 3)}</td><td>{verdict}</td></tr>"
            f"<tr class='msg'><td colspan='8'>{esc(gate.get('message', ''))}</td></tr>"
        )
    others = "".join(f"<li>{esc(o)}</li>" for o in summary.get("other_failures", []))
    return (
        "<section><h2>Release gates</h2><table id='gates'><thead><tr><th>gate</th><th>kind</th>"
        "<th>condition</th><th>value</th><th>95% CI</th><th>n</th><th>p</th><th>verdict</th>"
        f"</tr></thead><tbody>{''.join(rows) or '<tr><td colspan=8>no gate evaluated</td></tr>'}"
        "</tbody></table>"
        + (f"<h3>Other failing tests</h3><ul>{others}</ul>" if others else "")
        + "</section>"
    )


def stacked_bars_svg(rows: Sequence[tuple[str, int, int, int]]) -> str:
    """Pass / fail / error counts stacked per row, bars scaled to each row's total."""
    width, left, bar_w, row_h = 720, 150, 420, 28
    height = row_h * len(rows) + 30
    out = [f"<svg class='chart' width='{width}' height='{height}' role='img'>"]
    for i, (label, *counts) in enumerate(rows):
        y, x, total = 6 + i * row_h, float(left), max(1, sum(counts))
        out.append(f"<text x='{left - 8}' y='{y + 15}' text-anchor='end'>{esc(label)}</text>")
        for status, count in zip(("pass", "fail", "error"), counts, strict=True):
            w = bar_w * count / total
            if w > 0:
                out.append(f"<rect x='{x:.1f}' y='{y}' width='{w:.1f}' height='20' "
                           f"fill='{_COLORS[status]}'><title>{status}: {count}</title></rect>")
            x += w
        rate = counts[0] / total
        out.append(f"<text x='{left + bar_w + 8}' y='{y + 15}'>{counts[0]}/{sum(counts)} pass "
                   f"({rate:.0%})</text>")
    for j, status in enumerate(("pass", "fail", "error")):
        out.append(f"<rect x='{left + j * 80}' y='{height - 18}' width='10' height='10' "
                   f"fill='{_COLORS[status]}'/><text x='{left + j * 80 + 14}' y='{height - 8}'>"
                   f"{status}</text>")
    return "".join(out) + "</svg>"


def _aspects(summary: dict[str, Any]) -> str:
    rows = [(name, e["counts"]["pass"], e["counts"]["fail"], e["counts"]["error"])
            for name, e in summary.get("aspects", {}).items()]
    if not rows:
        return ""
    table = "".join(
        f"<tr><td>{esc(name)}</td><td>{esc(', '.join(e.get('scenarios', [])))}</td></tr>"
        for name, e in summary["aspects"].items()
    )
    return (f"<section><h2>Aspects</h2>{stacked_bars_svg(rows)}<table><thead><tr><th>aspect</th>"
            f"<th>scenarios</th></tr></thead><tbody>{table}</tbody></table></section>")


def _scale(points: Sequence[Point]) -> float:
    top = max([max(v, hi if hi is not None else v) for _, v, _, hi in points] + [0.0])
    return top * 1.1 if top > 0 else 1.0


def error_bars_svg(title: str, points: Sequence[Point]) -> str:
    """One row per group: the value as a dot, its 95% CI as a whiskered line."""
    left, plot, row_h = 110, 300, 26
    height, top = row_h * len(points) + 52, _scale(points)

    def x(v: float) -> float:
        return left + plot * v / top

    out = [f"<svg class='chart' width='{left + plot + 70}' height='{height}' role='img'>",
           f"<text x='4' y='14' font-weight='600'>{esc(title)}</text>"]
    for i, (label, value, lo, hi) in enumerate(points):
        y = 34 + i * row_h
        out.append(f"<text x='{left - 8}' y='{y + 4}' text-anchor='end'>{esc(label)}</text>")
        if lo is not None and hi is not None:
            out.append(f"<line x1='{x(lo):.1f}' x2='{x(hi):.1f}' y1='{y}' y2='{y}' stroke='#4a5568'/>"
                       + "".join(f"<line x1='{x(e):.1f}' x2='{x(e):.1f}' y1='{y - 5}' y2='{y + 5}' "
                                 "stroke='#4a5568'/>" for e in (lo, hi)))
        out.append(f"<circle cx='{x(value):.1f}' cy='{y}' r='4.5' fill='#2b6cb0'><title>"
                   f"{esc(label)}: {fmt(value)} {_ci([lo, hi])}</title></circle>")
        out.append(f"<text x='{left + plot + 8}' y='{y + 4}'>{fmt(value, 3)}</text>")
    axis_y = height - 14
    out.append(f"<line x1='{left}' x2='{left + plot}' y1='{axis_y - 10}' y2='{axis_y - 10}' "
               "stroke='#a0aec0'/>")
    for frac in (0.0, 0.5, 1.0):
        out.append(f"<text x='{left + plot * frac:.1f}' y='{axis_y + 2}' text-anchor='middle' "
                   f"class='muted'>{top * frac:.2f}</text>")
    return "".join(out) + "</svg>"


def _as_number(text: str) -> float | None:
    try:
        return float(re.sub(r"[^0-9eE+.\-]", "", text))
    except ValueError:
        return None


def curve_svg(title: str, points: Sequence[Point]) -> str:
    """A robustness curve: metric against severity / level / SNR, with CI error bars."""
    numbers = [_as_number(label) for label, *_ in points]
    if all(n is not None for n in numbers):
        order = sorted(range(len(points)), key=lambda i: numbers[i] or 0.0)
    else:
        order = list(range(len(points)))
    pts = [points[i] for i in order]
    width, height, left, bottom, top_pad = 420, 220, 50, 30, 26
    plot_w, plot_h, top = width - left - 20, height - bottom - top_pad, _scale(pts)

    def xy(i: int, v: float) -> tuple[float, float]:
        step = plot_w / max(1, len(pts) - 1)
        return left + i * step, top_pad + plot_h * (1 - v / top)

    out = [f"<svg class='chart curve' width='{width}' height='{height}' role='img'>",
           f"<text x='4' y='14' font-weight='600'>{esc(title)}</text>",
           f"<line x1='{left}' x2='{left}' y1='{top_pad}' y2='{top_pad + plot_h}' stroke='#a0aec0'/>",
           f"<text x='{left - 6}' y='{top_pad + 4}' text-anchor='end'>{top:.2f}</text>",
           f"<text x='{left - 6}' y='{top_pad + plot_h}' text-anchor='end'>0</text>"]
    line = " ".join("{:.1f},{:.1f}".format(*xy(i, p[1])) for i, p in enumerate(pts))
    out.append(f"<polyline points='{line}' fill='none' stroke='#2b6cb0' stroke-width='2'/>")
    for i, (label, value, lo, hi) in enumerate(pts):
        cx, cy = xy(i, value)
        if lo is not None and hi is not None:
            out.append(f"<line x1='{cx:.1f}' x2='{cx:.1f}' y1='{xy(i, lo)[1]:.1f}' "
                       f"y2='{xy(i, hi)[1]:.1f}' stroke='#4a5568'/>")
        out.append(f"<circle cx='{cx:.1f}' cy='{cy:.1f}' r='4' fill='#2b6cb0'/>"
                   f"<text x='{cx:.1f}' y='{height - 10}' text-anchor='middle'>{esc(label)}</text>")
    return "".join(out) + "</svg>"


def grouped_metrics(metrics: dict[str, Any]) -> dict[tuple[str, str], list[Point]]:
    """``name[key=value]`` metrics gathered per (name, key), in the summary's order."""
    found: dict[tuple[str, str], list[Point]] = defaultdict(list)
    for name, m in metrics.items():
        match = _GROUPED.match(name)
        if match and m.get("value") is not None:
            ci = m.get("ci95") or [None, None]
            found[(match["metric"], match["key"])].append((match["value"], float(m["value"]),
                                                           ci[0], ci[1]))
    return dict(found)


def confusion_matrix_html(records: Sequence[Record]) -> str:
    """Label x predicted counts for records whose scores carry both; "" when none do."""
    pairs = [(str(r.scores["label"]), str(r.scores["predicted"])) for r in records
             if "label" in r.scores and "predicted" in r.scores]
    if not pairs:
        return ""
    counts, labels = Counter(pairs), sorted({a for p in pairs for a in p})
    peak = max(counts.values())
    head = "".join(f"<th>{esc(label)}</th>" for label in labels)
    body = []
    for truth in labels:
        cells = []
        for guess in labels:
            n = counts[(truth, guess)]
            hue = "46,125,50" if truth == guess else "198,40,40"
            alpha = 0.12 + 0.6 * n / peak if n else 0
            cells.append(f"<td class='num' style='background:rgba({hue},{alpha:.2f})'>{n}</td>")
        body.append(f"<tr><th>{esc(truth)}</th>{''.join(cells)}</tr>")
    return ("<h3>Confusion matrix (rows: label, columns: predicted)</h3>"
            f"<table class='confusion' style='width:auto'><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _scenario(name: str, scenario: dict[str, Any], records: Sequence[Record]) -> str:
    c = scenario.get("counts") or {}
    rows = "".join(
        f"<tr><td>{esc(metric)}</td><td class='num'>{fmt(m.get('value'))}</td>"
        f"<td class='num'>{_ci(m.get('ci95'))}</td><td class='num'>{esc(m.get('n', ''))}</td>"
        f"<td class='muted'>{esc(m.get('method', ''))}</td></tr>"
        for metric, m in scenario.get("metrics", {}).items()
    )
    charts = []
    for (metric, key), points in grouped_metrics(scenario.get("metrics", {})).items():
        title = f"{metric} by {key} (95% CI)"
        draw = curve_svg if key.lower() in CURVE_KEYS else error_bars_svg
        charts.append(draw(title, points))
    return (
        f"<section class='scenario'><h2>{esc(name)} <span class='muted'>"
        f"({esc(scenario.get('aspect', ''))}, {esc(scenario.get('family', ''))})</span></h2>"
        f"<p>Instance bar <code>{esc(scenario.get('instance_bar', ''))}</code>: "
        f"{c.get('pass', 0)} pass, {c.get('fail', 0)} fail, {c.get('error', 0)} error of "
        f"{c.get('total', 0)}.</p><table><thead><tr><th>metric</th><th>value</th><th>95% CI</th>"
        f"<th>n</th><th>method</th></tr></thead><tbody>{rows}</tbody></table>"
        + (f"<div class='charts'>{''.join(charts)}</div>" if charts else "")
        + confusion_matrix_html(records) + "</section>"
    )


def _audio_file(audio: str, root: Path | None) -> Path | None:
    path = Path(audio)
    bases = [path] if path.is_absolute() else [b / path for b in (root, Path.cwd()) if b]
    return next((p for p in bases if p.is_file()), None)


def audio_element(record: Record, root: Path | None, preload: str = "none") -> str:
    if not record.audio:
        return "<span class='muted'>no audio</span>"
    file = _audio_file(record.audio, root)
    if file is None:
        return f"<span class='muted'>audio unavailable: {esc(record.audio)}</span>"
    mime = MIME.get(file.suffix.lower(), "application/octet-stream")
    data = base64.b64encode(file.read_bytes()).decode("ascii")
    heard = (f"<div class='muted'>clean source; the model heard it with {esc(record.perturbation)}"
             "</div>" if record.perturbation else "")
    return (f"<audio controls preload='{preload}' title='{esc(record.audio)}' "
            f"src='data:{mime};base64,{data}'></audio>{heard}")


def _main_score(record: Record) -> str:
    for key in ("ter", "wer", "chrf", "score", "accuracy", "correct"):
        if isinstance(record.scores.get(key), (int, float)):
            return f"{key} {fmt(record.scores[key], 3)}"
    return "—"


def _instances(records: Sequence[Record], root: Path | None) -> str:
    wrong = [r for r in records if r.status != "pass"]
    wrong.sort(key=lambda r: (r.status != "error", -float(r.scores.get("wer", 0.0) or 0.0),
                              r.scenario, r.instance_id))
    if not wrong:
        return "<section><h2>Wrong and errored instances</h2><p>None: all passed.</p></section>"
    rows, embedded = [], 0
    for r in wrong:
        shown = f"error: {r.error}" if r.status == "error" else (r.output or "")
        groups = ", ".join(f"{k}={v}" for k, v in r.groups.items())
        clip = (audio_element(r, root, "none" if embedded else "metadata") if embedded < MAX_CLIPS
                else "<span class='muted'>not embedded</span>")
        embedded += "<audio " in clip
        rows.append(
            f"<tr class='st-{esc(r.status)}'><td>{esc(r.scenario)}</td><td>{esc(r.instance_id)}"
            f"<div class='muted'>{esc(groups)}</div></td><td class='st-{esc(r.status)}'>"
            f"{esc(r.status)}</td><td class='text'>{esc(' / '.join(r.references))}</td>"
            f"<td class='text'>{esc(shown)}</td><td class='num'>{_main_score(r)}</td>"
            f"<td>{clip}</td></tr>"
        )
    capped = (f"<p class='bad'>Audio embedded for the first {MAX_CLIPS} of {len(wrong)} "
              "instances only (capped to keep this file small).</p>" if embedded >= MAX_CLIPS
              and len(wrong) > MAX_CLIPS else "")
    prompts = sorted({r.prompt for r in wrong})
    prompt_list = "".join(f"<li><code>{esc(p)}</code></li>" for p in prompts[:5])
    return (
        f"<section><h2>Wrong and errored instances ({len(wrong)} of {len(records)})</h2>"
        f"<p class='muted'>Prompt(s) sent:</p><ul>{prompt_list}</ul>{capped}"
        "<p><input id='filter' type='search' placeholder='filter rows (id, voice, text, status…)'>"
        "</p><table id='instances'><thead><tr><th>scenario</th><th>instance</th><th>status</th>"
        "<th>expected</th><th>output</th><th>score</th><th>audio</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _provenance(summary: dict[str, Any]) -> str:
    dispatch = summary.get("dispatch") or {}
    versions = ", ".join(f"{k} {v}" for k, v in (summary.get("versions") or {}).items())
    return (
        "<section><h2>Provenance</h2><p>"
        + esc(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in dispatch.items()))
        + f"</p><p class='muted'>Versions: {esc(versions)}</p>"
        f"<p class='muted'>Command: <code>{esc(' '.join(summary.get('command', [])))}</code></p>"
        "</section>"
    )
