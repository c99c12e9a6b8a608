"""The pytest plugin: options, markers, fixtures. The work happens in ``ahelm.session``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ahelm import ASPECTS

if TYPE_CHECKING:
    from ahelm.core import Instance
    from ahelm.robustness.fixture import Robustness
    from ahelm.session import AhelmSession, Outcome

SESSION_KEY = pytest.StashKey["AhelmSession"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ahelm", "ahelm: holistic evaluation of audio-language models")
    group.addoption(
        "--model", dest="ahelm_model", default="reference", metavar="NAME|PATH",
        help="model under test: NAME means model_configs/NAME.toml (default: reference)",
    )
    group.addoption(
        "--report-dir", dest="ahelm_report_dir", default=None, metavar="DIR",
        help="where runs, the answer cache and reports are written (default: <rootdir>/reports)",
    )
    group.addoption(
        "--suite-size", dest="ahelm_suite_size", default="full", choices=("smoke", "full"),
        help="smoke: a fixed seeded subset of every scenario; full: everything (default)",
    )
    group.addoption(
        "--refresh", dest="ahelm_refresh", action="store_true",
        help="ask the model again instead of using cached answers",
    )
    group.addoption(
        "--gate-policy", dest="ahelm_gate_policy", default=None, metavar="TOML",
        help="gate policy file (default: <rootdir>/suites/gates.toml)",
    )
    group.addoption(
        "--judge", dest="ahelm_judge", default=None, metavar="NAME|PATH",
        help="a chat model config that grades open answers and detects refusals",
    )
    group.addoption(
        "--baseline", dest="ahelm_baseline", default=None, metavar="RUN",
        help="a previous run (folder or summary.json): add regression gates against it",
    )
    group.addoption(
        "--data-dir", dest="ahelm_data_dir", default=None, metavar="DIR",
        help="folder with AHELM's real datasets in their published layouts (default: "
             "$AHELM_DATA_DIR); scenarios whose data is absent are left out (docs/datasets/)",
    )
    parser.addini("ahelm_corpus", "folder holding the scenario folders", default="fixtures/corpus")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for aspect in ASPECTS:
        config.addinivalue_line("markers", f"{aspect}: AHELM aspect '{aspect}'")
    config.addinivalue_line(
        "markers", "scenario(name): parametrise this test over the instances of a scenario"
    )
    config.addinivalue_line("markers", "gate: a release gate scoring a whole scenario")
    config.addinivalue_line(
        "markers", "robustness_property: a hypothesis property over perturbed audio"
    )
    from ahelm.datasets.run import ABSENT_MARK

    config.addinivalue_line(
        "markers", f"{ABSENT_MARK}: stands for a real-data scenario whose data is absent"
    )
    _prefer_worksteal(config)
    from ahelm import heap

    heap.hold(config)
    from ahelm.session import AhelmSession

    session = AhelmSession.from_config(config)
    if config.getoption("hypothesis_profile", None):
        # Hypothesis loads the named profile in its own configure hook, after this one.
        session.register_hypothesis_profiles()
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "ahelm-session")
    session.start_service()
    session.worker_yields()


def _prefer_worksteal(config: pytest.Config) -> None:
    """Under ``-n`` without an explicit ``--dist``, use xdist's worksteal scheduling: it gives
    each worker a contiguous block of tests, the block whose requests that worker's dispatcher
    sends first, so tests find their answers ready (xdist's default, load, deals tests out in
    an order no prefetch can follow). ``--dist load`` or any other choice is respected."""
    if getattr(config.option, "dist", "no") != "load":
        return
    import os
    import shlex

    words = [*config.invocation_params.args, *shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))]
    words += [str(w) for w in config.getini("addopts")]
    if not any(w == "-d" or w == "--dist" or str(w).startswith("--dist=") for w in words):
        config.option.dist = "worksteal"


def pytest_collection_finish(session: pytest.Session) -> None:
    from ahelm import heap

    heap.freeze()


def pytest_unconfigure(config: pytest.Config) -> None:
    from ahelm import heap

    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()
    heap.freeze()


@pytest.fixture
def outcome(request: pytest.FixtureRequest, instance: Instance) -> Outcome:
    """The scored answer of the model under test to this instance.

    A transport or audio failure raises here, so the test reports an error, not a failure.
    """
    session: AhelmSession = request.config.stash[SESSION_KEY]
    return session.outcome(request.node, instance)


@pytest.fixture
def robustness(request: pytest.FixtureRequest) -> Robustness:
    """Robustness properties and breaking points of the policy's ``[properties]``, run
    against the model under test through the run's cache and dispatcher."""
    from ahelm.robustness.fixture import Robustness

    session: AhelmSession = request.config.stash[SESSION_KEY]
    return Robustness(session, request.node)
