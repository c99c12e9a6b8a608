"""Robustness properties and the breaking-point profile in the run reports."""

from __future__ import annotations

import html
from typing import Any, Mapping, Sequence

PALETTE = ("#2b6cb0", "#c53030", "#2f855a", "#b7791f", "#6b46c1", "#dd6b20", "#319795",
           "#d53f8c", "#4a5568", "#718096", "#9c4221", "#276749")


def property_lines(summary: Mapping[str, Any]) -> list[str]:
    """One line per property and one for the profile, for the terminal and summary.md."""
    lines = []
    for prop in summary.get("properties", []):
        settings = prop.get("settings", {})
        head = (f"property {prop['name']} ({prop['check']} on {prop['scenario']}, "
                f"{prop['examples']} examples tried, severity <= {settings.get('max_severity')})")
        if prop["passed"]:
            lines.append(f"{head}: holds")
        else:
            lines.append(f"{head}: FAILS: {prop['message'].splitlines()[0]}")
    profile = summary.get("robustness_profile") or {}
    if profile:
        parts = []
        for kind, point in sorted(profile.items()):
            where = point.get("breaking_description") or "not broken at full severity"
            parts.append(f"{kind}: {where}")
        lines.append("breaking points: " + "; ".join(parts))
    return lines


def markdown_section(summary: Mapping[str, Any]) -> list[str]:
    props = summary.get("properties", [])
    profile = summary.get("robustness_profile") or {}
    if not props and not profile:
        return []
    out = ["", "## Robustness properties", ""]
    for prop in props:
        mark = "✅" if prop["passed"] else "❌"
        out.append(f"- {mark} **{prop['name']}** ({prop['check']} on {prop['scenario']}, "
                   f"{prop['examples']} examples)")
        example = prop.get("counterexample")
        if example:
            out += [f"  - minimal failing perturbation: {example['description']} "
                    f"(seed {example['seed']}) on `{example['instance']}`",
                    f"  - clean output: `{example['clean_output']}`",
                    f"  - perturbed output: `{example['perturbed_output']}`",
                    f"  - replay: `{example.get('replay', '')}`"]
    if profile:
        out += ["", "| kind | breaks at | severity | clean WER |", "|---|---|---:|---:|"]
        for kind, point in sorted(profile.items()):
            severity = point.get("breaking_severity")
            out.append(f"| {kind} | {point.get('breaking_description') or 'not broken'} | "
                       f"{'—' if severity is None else f'{severity:.3f}'} | "
                       f"{point.get('clean_wer', float('nan')):.3f} |")
    return out


def profile_svg(profile: Mapping[str, Mapping[str, Any]]) -> str:
    """WER against severity, one curve per perturbation kind, with the clean WER + delta line."""
    if not profile:
        return ""
    width, height, left, right, top, bottom = 640, 300, 64, 190, 20, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    points = [p for point in profile.values() for p in point.get("curve", [])]
    highest = max([p["wer"] for p in points] + [0.1])
    top_value = min(2.0, highest * 1.1)

    def xy(severity: float, wer: float) -> tuple[float, float]:
        return left + severity * plot_w, top + plot_h * (1 - min(wer, top_value) / top_value)

    any_point = next(iter(profile.values()))
    threshold = any_point.get("clean_wer", 0.0) + any_point.get("delta", 0.0)
    tx0, ty = xy(0, threshold)
    out = [f"<svg class='chart profile' width='{width}' height='{height}' role='img' "
           "aria-label='WER against severity per perturbation kind'>",
           f"<line x1='{left}' x2='{left}' y1='{top}' y2='{top + plot_h}' stroke='#a0aec0'/>",
           f"<line x1='{left}' x2='{left + plot_w}' y1='{top + plot_h}' y2='{top + plot_h}' "
           "stroke='#a0aec0'/>",
           f"<text x='{left - 6}' y='{top + 4}' text-anchor='end'>{top_value:.2f}</text>",
           f"<text x='{left - 6}' y='{top + plot_h}' text-anchor='end'>0</text>",
           f"<text x='{left}' y='{height - 8}'>severity 0</text>",
           f"<text x='{left + plot_w}' y='{height - 8}' text-anchor='end'>1</text>",
           f"<line x1='{tx0:.1f}' x2='{left + plot_w}' y1='{ty:.1f}' y2='{ty:.1f}' "
           "stroke='#e53e3e' stroke-dasharray='4 3'/>",
           f"<text x='{left + 4}' y='{ty - 4:.1f}' fill='#e53e3e'>clean + delta</text>",
           f"<text x='4' y='{top + plot_h / 2:.0f}' fill='#4a5568'>WER</text>"]
    for index, (kind, point) in enumerate(sorted(profile.items())):
        colour = PALETTE[index % len(PALETTE)]
        curve = sorted((p["severity"], p["wer"]) for p in point.get("curve", []))
        line = " ".join("{:.1f},{:.1f}".format(*xy(s, w)) for s, w in curve)
        out.append(f"<polyline points='{line}' fill='none' stroke='{colour}' stroke-width='2'/>")
        out += [f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{colour}'/>"
                for x, y in (xy(s, w) for s, w in curve)]
        ly = top + 12 + index * 16
        out.append(f"<rect x='{left + plot_w + 12}' y='{ly - 9}' width='10' height='10' "
                   f"fill='{colour}'/><text x='{left + plot_w + 26}' y='{ly}'>"
                   f"{html.escape(kind)}</text>")
    return "".join(out) + "</svg>"


def html_section(summary: Mapping[str, Any]) -> str:
    props: Sequence[Mapping[str, Any]] = summary.get("properties", [])
    profile = summary.get("robustness_profile") or {}
    if not props and not profile:
        return ""
    rows = []
    for prop in props:
        example = prop.get("counterexample") or {}
        found = (f"{html.escape(example.get('description', ''))} on "
                 f"{html.escape(example.get('instance', ''))}<div class='muted'>clean: "
                 f"{html.escape(str(example.get('clean_output')))}<br>perturbed: "
                 f"{html.escape(str(example.get('perturbed_output')))}<br>replay: <code>"
                 f"{html.escape(example.get('replay', ''))}</code></div>") if example else "—"
        status = "pass" if prop["passed"] else "fail"
        rows.append(f"<tr class='st-{status}'><td>{html.escape(prop['name'])}</td><td>"
                    f"{html.escape(prop['check'])} on {html.escape(prop['scenario'])}</td>"
                    f"<td>{prop['examples']}</td><td class='st-{status}'>{status}</td>"
                    f"<td>{found}</td></tr>")
    table = ("<table><thead><tr><th>property</th><th>check</th><th>examples</th><th>verdict</th>"
             "<th>minimal counterexample</th></tr></thead><tbody>" + "".join(rows)
             + "</tbody></table>") if rows else ""
    breaks = "".join(
        f"<tr><td>{html.escape(kind)}</td><td>"
        f"{html.escape(point.get('breaking_description') or 'not broken at severity 1')}</td></tr>"
        for kind, point in sorted(profile.items()))
    profile_table = (f"<table><thead><tr><th>kind</th><th>breaks at</th></tr></thead><tbody>"
                     f"{breaks}</tbody></table>") if breaks else ""
    return (f"<section><h2>Robustness properties</h2>{table}"
            f"{profile_svg(profile)}{profile_table}</section>")
