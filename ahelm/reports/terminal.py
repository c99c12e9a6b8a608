"""The terminal's closing words: the gate table and the verdict, in plain language."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value + 0.0:.4f}"  # no "-0.0000"


def _p_value(gate: dict[str, Any]) -> str:
    """The p-value a fairness or regression gate decided on (corrected where it was)."""
    details = gate.get("details") or {}
    p = details.get("p_adjusted", (details.get("test") or {}).get("p_value"))
    return "—" if p is None else f"{p:.2g}"


def print_summary(tr: Any, summary: dict[str, Any], run_dir: Path) -> None:
    model = summary["model"]
    tr.write_sep("=", "ahelm release gates", bold=True)
    tr.write_line(
        f"model {model['name']} ({model['provider']}, {model['path']}) · "
        f"suite {summary['suite_size']} · run {run_dir}"
    )
    rows = [("gate", "value", "95% CI", "n", "p", "verdict")]
    for gate in summary["gates"]:
        ci = gate["ci95"]
        ci_text = f"[{_num(ci[0])}, {_num(ci[1])}]" if ci else "—"
        rows.append(
            (gate["name"], _num(gate["value"]), ci_text, str(gate["n"]), _p_value(gate),
             "pass" if gate["passed"] else "FAIL")
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        line = "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True))
        failed = index > 0 and row[-1] == "FAIL"
        tr.write_line(line, red=failed, green=index > 0 and not failed, bold=index == 0)
    from ahelm.reports.robustness import property_lines

    for line in property_lines(summary):
        tr.write_line(line, red="FAILS" in line, green=line.endswith(": holds"))
    counts = summary["counts"]
    dispatch = summary["dispatch"]
    tr.write_line(
        f"instances: {counts['total']} ({counts['pass']} pass, {counts['fail']} wrong, "
        f"{counts['error']} error) · model calls {dispatch['model_calls']}, "
        f"cache hits {dispatch['cache_hits']}"
    )
    if counts["fail"]:
        tr.write_line(
            f"{counts['fail']} wrong answers are listed as failed tests above; single wrong "
            "answers never fail the run, only gates do."
        )
    for entry in summary.get("top_errors", [])[:1]:
        tr.write_line(
            f"{entry['count']} of {counts['error']} errors read: {entry['error'][:300]}",
            red=True,
        )
    if not summary["complete"]:
        tr.write_line("the run did not complete: the verdict covers only what ran.", yellow=True)
    passed = summary["verdict"] == "pass"
    tr.write_line(
        f"ahelm verdict: {'PASS' if passed else 'FAIL'}: {summary['verdict_reason']}",
        green=passed, red=not passed, bold=True,
    )
