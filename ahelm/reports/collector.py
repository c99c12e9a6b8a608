"""Gathering per-instance records and gate verdicts from test reports, then the run folder.

Records and verdicts travel on the test reports themselves, so they survive xdist: the
controller (or the single process) sees every report and writes the run once.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ahelm.core import Record

if TYPE_CHECKING:
    from ahelm.session import AhelmSession


class RunCollector:
    def __init__(self, session: AhelmSession) -> None:
        self.session = session
        self.started = time.time()
        self.records: dict[tuple[str, str], Record] = {}
        self.gates: dict[str, dict[str, Any]] = {}
        self.metrics: dict[str, tuple[str, dict[str, Any]]] = {}
        self.toxicity: dict[tuple[str, str], float] = {}
        """Output toxicity the gates already scored, by (scenario, instance id)."""
        self.properties: dict[str, dict[str, Any]] = {}
        self.breaking_points: dict[str, dict[str, Any]] = {}
        self.other_failures: list[str] = []
        self.worker_stats: list[dict[str, int]] = []
        self.summary: dict[str, Any] | None = None
        self.run_dir: Path | None = None

    def add_report(self, report: pytest.TestReport) -> None:
        data = getattr(report, "ahelm_record", None)
        if data is not None:
            record = Record.from_json(data)
            self.records[(record.scenario, record.instance_id)] = record
            return
        gate = getattr(report, "ahelm_gate", None)
        if gate is not None:
            self.gates[gate["name"]] = gate
            metrics = getattr(report, "ahelm_metrics", None)
            if metrics is not None:
                name, key, values, toxic = metrics
                self.metrics[name] = (key, values)
                self.toxicity.update({(name, instance): flag for instance, flag in toxic.items()})
            return
        found = getattr(report, "ahelm_property", None)
        if found is not None:
            self.properties[found["name"]] = found
            return
        point = getattr(report, "ahelm_breaking_point", None)
        if point is not None:
            self.breaking_points[point["kind"]] = point
            return
        if report.failed:
            self.other_failures.append(f"{report.nodeid} ({report.when})")

    def add_worker_stats(self, stats: dict[str, int] | None) -> None:
        if stats:
            self.worker_stats.append(stats)

    def finish(self, session: pytest.Session, exitstatus: int) -> int | None:
        """Write the run folder; return the exit status the gates call for, if it is ours to set."""
        if not self.records and not self.gates and not self.properties:
            return None
        from ahelm.reports.summary import build_summary
        from ahelm.store.run import write_run

        stopped_early = bool(session.shouldstop or session.shouldfail)
        complete = not stopped_early and exitstatus in (
            pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED
        )
        from ahelm.scoring.toxicity import with_output_toxicity

        records = with_output_toxicity([
            self._with_known_toxicity(r)
            for r in sorted(self.records.values(), key=lambda r: (r.scenario, r.instance_id))])
        self.summary = build_summary(
            self.session,
            records=records,
            gates=[self.gates[name] for name in sorted(self.gates)],
            properties=[self.properties[name] for name in sorted(self.properties)],
            breaking_points=[self.breaking_points[k] for k in sorted(self.breaking_points)],
            other_failures=self.other_failures,
            dispatch=self.worker_stats,
            started=self.started,
            complete=complete,
            known_metrics=self.metrics,
        )
        self.run_dir = write_run(
            self.session.report_dir / "runs" / self.session.run_id,
            self.summary,
            records,
            self.session.config.rootpath,
        )
        from ahelm.reports.allure import write_run_info

        write_run_info(self.session.config, self.summary)
        if not complete:
            return None
        return pytest.ExitCode.OK if self.summary["verdict"] == "pass" else pytest.ExitCode.TESTS_FAILED

    def _with_known_toxicity(self, record: Record) -> Record:
        flag = self.toxicity.get((record.scenario, record.instance_id))
        if flag is None or "output_toxic" in record.scores or record.status == "error":
            return record
        return dataclasses.replace(record, scores={**record.scores, "output_toxic": flag})

    def print_summary(self, terminalreporter: Any) -> None:
        if self.summary is not None and self.run_dir is not None:
            from ahelm.reports.terminal import print_summary

            print_summary(terminalreporter, self.summary, self.run_dir)
