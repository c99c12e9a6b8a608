"""Keeping Python's cyclic garbage collector off a run's long-lived objects.

A run holds thousands of items, instances, records and reports for its whole length, and every
full collection walks all of them: pytest's unraisable-exception plugin runs five at exit and the
interpreter one more while it shuts down (about 0.9 s together for the full suite on 2 cores).
The objects are frozen (``gc.freeze``) once collected and again at unconfigure, so those
collections skip them.

They are thawed after pytest's own collections, unless this is the outermost run of a process
that ends with it (one the ``pytest`` command started, or an xdist worker): thawing would only
make its shutdown walk everything again. A run inside another Python program (``pytest.main``,
pytester) is always thawed, so it leaves nothing uncollectable behind.
"""

from __future__ import annotations

import gc
import os
import sys

import pytest

_open_runs: list[int] = []


def hold(config: pytest.Config) -> None:
    """Call from a ``tryfirst`` pytest_configure: the cleanup registered here runs after every
    cleanup registered later (pytest runs them last-in first-out), pytest's collections included."""
    _open_runs.append(id(config))

    def thaw() -> None:
        _open_runs.remove(id(config))
        if _open_runs or not (_started_by_pytest_command() or hasattr(config, "workerinput")):
            gc.unfreeze()

    config.add_cleanup(thaw)


def freeze() -> None:
    gc.freeze()


def _started_by_pytest_command() -> bool:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name in ("pytest", "pytest.__main__"):
        return True
    return os.path.basename(sys.argv[0]) in ("pytest", "py.test") if sys.argv else False
