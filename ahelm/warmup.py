"""Loading what a run needs later while its requests are in flight, not on its critical path.

Three imports cost a pytest process most of a second each on 2 cores: the toxicity classifier
(sklearn and a pickled model; the first gate needs it), scipy.stats (the first metric with a
confidence interval) and hypothesis, which its own pytest plugin imports at the terminal summary
of every run, robustness properties or not. A background thread loads them once the first answer
is in (the first wave of requests is out by then), in runs large enough for it to matter: the
tests spend that time waiting for answers.
"""

from __future__ import annotations

import importlib
import threading

import pytest

MIN_PLAN = 200
"""Runs of fewer requests load these libraries when they first use them."""
_started: set[int] = set()


def start(config: pytest.Config, planned: int, *, scoring: bool = True) -> threading.Thread | None:
    """Start loading, once per config, for a run of ``planned`` requests or tests. ``scoring``:
    this process scores gates (the single process, xdist workers); the xdist controller only
    writes the run, from the scores the workers' gate reports carry, and needs scipy.special for
    the run's own rates. Hypothesis is loaded in every process: even xdist workers run the
    terminal summary hooks, though nobody sees their output."""
    if planned < MIN_PLAN or id(config) in _started:
        return None
    _started.add(id(config))
    hypothesis = config.pluginmanager.has_plugin("hypothesispytest")

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
