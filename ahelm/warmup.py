"""Loading what a run needs later while its requests are in flight, not on its critical path.

Three loads can cost a pytest process most of a second each on 2 cores: the toxicity
classifier (the first gate needs it; from its array cache in ~15 ms, but the first run on a
machine extracts it from alt-profanity-check's sklearn model), scipy.stats (the first metric
with a confidence interval) and hypothesis, which its own pytest plugin imports at the terminal
summary of every run, robustness properties or not. A background thread loads them once the
first answer is in (the first wave of requests is out by then), in runs large enough for it to
matter: the tests spend that time waiting for answers.

Hypothesis is loaded only where it will be used: by a process that runs robustness properties,
or one whose terminal summary someone reads. An xdist worker without properties never imports
it: :func:`drop_unused_hypothesis` spares it the import that the plugin's summary, which nobody
sees in a worker, would make at the end of the run.
"""

from __future__ import annotations

import importlib
import threading

import pytest

MIN_PLAN = 200
"""Runs of fewer requests load these libraries when they first use them."""
HYPOTHESIS_PLUGIN = "hypothesispytest"
_started: set[int] = set()


def start(config: pytest.Config, planned: int, *, scoring: bool = True,
          hypothesis: bool = True) -> threading.Thread | None:
    """Start loading, once per config, for a run of ``planned`` requests or tests. ``scoring``:
    this process scores gates (the single process, xdist workers); the xdist controller only
    writes the run, from the scores the workers' gate reports carry, and needs scipy.special for
    the run's own rates. ``hypothesis``: this process will import hypothesis (it runs
    properties, or prints a terminal summary through hypothesis's plugin)."""
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
    """In an xdist worker whose tests never imported hypothesis, unregister hypothesis's pytest
    plugin before the terminal summary: its summary hook imports hypothesis (~0.5 s of CPU with
    pytest's assertion rewriting) to report on files that only a hypothesis test could have
    written, in a process whose terminal output nobody reads. True if it was dropped."""
    import sys

    if not hasattr(config, "workerinput") or "hypothesis" in sys.modules:
        return False
    if config.pluginmanager.get_plugin(HYPOTHESIS_PLUGIN) is None:
        return False
    config.pluginmanager.unregister(name=HYPOTHESIS_PLUGIN)
    return True
