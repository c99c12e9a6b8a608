"""summary.md: the run as a person reads it, verdict first."""

from __future__ import annotations

import html
from typing import Any, Sequence

from ahelm.core import Record

WORST_SHOWN = 10


def cell(value: Any) -> str:
    """Model output is untrusted: no table breaks, no live HTML."""
    return plain(html.escape(str(value), quote=False))


def plain(text: str) -> str:
    """Our own text in a table cell: only the table syntax needs escaping."""
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ⏎ ")


def fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value + 0.0:.{digits}f}"  # no "-0.0000"


def _ci(ci: list[float | None] | None) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "—"
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def render_markdown(summary: dict[str, Any], records: Sequence[Record]) -> str:
    model = summary["model"]
    counts = summary["counts"]
    out = [
        f"# ahelm run `{summary['run_id']}`",
        "",
        f"Model **{cell(model['name'])}** (provider `{model['provider']}`, `{model['path']}`) · "
        f"suite `{summary['suite_size']}` · started {summary['started']} · "
        f"{summary['duration_s']:.1f} s",
        "",
        f"## Verdict: {summary['verdict'].upper()}: {plain(summary['verdict_reason'])}",
        "",
        "| gate | value | 95% CI | n | condition | verdict |",
        "|---|---:|---|---:|---|---|",
    ]
    for gate in summary["gates"]:
        verdict = "pass" if gate["passed"] else "**FAIL**"
        out.append(
            f"| {plain(gate['name'])} | {fmt(gate['value'])} | {_ci(gate['ci95'])} | {gate['n']} "
            f"| `{gate['condition']}` | {verdict} |"
        )
    out += ["", "What each gate found:", ""]
    out += [f"- {'✅' if g['passed'] else '❌'} {plain(g['message'])}" for g in summary["gates"]]
    from ahelm.reports.robustness import markdown_section

    out += markdown_section(summary)
    out += [
        "",
        f"Instances: {counts['total']} ({counts['pass']} pass, {counts['fail']} fail, "
        f"{counts['error']} error). Single wrong answers do not decide the verdict; gates do.",
        "",
        "## Aspects",
        "",
        "| aspect | scenarios | pass | fail | error |",
        "|---|---|---:|---:|---:|",
    ]
    for aspect, entry in summary["aspects"].items():
        c = entry["counts"]
        out.append(
            f"| {aspect} | {', '.join(entry['scenarios'])} | {c['pass']} | {c['fail']} | {c['error']} |"
        )
    for name, scenario in summary["scenarios"].items():
        out += _scenario_section(name, scenario, [r for r in records if r.scenario == name])
    dispatch = summary["dispatch"]
    out += [
        "",
        "## Provenance",
        "",
        f"Model calls {dispatch['model_calls']}, cache hits {dispatch['cache_hits']}, "
        f"answers shared between workers {dispatch['peer_answers']}, errors {dispatch['errors']}.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in summary["versions"].items()),
        "",
    ]
    return "\n".join(out)


def _scenario_section(name: str, scenario: dict[str, Any], records: Sequence[Record]) -> list[str]:
    c = scenario["counts"]
    out = [
        "",
        f"## {name} ({scenario['aspect']})",
        "",
        f"Instance bar `{scenario['instance_bar']}`: {c['pass']} pass, {c['fail']} fail, "
        f"{c['error']} error of {c['total']}.",
        "",
        "| metric | value | 95% CI | n |",
        "|---|---:|---|---:|",
    ]
    for metric, value in scenario["metrics"].items():
        out.append(f"| {metric} | {fmt(value['value'])} | {_ci(value['ci95'])} | {value['n']} |")
    wrong = [r for r in records if r.status != "pass"]
    wrong.sort(key=lambda r: (r.status != "error", -r.scores.get("wer", 0.0), r.instance_id))
    if wrong:
        out += [
            "",
            f"Answers that missed the bar (first {min(WORST_SHOWN, len(wrong))} of {len(wrong)}):",
            "",
            "| instance | status | expected | output |",
            "|---|---|---|---|",
        ]
        for r in wrong[:WORST_SHOWN]:
            shown = r.output if r.status != "error" else f"error: {r.error}"
            out.append(
                f"| {cell(r.instance_id)} | {r.status} | {cell(' / '.join(r.references))} "
                f"| {cell(shown or '')} |"
            )
    return out
