"""Loading what a run needs later while its requests are in flight, not on its critical path.

Two loads can cost a pytest process most of a second each on 2 cores: the toxicity classifier
(the first gate needs it; from its array cache in ~15 ms, but the first run on a machine
extracts it from alt-profanity-check's sklearn model) and scipy.stats (the first metric with a
confidence interval). A background thread loads them once the first answer is in (the first
wave of requests is out by then), in runs large enough for it to matter: the tests spend that
time waiting for answers. Hypothesis is loaded there too, by a process that runs robustness
properties.

Any other process never imports hypothesis: :func:`drop_unused_hypothesis` unregisters its
pytest plugin before the terminal summary when that summary has nothing to say, since its hook
would import hypothesis just to find that out (~1.4 s of CPU under pytest's assertion rewriting
when bytecode is not cached, as with ``PYTHONDONTWRITEBYTECODE``).
"""

from __future__ import annotations

import importlib
import threading

import pytest

MIN_PLAN = 200
"""Runs of fewer requests load these libraries when they first use them."""
HYPOTHESIS_PLUGIN = "hypothesispytest"
STATISTICS_OPTION = "--hypothesis-show-statistics"
FAILING_EXAMPLES = "_hypothesis_failing_examples"
"""Where hypothesis's plugin keeps a failing test's examples on its report (its
``FAILING_EXAMPLES_KEY``), for its summary to write as a patch."""
_started: set[int] = set()


def start(config: pytest.Config, planned: int, *, scoring: bool = True,
          hypothesis: bool = False) -> threading.Thread | None:
    """Start loading, once per config, for a run of ``planned`` requests or tests. ``scoring``:
    this process scores gates (the single process, xdist workers); the xdist controller only
    writes the run, from the scores the workers' gate reports carry, and needs scipy.special for
    the run's own rates. ``hypothesis``: this process runs robustness properties."""
    if planned < MIN_PLAN or id(config) in _started:
        return None
    _started.add(id(config))
    hypothesis = hypothesis and config.pluginmanager.has_plugin(HYPOTHESIS_PLUGIN)

    def load() -> None:
        if scoring:
            from ahelm.scoring.stats import scipy_stats
            from ahelm.scoring.toxicity import load_classifier

            load_classifier()
            scipy_stats()
        else:
            importlib.import_module("scipy.special")  # run-level rates' exact intervals
        if hypothesis:
            importlib.import_module("hypothesis")

    thread = threading.Thread(target=load, name="ahelm-warmup", daemon=True)
    thread.start()

    def done() -> None:
        # Never leave an import running past the run: a pytest run inside another process
        # (pytester) restores sys.modules when it ends, under the feet of an unfinished import.
        thread.join(timeout=60)
        _started.discard(id(config))

    config.add_cleanup(done)
    return thread


def drop_unused_hypothesis(config: pytest.Config) -> bool:
    """Unregister hypothesis's pytest plugin before the terminal summary when that summary has
    nothing to report; True if it was dropped. Call it at the end of the session.

    The plugin's summary lists observation files that this process's hypothesis tests wrote,
    turns failing examples carried by reports into a patch, and prints statistics when asked;
    but it first imports hypothesis, whether or not there is anything to list. Nothing is lost
    when this process never imported hypothesis (no property ran here, so nothing was written),
    no report carries failing examples (from this process or an xdist worker), and
    ``--hypothesis-show-statistics`` is off: a run without properties, the xdist workers that
    ran none, and an xdist controller whose workers found no failing example."""
    import sys

    if "hypothesis" in sys.modules:
        return False
    if config.pluginmanager.get_plugin(HYPOTHESIS_PLUGIN) is None:
        return False
    if config.getoption(STATISTICS_OPTION, False):
        return False
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    reports = getattr(terminal, "stats", {}).values()
    if any(report.__dict__.get(FAILING_EXAMPLES) for kind in reports for report in kind
           if hasattr(report, "__dict__")):
        return False
    config.pluginmanager.unregister(name=HYPOTHESIS_PLUGIN)
    return True
