"""The state of one ahelm run inside pytest: scenarios, the model, answers, results.

One AhelmSession exists per pytest process and is registered as a plugin; on an xdist
controller it only gathers what the workers report.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generator

import pytest

from ahelm.config import ConfigError, ModelConfig, load_model_config
from ahelm.core import Answer, Instance, Record, Request
from ahelm.gates.items import GateItem
from ahelm.gates.policy import Baseline, GatePolicy, load_policy
from ahelm.gates.verdict import ScenarioResults
from ahelm.judging import Judge
from ahelm.models import validate_config
from ahelm.models.base import Model
from ahelm.reports.collector import RunCollector
from ahelm.reports.progress import RequestCounts
from ahelm.scenarios import Scenario, ScenarioError, load_scenario

if TYPE_CHECKING:
    from ahelm.service.client import ProgressProbe

RECORD_KEY = pytest.StashKey[Record]()
PROPERTY_KEY = pytest.StashKey[dict[str, Any]]()
"""A robustness property's outcome, carried to the reports (ahelm.robustness.fixture)."""
BREAKING_KEY = pytest.StashKey[dict[str, Any]]()
"""A breaking-point bisection's result, carried to the reports."""


class InstanceFailure(Exception):
    """The model gave no usable answer for one instance: reported as a test error."""


class Outcome:
    """What a scenario test sees: the record, and a check that fails with expected vs actual."""

    def __init__(self, record: Record, scenario: Scenario) -> None:
        self.record = record
        self._scenario = scenario

    @property
    def correct(self) -> bool:
        return self.record.passed

    def explain(self) -> str:
        return self._scenario.family.explain(self.record)

    def check(self) -> None:
        if not self.correct:
            pytest.fail(f"{self.record.instance_id}: {self.explain()}", pytrace=False)


def _new_run_id(model: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-") or "model"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-{secrets.token_hex(2)}"


class AhelmSession:
    def __init__(
        self,
        config: pytest.Config,
        model_config: ModelConfig,
        policy: GatePolicy,
        run_id: str,
        baseline: Baseline | None = None,
    ) -> None:
        self.config = config
        self.baseline = baseline
        self.model_config = model_config
        self.policy = policy
        self.run_id = run_id
        root = config.rootpath
        report_option = config.getoption("ahelm_report_dir")
        self.report_dir = Path(report_option).resolve() if report_option else root / "reports"
        self.corpus_root = root / str(config.getini("ahelm_corpus"))
        self.suite_size: str = config.getoption("ahelm_suite_size")
        self.refresh: bool = config.getoption("ahelm_refresh")
        self.is_worker = hasattr(config, "workerinput")
        self.collector = RunCollector(self)
        from ahelm.datasets.run import RealData

        self.real_data = RealData(config.getoption("ahelm_data_dir"), self.report_dir / "datasets")
        from ahelm.audio import WavCache, use_wav_cache

        cache_mb = float(os.environ.get("AHELM_AUDIO_CACHE_MB", "2048"))
        cache_dir = Path(os.environ.get("AHELM_AUDIO_CACHE_DIR") or self.report_dir / "audio")
        self.wav_cache = WavCache(cache_dir, int(cache_mb * 2**20)) if cache_mb > 0 else None
        use_wav_cache(self.wav_cache)
        self._scenarios: dict[str, Scenario] = {}
        self._plan: list[Instance] = []
        self._runs_properties = False
        """Some selected test of this process uses the robustness fixture (hypothesis)."""
        self._pytest_session: pytest.Session | None = None
        self._planning_for_workers = False
        """The xdist controller is collecting to plan for its workers (ahelm.planning)."""
        self._records: dict[tuple[str, str], Record] = {}
        self._results: dict[str, ScenarioResults] = {}
        self._metrics_sent: set[str] = set()
        self._dispatcher: Any = None
        self._service: Any = None
        """The dispatch service this process owns (ahelm.service.ServiceProcess), if any."""
        self._model: Model | None = None
        self.judge_config: ModelConfig | None = None
        self._judge: Judge | None = None
        from ahelm.reports.progress import Progress

        self.progress = Progress(float(os.environ.get("AHELM_PROGRESS_INTERVAL", "5")))
        self._progress_enabled: bool | None = None
        self._probe: ProgressProbe | None = None
        """The xdist controller's connection asking the service how far the requests are."""

    @classmethod
    def from_config(cls, config: pytest.Config) -> AhelmSession:
        """Read and check the model config and gate policy: any error stops the run here."""
        try:
            model_config = load_model_config(config.getoption("ahelm_model"), config.rootpath)
            validate_config(model_config)
            policy_option = config.getoption("ahelm_gate_policy")
            default_policy = config.rootpath / "suites" / "gates.toml"
            policy_path = Path(policy_option) if policy_option else (
                default_policy if default_policy.is_file() else None
            )
            policy = load_policy(policy_path, model_config.gate_overrides, model_config.path)
        except ConfigError as exc:
            raise pytest.UsageError(f"ahelm: {exc}") from None
        workerinput = getattr(config, "workerinput", None)
        run_id = workerinput["ahelm_run_id"] if workerinput else _new_run_id(model_config.name)
        judge_config = None
        if config.getoption("ahelm_judge"):
            try:
                judge_config = load_model_config(config.getoption("ahelm_judge"), config.rootpath)
                validate_config(judge_config)
            except ConfigError as exc:
                raise pytest.UsageError(f"ahelm: --judge: {exc}") from None
        baseline = _load_baseline(config.getoption("ahelm_baseline"))
        session = cls(config, model_config, policy, run_id, baseline)
        session.judge_config = judge_config
        return session

    # -- scenarios and collection -------------------------------------------------------------

    def scenario(self, name: str, module_path: Path | None = None) -> Scenario | None:
        """A scenario by corpus name, or by a path with "/" relative to the suite module, or a
        real dataset's scenario (None when its data is absent)."""
        directory = (
            (module_path.parent / name).resolve()
            if "/" in name and module_path is not None else self.corpus_root / name
        )
        if name in self._scenarios:
            return self._scenarios[name]
        if not directory.is_dir() and self.real_data.knows(name):
            real = self.real_data.scenario(name)
            if real is not None:
                self._scenarios[name] = real
            return real
        loaded = next((s for s in self._scenarios.values() if s.spec.directory == directory), None)
        scenario = loaded or load_scenario(directory)
        known = self._scenarios.setdefault(scenario.name, scenario)
        if known.spec.directory != scenario.spec.directory:
            raise ScenarioError(
                f"two scenarios are named {scenario.name!r}: "
                f"{known.spec.directory} and {scenario.spec.directory}"
            )
        return scenario

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        marker = metafunc.definition.get_closest_marker("scenario")
        if marker is None:
            return
        if not marker.args or not isinstance(marker.args[0], str):
            raise ScenarioError(f"{metafunc.definition.nodeid}: use @pytest.mark.scenario('name')")
        if "instance" not in metafunc.fixturenames:
            raise ScenarioError(
                f"{metafunc.definition.nodeid}: a scenario test must use the 'outcome' fixture"
            )
        try:
            scenario = self.scenario(marker.args[0], metafunc.definition.path)
        except ScenarioError as exc:
            pytest.fail(f"ahelm: {exc}", pytrace=False)
        if scenario is None:
            metafunc.parametrize("instance", [self.real_data.placeholder()])
            return
        aspect_mark = getattr(pytest.mark, scenario.spec.aspect)
        metafunc.parametrize(
            "instance",
            [pytest.param(i, id=i.id, marks=aspect_mark) for i in scenario.select(self.suite_size)],
        )

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Add the gate items of every scenario that is still selected, and plan the requests."""
        self.real_data.deselect(self.config, items)
        if self._planning_for_workers:
            self._plan = self._selected_instances(items)[0]
            return
        self._plan, modules, last = self._selected_instances(items)
        self._runs_properties = any(
            "robustness" in getattr(item, "fixturenames", ()) for item in items)
        # Each scenario's gates go right after its last instance test: they then score while
        # the requests of later scenarios are still in flight, not all at the end of the run.
        gates_after: dict[int, list[pytest.Item]] = {}
        for name, module in modules.items():
            scenario = self._scenarios[name]
            gates_after[last[name]] = [GateItem.for_gate(module, gate, scenario.spec.aspect)
                                       for gate in self.policy.gates(name, self.baseline)]
        if gates_after:
            items[:] = [placed for index, item in enumerate(items)
                        for placed in (item, *gates_after.get(index, ()))]
        self.progress.planned(len(items))
        if self._plan and self._model is None:
            self._model = self._build_model()
        if self._plan and not self.config.option.collectonly:
            self._dispatch()  # the requests start now, not when the first test runs

    def _selected_instances(
        self, items: list[pytest.Item]
    ) -> tuple[list[Instance], dict[str, pytest.Module], dict[str, int]]:
        """The instances the selected tests ask for, in test order, then every instance of
        their scenarios (their gates score the whole scenario); with each scenario's module and
        the index of its last test."""
        plan: list[Instance] = []
        modules: dict[str, pytest.Module] = {}
        last: dict[str, int] = {}
        for index, item in enumerate(items):
            instance = _instance_of(item)
            if instance is not None:
                plan.append(instance)
                last[instance.scenario] = index
                module = item.getparent(pytest.Module)
                if module is not None:
                    modules.setdefault(instance.scenario, module)
        for name in modules:
            plan.extend(self._scenarios[name].select(self.suite_size))
        return plan, modules, last

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_setupnodes(self, config: pytest.Config, specs: Any) -> None:
        """With a dispatch service, plan the run here, before xdist starts the workers: the
        requests are then in flight while the workers start (see ahelm.planning)."""
        session = self._pytest_session
        if self._service is None or session is None or config.option.collectonly or not specs:
            return
        from ahelm.planning import collect_quietly

        self._planning_for_workers = True
        try:
            complete = collect_quietly(session)
            plan, self._plan = self._plan, []
        finally:
            self._planning_for_workers = False
        if not complete or not plan:
            return
        from ahelm.service import ServiceError
        from ahelm.service.client import send_plan

        blocks = _worker_blocks(self._unique_requests(plan), len(specs))
        interleaved = [request for group in itertools.zip_longest(*blocks)
                       for request in group if request is not None]
        try:
            self._model = self._model or self._build_model()
            send_plan(self._service.folder, self._model, interleaved, alive=self._service.alive)
        except (ServiceError, OSError):
            pass  # the workers plan and ask as usual, and report what went wrong

    def _build_model(self) -> Model:
        """Built once collection shows it is needed; a failure stops the run before any request."""
        from ahelm.models import build_model

        try:
            return build_model(self.model_config)
        except ConfigError as exc:
            raise pytest.UsageError(f"ahelm: {exc}") from None
        except Exception as exc:
            raise pytest.UsageError(
                f"ahelm: {self.model_config.path}: cannot build the model "
                f"(provider {self.model_config.provider!r}): {type(exc).__name__}: {exc}"
            ) from None

    # -- answering ----------------------------------------------------------------------------

    def _dispatch(self) -> Any:
        if self._dispatcher is None:
            self._dispatcher = self._new_dispatcher(self._model or self._build_model(),
                                                    service=True)
            # A dispatch service takes every worker's plan: each sends only its own block.
            # Dispatchers of their own (local models) plan the whole run, their block first.
            self._dispatcher.prefetch(self._planned_requests(
                self._worker_slot()[0], own_block=self._service_folder() is not None))
        return self._dispatcher

    def start_service(self) -> None:
        """Start the run's dispatch service if its model is remote (ahelm.service): in the
        process that owns the run, at configure time, so it is ready when collection ends."""
        if self.is_worker or self.config.option.collectonly:
            return
        from ahelm.service import ServiceError, ServiceProcess, nice_increment, wanted

        try:
            if not wanted(self.model_config):
                return
            nice_increment()  # checked here, used by the workers (worker_yields)
        except (ServiceError, ConfigError) as exc:
            raise pytest.UsageError(f"ahelm: {exc}") from None
        self._service = ServiceProcess.start(
            self.model_config, self.report_dir / "cache.sqlite3", self.run_id,
            refresh=self.refresh,
            wav_cache_dir=self.wav_cache.folder if self.wav_cache else None,
            wav_cache_bytes=self.wav_cache.max_bytes if self.wav_cache else 0,
        )

    def worker_yields(self) -> None:
        """An xdist worker of a run with a dispatch service lowers its CPU priority (see
        ahelm.service.yield_to_service): its scoring may lag, the service's loop may not. Only
        workers do: they are started for this run and end with it, while the process that
        started pytest may go on to other work."""
        if self.is_worker and self._service_folder() is not None:
            from ahelm.service import nice_increment, yield_to_service

            yield_to_service(nice_increment())

    def _service_folder(self) -> Path | None:
        if self._service is not None:
            return Path(self._service.folder)
        workerinput = getattr(self.config, "workerinput", None) or {}
        folder = workerinput.get("ahelm_service")
        return Path(folder) if folder else None

    def _new_dispatcher(self, model: Model, *, service: bool = False) -> Any:
        """A dispatcher on the run's shared cache: a client of the run's dispatch service when
        there is one (``service``: for the model under test), else a thread of this process
        with its share of the model's concurrency (xdist workers split it)."""
        folder = self._service_folder() if service else None
        if folder is not None:
            from ahelm.service import ServiceError
            from ahelm.service.client import ServiceClient

            owner = self._service
            try:
                return ServiceClient(
                    model, folder, self.report_dir / "cache.sqlite3", self.run_id,
                    refresh=self.refresh, alive=owner.alive if owner is not None else None,
                )
            except ServiceError as exc:
                raise pytest.UsageError(f"ahelm: {self.model_config.path}: {exc}") from None
        from ahelm.dispatch import Dispatcher

        workers, _ = self._worker_slot()
        return Dispatcher(
            model, self.report_dir / "cache.sqlite3", self.run_id, refresh=self.refresh,
            concurrency=max(1, model.max_concurrency // workers), peers=workers > 1,
        )

    def _worker_slot(self) -> tuple[int, int]:
        """(number of xdist workers, this worker's index); (1, 0) outside xdist.

        Read from xdist's workerinput, not the environment: a pytest run started from inside a
        worker (pytester) inherits the worker's environment variables without being a worker.
        """
        workerinput = getattr(self.config, "workerinput", None)
        if not workerinput:
            return 1, 0
        index = int(re.sub(r"\D", "", str(workerinput.get("workerid", "gw0"))) or 0)
        return max(1, int(workerinput.get("workercount", 1))), index

    @staticmethod
    def _unique_requests(plan: list[Instance]) -> list[Request]:
        seen: set[tuple[str, str]] = set()
        unique = []
        for instance in plan:
            if (instance.scenario, instance.id) not in seen:
                seen.add((instance.scenario, instance.id))
                unique.append(Request.for_instance(instance))
        return unique

    def _planned_requests(self, workers: int, *, own_block: bool = False) -> list[Request]:
        """The run's unique requests in test order; under xdist, starting with this worker's
        block of tests (``own_block``: that block alone)."""
        unique = self._unique_requests(self._plan)
        _, index = self._worker_slot()
        if workers > 1 and unique:
            blocks = _worker_blocks(unique, workers)
            if own_block:
                return blocks[index]
            return [request for block in blocks[index:] + blocks[:index] for request in block]
        return unique

    def judge(self) -> Judge | None:
        """The ``--judge`` model, through its own dispatcher on the shared cache; None if unset."""
        if self.judge_config is None:
            return None
        if self._judge is None:
            from ahelm.models import build_model

            self._judge = Judge(self._new_dispatcher(build_model(self.judge_config)))
        return self._judge

    def record_for(self, instance: Instance) -> Record:
        memo = (instance.scenario, instance.id)
        if memo not in self._records:
            answer: Answer = self._dispatch().answer(Request.for_instance(instance))
            if not self._records:
                # The first wave of requests is out and answered: load what the gates need
                # in the background now, not while that wave was being prepared and sent.
                from ahelm import warmup

                warmup.start(self.config, len(self._plan), hypothesis=self._runs_properties)
            self._records[memo] = self._score(instance, answer)
        return self._records[memo]

    def _score(self, instance: Instance, answer: Answer) -> Record:
        from ahelm.recording import build_record

        scenario = self._scenarios[instance.scenario]
        bar = self.policy.instance_bar(scenario.name, scenario.family.default_bar)
        audio = self._display_path(instance.audio.path) if instance.audio else None
        judge = self.judge() if answer.response is not None else None
        return build_record(scenario, instance, answer, bar, audio, judge)

    def _display_path(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.config.rootpath))
        except ValueError:
            return str(path)

    def outcome(self, item: pytest.Item, instance: Instance) -> Outcome:
        record = self.record_for(instance)
        item.stash[RECORD_KEY] = record
        if record.status == "error":
            raise InstanceFailure(f"{instance.id}: {record.error_kind} error: {record.error}")
        return Outcome(record, self._scenarios[instance.scenario])

    def scenario_aspect(self, name: str) -> str:
        return self._scenarios[name].spec.aspect

    def scenario_results(self, name: str) -> ScenarioResults:
        """Every instance of the scenario answered and scored: what its gates judge."""
        if name not in self._results:
            scenario = self._scenarios[name]
            from ahelm.scoring.toxicity import with_output_toxicity

            records = with_output_toxicity(
                [self.record_for(i) for i in scenario.select(self.suite_size)])
            self._results[name] = ScenarioResults(name, records, scenario.family.metrics(records))
        return self._results[name]

    # -- robustness properties ----------------------------------------------------------------

    def register_hypothesis_profiles(self) -> None:
        """Profiles ``smoke`` and ``full`` with the policy's example budgets, so that
        ``--hypothesis-profile`` can name them (registering does not activate them).

        Done only when a profile is named or a property runs: importing hypothesis costs a
        run that has no property to test half a second."""
        from hypothesis import settings

        for name, examples in self.policy.properties.examples.items():
            settings.register_profile(name, max_examples=examples, deadline=None)

    # -- results ------------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True, specname="pytest_runtest_makereport")
    def pytest_runtest_makereport_message_only(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> pytest.TestReport | None:
        """The report of a test that failed with a message and no traceback to show: a
        scenario's check (``pytest.fail(..., pytrace=False)``) or an instance without an answer.

        pytest's own report would filter the traceback first (~0.2 ms of path look-ups per
        failure, most of a run's instances), then show only the message. This is the same
        report, message and crash location included, without the filtering; any other outcome,
        or ``--fulltrace``, is left to pytest."""
        excinfo, when = call.excinfo, call.when
        if excinfo is None or when == "collect":
            return None
        failure = excinfo.value
        if isinstance(failure, InstanceFailure):
            longrepr: Any = str(failure)
        elif self.config.getoption("fulltrace", False):
            return None
        elif (when == "call" and isinstance(failure, pytest.fail.Exception)
              and not failure.pytrace and isinstance(item, pytest.Function)):
            longrepr = excinfo.getrepr(style="value", tbfilter=False)
        else:
            return None
        return pytest.TestReport(
            item.nodeid, item.location, {keyword: 1 for keyword in item.keywords}, "failed",
            longrepr, when,
            [(f"Captured {key} {phase}", content) for phase, key, content in item._report_sections],
            call.duration, call.start, call.stop, user_properties=item.user_properties,
        )

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        record = item.stash.get(RECORD_KEY, None)
        if record is not None:
            phase = "setup" if record.status == "error" else "call"
            if report.when == phase:
                report.ahelm_record = record.to_json()  # type: ignore[attr-defined]
                instance = _instance_of(item)
                if instance is not None:
                    # Here, not in the fixture: Allure renames a test after its setup phase.
                    from ahelm.reports.allure import attach_instance

                    attach_instance(self.config, instance, record)
        if isinstance(item, GateItem) and report.when == "call" and item.result is not None:
            report.ahelm_gate = item.result.to_json()  # type: ignore[attr-defined]
            name = item.result.scenario
            if name in self._results and name not in self._metrics_sent:
                from ahelm.reports.summary import metrics_key

                self._metrics_sent.add(name)
                results = self._results[name]
                # The records' output toxicity travels along, so that the process writing the
                # run (the xdist controller) need not load the classifier to score them again.
                report.ahelm_metrics = (  # type: ignore[attr-defined]
                    name, metrics_key(results.records),
                    {key: metric.to_json() for key, metric in results.metrics.items()},
                    {r.instance_id: r.scores["output_toxic"]
                     for r in results.records if "output_toxic" in r.scores})
        if report.when == "call":
            for key, attribute in ((PROPERTY_KEY, "ahelm_property"),
                                   (BREAKING_KEY, "ahelm_breaking_point")):
                if key in item.stash:
                    setattr(report, attribute, item.stash[key])
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.is_worker:
            self.collector.add_report(report)
            self._progress_tick(report)

    def _progress_tick(self, report: pytest.TestReport) -> None:
        record = getattr(report, "ahelm_record", None)
        if record is not None and record.get("status") == "error":
            self.progress.errors += 1
        if report.when != "teardown":
            return
        self.progress.done += 1
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None and self.progress.due() and self._progress_on(terminal):
            if self.config.pluginmanager.has_plugin("dsession"):
                # xdist writes its progress characters around the terminal reporter's line
                # tracking, so the reporter cannot tell that a line is open: open a fresh one.
                terminal.write("\n")
            terminal.write_line(self.progress.line(requests=self._request_counts()))

    def _request_counts(self) -> RequestCounts | None:
        """How far the run's requests are, where this process can tell: its own dispatcher
        (the single process), or the dispatch service (the xdist controller, once it has
        planned for its workers); None otherwise (the line then counts tests)."""
        if self._dispatcher is not None:
            counts: RequestCounts = self._dispatcher.progress()
            return counts
        if self._service is None or self._model is None:
            return None
        if self._probe is None:
            from ahelm.service.client import ProgressProbe

            self._probe = ProgressProbe(Path(self._service.folder), self._model,
                                        alive=self._service.alive)
        return self._probe.counts()

    def _progress_on(self, terminal: Any) -> bool:
        if self._progress_enabled is None:
            from ahelm.reports.progress import enabled

            self._progress_enabled = enabled(self.config, terminal)
        return self._progress_enabled

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._pytest_session = session

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.progress.planned(len(ids))
        from ahelm import warmup

        warmup.start(self.config, len(ids), scoring=False)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["ahelm_run_id"] = self.run_id
        if self._service is not None:
            node.workerinput["ahelm_service"] = str(self._service.folder)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {})
        self.collector.add_worker_stats(output.get("ahelm_dispatch"))
        self.real_data.merge(output.get("ahelm_absent"))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            self.config.workeroutput["ahelm_absent"] = sorted(  # type: ignore[attr-defined]
                self.real_data.absent)
        from ahelm.warmup import drop_unused_hypothesis

        drop_unused_hypothesis(self.config)
        if self._dispatcher is not None:
            self._dispatcher.close()
            stats = self._dispatcher.snapshot()
            if self.is_worker:
                self.config.workeroutput["ahelm_dispatch"] = stats  # type: ignore[attr-defined]
            else:
                self.collector.add_worker_stats(stats)
        if self._service is not None:
            self._service.finish()  # it winds down while the run folder is written
        if self.wav_cache is not None:
            self.wav_cache.trim()
        if not self.is_worker:
            status = self.collector.finish(session, exitstatus)
            if status is not None:
                session.exitstatus = status

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.is_worker:
            line = self.real_data.summary_line()
            if line:
                terminalreporter.write_line(line)
            self.collector.print_summary(terminalreporter)

    def close(self) -> None:
        from ahelm.audio import use_wav_cache

        use_wav_cache(None)
        if self._dispatcher is not None:
            self._dispatcher.close()
            self._dispatcher = None
        if self._probe is not None:
            self._probe.close()
            self._probe = None
        if self._service is not None:
            self._service.stop()
            self._service = None
        if self._judge is not None:
            self._judge.close()
            self._judge = None


def _load_baseline(option: str | None) -> Baseline | None:
    if not option:
        return None
    from ahelm.store.run import load_baseline

    try:
        return load_baseline(option)
    except ValueError as exc:
        raise pytest.UsageError(f"ahelm: {exc}") from None


def _worker_blocks(requests: list[Request], workers: int) -> list[list[Request]]:
    """The requests cut into one contiguous block per xdist worker, in order: worksteal
    scheduling (ahelm's default, see plugin.py) gives each worker such a block of the tests."""
    cuts = [len(requests) * i // workers for i in range(workers + 1)]
    return [requests[cuts[i]:cuts[i + 1]] for i in range(workers)]


def _instance_of(item: pytest.Item) -> Instance | None:
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get("instance") if callspec is not None else None
    return value if isinstance(value, Instance) else None
